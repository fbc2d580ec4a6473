"""Snapshots with a stored band profile: its reference curve under the live set's reps, and the
wizard's band step showing the stored profile, at 80×24 and 120×40 (fixed data)."""

from __future__ import annotations

import pytest
from spinecoach.hub.messages import FEATURES, Hello
from spinecoach.tui.app import CoachApp
from spinecoach.tui.feed import ScriptedFeed
from tui_fixture_session import band_profile, catalogue, session_messages, wait_drawn

SIZES = [(80, 24), (120, 40)]
SCREENS = {"live": [], "calibrate": ["c", "down", "down", "down"]}


def _app() -> CoachApp:
    fixed = catalogue()
    fixed.bands = [band_profile()]
    messages = [*session_messages(), Hello("0.2.0", "hardware", features=FEATURES)]
    return CoachApp(ScriptedFeed(messages), fixed)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", list(SCREENS))
def test_band_profile_snapshot(snap_compare, screen: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await wait_drawn(pilot)
        for key in SCREENS[screen]:
            await pilot.press(key)
        await wait_drawn(pilot)

    assert snap_compare(_app(), terminal_size=size, run_before=run_before)
