"""The coach's tables size their columns from their rows at once, not on a later idle pass."""

from __future__ import annotations

import asyncio

from spinecoach.tui.widgets import RowsTable
from textual.app import App, ComposeResult


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RowsTable(("Started", "Exercise"), id="t")


def test_column_widths_follow_the_widest_cell_immediately() -> None:
    async def run() -> None:
        app = TableApp()
        async with app.run_test(size=(80, 10)):
            table = app.query_one(RowsTable)
            table.set_rows([("2026-11-20 18:05", "hip hinge"), ("2026-11-18", "back extension hold")])
            widths = [column.width for column in table.columns.values()]
            assert widths == [len("2026-11-20 18:05"), len("back extension hold")]
            table.set_rows([("x", "y")])
            widths = [column.width for column in table.columns.values()]
            assert widths == [len("Started"), len("Exercise")]

    asyncio.run(run())
