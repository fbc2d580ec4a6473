"""The coach's widgets: panels redrawn from the model, never on their own timers."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from rich.cells import cell_len
from rich.text import Text
from spinecoach.tui.model import CoachModel
from textual.widgets import DataTable, Static

#: A panel's drawing: model, width and height in cells -> text.
Draw = Callable[[CoachModel, int, int], Text]


class ModelPanel(Static):
    """A panel whose whole content is drawn from the model by one function.

    The app calls :meth:`show` when the model changed (at most 30 times a second); a resize
    redraws from the model last shown, so plots always fill their panel. ``key`` names what the
    drawing depends on, when that is less than the whole model: an unchanged key skips the
    drawing. Unchanged text is not handed to Textual again.
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
        # The panel's size is set by the layout, never by its text: no re-layout per redraw.
        self.update(text, layout=False)


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
