"""Snapshots of every screen at 80×24 and 120×40, and the live set in the Linux-console look (16 colours, half-block plots).

Fixed data (tests/tui/tui_fixture_session.py), no clock-dependent text. After a deliberate change
of the look, review the new pictures and accept them with ``pytest tests/tui --snapshot-update``.
"""

from __future__ import annotations

import pytest
from spinecoach.tui.app import CoachApp
from spinecoach.tui.feed import ScriptedFeed
from tui_fixture_session import catalogue, session_messages, wait_drawn

SIZES = [(80, 24), (120, 40)]
SCREENS = {
    "live": [],
    "home": ["h"],
    "summary": ["s"],
    "history": ["y"],
    "calibrate": ["c"],
    "settings": ["o"],
    "help": ["question_mark"],
}


async def _settle(pilot) -> None:  # type: ignore[no-untyped-def]
    await wait_drawn(pilot)


def _app(demo: bool = False, console: bool = False) -> CoachApp:
    return CoachApp(ScriptedFeed(session_messages(demo=demo)), catalogue(), console=console)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen_snapshot(snap_compare, screen: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _settle(pilot)
        for key in SCREENS[screen]:
            await pilot.press(key)
        await _settle(pilot)

    assert snap_compare(_app(), terminal_size=size, run_before=run_before)


def test_live_demo_snapshot_in_the_console_look(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_app(demo=True, console=True), terminal_size=(80, 24), run_before=_settle)
