"""A panel whose text changes in a few lines repaints only those lines, and looks exactly as if
its whole text had been drawn again."""

from __future__ import annotations

import asyncio

from rich.text import Text
from spinecoach.tui.model import CoachModel
from spinecoach.tui.widgets import ModelPanel
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widgets import Static

CSS = """
ModelPanel, Static { text-wrap: nowrap; text-overflow: ellipsis; width: 30; height: 7;
                     border: round $primary; padding: 0 1; }
"""


def _text(slot: int, elapsed_s: float) -> Text:
    """A tempo-like panel: a heading, four rows of which one (``slot``) carries a live bar."""
    text = Text(no_wrap=True, overflow="crop")
    text.append("Tempo 3-1-2-1\n", style="bold")
    for i in range(4):
        filled = min(10, int(elapsed_s * 3)) if i == slot else 4
        text.append(f"{'▶' if i == slot else ' '}slot{i} ", style="bold" if i == slot else "dim")
        text.append("█" * filled + "░" * (10 - filled), style="green" if i == slot else "cyan")
        text.append(f" {elapsed_s:.1f} s" if i == slot else " –", style="")
        if i < 3:
            text.append("\n")
    return text


class PanelApp(App[None]):
    CSS = CSS

    def __init__(self) -> None:
        super().__init__()
        self.shown = Text()

    def compose(self) -> ComposeResult:
        yield ModelPanel(lambda model, w, h: self.shown, id="panel")
        yield Static("", id="reference")


def _painted(widget: ModelPanel | Static) -> list[list[tuple[str, str]]]:
    width, height = widget.outer_size
    return [[(segment.text, str(segment.style)) for segment in strip]
            for strip in widget.render_lines(Region(0, 0, width, height))]


def test_a_changed_line_is_repainted_alone_and_as_a_whole_redraw_would_draw_it() -> None:
    async def run() -> None:
        app = PanelApp()
        async with app.run_test(size=(40, 16)) as pilot:
            panel = app.query_one("#panel", ModelPanel)
            reference = app.query_one("#reference", Static)
            model = CoachModel()
            steps = [(0, 0.1), (0, 0.4), (0, 1.3), (1, 0.0), (1, 0.2), (3, 2.9), (3, 3.0)]
            for number, (slot, elapsed_s) in enumerate(steps):
                app.shown = _text(slot, elapsed_s)
                panel.show(model)
                if number:
                    # One slot's row changed (two when the slot moved on), the rest did not.
                    rows = {1 + slot, 1 + steps[number - 1][0]}
                    dirty = panel._styles_cache._dirty_lines
                    assert dirty == {row + 1 for row in rows}  # +1: the border's top line
                reference.update(app.shown)
                await pilot.pause()
                assert _painted(panel) == _painted(reference)
            # Repainted whole for another reason (a theme change does this): the newest text.
            panel.refresh()
            await pilot.pause()
            assert _painted(panel) == _painted(reference)

    asyncio.run(run())
