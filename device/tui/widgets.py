"""The coach's widgets: panels redrawn from the model, never on their own timers."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from spinecoach.tui.model import CoachModel
from textual.widgets import DataTable, Static

#: A panel's drawing: model, width and height in cells -> text.
Draw = Callable[[CoachModel, int, int], Text]


class ModelPanel(Static):
    """A panel whose whole content is drawn from the model by one function.

    The app calls :meth:`show` when the model changed (at most 30 times a second); a resize
    redraws from the model last shown, so plots always fill their panel.
    """

    def __init__(self, draw: Draw, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self._draw = draw
        self._model: CoachModel | None = None

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
        self.update(self._draw(self._model, size.width, size.height))


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
        self.clear()
        for row in rows:
            self.add_row(*row)
        if newest_visible and rows:
            self.move_cursor(row=len(rows) - 1)
            self.scroll_end(animate=False)
