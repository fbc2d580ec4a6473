"""The standalone coach (Textual, in-process feed on the simulated rig in real time): the stored
calibration on the live screen and the wizard's steps answered as through the daemon."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from spinecoach.backend import Backend
from spinecoach.config import load_config
from spinecoach.tui.app import CoachApp
from spinecoach.tui.launch import default_catalogue, live_feed
from spinecoach.tui.screens import CalibrationScreen
from spinecoach.tui.widgets import ModelPanel
from standalone_helpers import SCENARIO, SIM_N_PER_COUNT, write_calibration


async def wait_for_text(pilot, selector: str, wanted: str,  # type: ignore[no-untyped-def]
                        timeout_s: float = 15.0) -> str:
    """The text of the screen's panel ``selector`` once it contains ``wanted``."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = str(pilot.app.screen.query_one(selector, ModelPanel).render())
        if wanted in text:
            return text
        assert time.monotonic() < deadline, f"{wanted!r} never showed; last: {text!r}"
        await pilot.pause(0.05)


def test_the_standalone_wizard_tares_and_refuses_like_the_daemon(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state_dir = tmp_path / "state"
    monkeypatch.setenv("SPINECOACH_STATE_DIR", str(state_dir))
    write_calibration(state_dir, n_per_count=2 * SIM_N_PER_COUNT, tilt_deg=30.0)
    feed = live_feed(Backend.parse(f"sim:{SCENARIO}"))
    app = CoachApp(feed, default_catalogue(load_config([]), backend_kind="sim"))

    async def run() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(1.0)  # the scenario's set runs: calibrating is refused
            await pilot.press("c")
            await pilot.pause(0.2)
            assert isinstance(app.screen, CalibrationScreen)
            await pilot.press("enter")  # 1 · tare
            await wait_for_text(pilot, "#step-ack", "stop the set first")
            await pilot.press("l", "enter")  # stop the set on the live screen
            await pilot.pause(0.3)
            await pilot.press("c", "enter")
            text = await wait_for_text(pilot, "#step-ack", "load cell zeroed")
            assert "✓" in text
            await pilot.press("q")

    asyncio.run(run())
    assert feed.error is None
