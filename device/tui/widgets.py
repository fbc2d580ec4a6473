"""The coach's widgets: panels redrawn from the model, never on their own timers."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from rich.cells import cell_len
from rich.text import Span, Text
from spinecoach.tui.model import CoachModel
from textual.app import RenderResult
from textual.geometry import Region
from textual.strip import Strip
from textual.visual import Visual, visualize
from textual.widgets import DataTable, Static

#: A panel's drawing: model, width and height in cells -> text.
Draw = Callable[[CoachModel, int, int], Text]


class ModelPanel(Static):
    """A panel whose whole content is drawn from the model by one function.

    The app calls :meth:`show` when the model changed (at most 15 times a second); a resize
    redraws from the model last shown, so plots always fill their panel. ``key`` names what the
    drawing depends on, when that is less than the whole model: an unchanged key skips the
    drawing. Unchanged text is not handed to Textual again, and of changed text only the lines
    that differ are rendered and repainted (the tempo guide changes one slot at a time).
    """

    def __init__(
        self,
        draw: Draw,
        *,
        key: Callable[[CoachModel], Hashable] | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__("", id=id, classes=classes)
        self._draw = draw
        self._key = key
        self._model: CoachModel | None = None
        self._shown: Text | None = None
        self._shown_key: Hashable = None
        #: The lines of the text shown, and the size they were rendered for.
        self._lines: list[Text] = []
        self._lines_size: tuple[int, int] = (0, 0)
        #: Strips of the lines changed since the last paint, by line (content coordinates).
        self._patch: dict[int, Strip] = {}
        self._patch_regions: set[Region] = set()

    def show(self, model: CoachModel) -> None:
        self._model = model
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        if self._model is None:
            return
        size = self.content_region.size
        if size.width <= 0 or size.height <= 0:
            return
        if self._key is not None:
            key = (self._key(self._model), size.width, size.height)
            if key == self._shown_key:
                return  # what the drawing depends on has not changed: skip drawing it
            self._shown_key = key
        text = self._draw(self._model, size.width, size.height)
        if text == self._shown:
            return  # unchanged: Textual need not render it again
        self._shown = text
        lines = list(text.split("\n", allow_blank=True))
        shape = (size.width, size.height)
        changed = [y for y, (old, new) in enumerate(zip(self._lines, lines)) if old != new]
        partial = (
            shape == self._lines_size and len(lines) == len(self._lines)
            and len(changed) < len(lines) and self._render_cache.size == size
            and not self._dirty_regions.difference(self._patch_regions)
        )
        self._lines, self._lines_size = lines, shape
        if not partial:
            self._patch.clear()
            self._patch_regions.clear()
            # The panel's size is set by the layout, never by its text: no re-layout per redraw.
            self.update(text, layout=False)
            return
        self._repaint_lines(text, lines, changed)

    def _repaint_lines(self, text: Text, lines: list[Text], changed: list[int]) -> None:
        """Render only the ``changed`` lines and mark only them dirty.

        Unchanged lines are left blank in the text rendered, so each changed line is rendered
        exactly as in the whole text (lines never wrap: the panels' text is cut, not folded).
        """
        width, height = self.size
        wanted = set(changed)
        sparse = Text(style=text.style, justify=text.justify, overflow=text.overflow,
                      no_wrap=text.no_wrap, end=text.end, tab_size=text.tab_size)
        spans = sparse.spans
        for y, line in enumerate(lines):
            if y:
                sparse.append("\n")
            if y in wanted:
                offset = len(sparse)
                sparse.append(line.plain)
                spans.extend(Span(s.start + offset, s.end + offset, s.style) for s in line.spans)
        strips = Visual.to_strips(self, visualize(self, sparse, markup=False), width, height,
                                  self.visual_style)
        regions = []
        for y in changed:
            if y < len(strips):
                self._patch[y] = strips[y]
                regions.append(Region(0, y, width, 1))
        content_offset = self.content_offset
        self._patch_regions.update(region.translate(content_offset) for region in regions)
        self.refresh(*regions)

    def render(self) -> RenderResult:
        # The whole text last drawn, also when only some of its lines were handed over: what
        # Textual renders when something else repaints the whole panel (a theme change).
        return self._shown if self._shown is not None else super().render()

    def render_line(self, y: int) -> Strip:
        if self._patch and not self._dirty_regions.difference(self._patch_regions):
            # Only lines this panel patched are dirty: swap them into the rendered lines
            # instead of rendering the whole text again.
            cached = self._render_cache.lines
            for line, strip in self._patch.items():
                if line < len(cached):
                    cached[line] = strip
            self._patch.clear()
            self._patch_regions.clear()
            self._dirty_regions.clear()
        elif self._dirty_regions:
            self._patch.clear()
            self._patch_regions.clear()
        return super().render_line(y)


class RowsTable(DataTable[str]):
    """A read-only table that is refilled only when its rows change.

    It never takes focus, so Enter, Space and the arrows stay the screen's keys.
    """

    can_focus = False

    def __init__(self, columns: tuple[str, ...], *, id: str | None = None) -> None:
        super().__init__(id=id, zebra_stripes=True, cursor_type="row", show_cursor=False)
        self._columns = columns
        self._rows: list[tuple[str, ...]] = []
        # Columns before any row, even if the screen fills the table before it is mounted:
        # rows added to a table without columns would keep the header's widths.
        self.add_columns(*columns)

    def set_columns(self, columns: tuple[str, ...]) -> None:
        """Replace the columns (and drop the rows) when they differ from the current ones."""
        if columns == self._columns:
            return
        self._columns = columns
        self._rows = []
        self.clear(columns=True)
        self.add_columns(*columns)

    def set_rows(self, rows: list[tuple[str, ...]], newest_visible: bool = False) -> None:
        if rows == self._rows:
            return
        self._rows = list(rows)
        # Columns get explicit widths from their contents: auto widths are only settled on the
        # table's next idle pass, so a screen drawn before it would show clipped cells.
        widths = [
            max([cell_len(header), *(cell_len(str(row[i])) for row in rows if i < len(row))])
            for i, header in enumerate(self._columns)
        ]
        self.clear(columns=True)
        for header, width in zip(self._columns, widths):
            self.add_column(header, width=width)
        for row in rows:
            self.add_row(*row)
        if newest_visible and rows:
            self.move_cursor(row=len(rows) - 1)
            self.scroll_end(animate=False)
