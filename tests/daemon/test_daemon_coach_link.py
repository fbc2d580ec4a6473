"""The Textual coach attached to a daemon: WAITING before it runs, the live picture,
RECONNECTING while it restarts, the picture back after."""

from __future__ import annotations

import asyncio
from pathlib import Path

from daemon_helpers import DaemonThread
from spinecoach.hub.client import SocketFeed
from spinecoach.tui import app as app_module
from spinecoach.tui.app import CoachApp
from spinecoach.tui.catalogue import EmptyCatalogue
from textual.widgets import Static


async def until(pilot, predicate, timeout_s: float = 8.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while loop.time() < end:
        await pilot.pause(0.05)
        if predicate():
            return
    raise AssertionError("condition not met on screen")


class BuiltScreensCoach(CoachApp):
    """The coach, drawing a screen only once it is fully built: on a loaded machine the first
    pull can come before the live screen has composed its parts (the coach's own fix for that
    is its screens' ``ready`` flag), which is not what this test is about."""

    CSS_PATH = str(Path(app_module.__file__).parent / "coach.tcss")  # relative to the app's module

    def pull(self) -> None:
        if self.screen.query("#reps") or not self.screen.query(".banner"):
            super().pull()


def banner(app: CoachApp) -> str:
    found = app.screen.query(".banner").results(Static)
    return "".join(str(b.render()) for b in found)


def test_the_coach_waits_for_the_daemon_and_shows_reconnecting_while_it_restarts(tmp_path: Path) -> None:
    asyncio.run(_reconnecting(tmp_path))


async def _reconnecting(tmp_path: Path) -> None:
    path = tmp_path / "hub.sock"
    feed = SocketFeed(path, reconnect_s=0.1)
    app = BuiltScreensCoach(feed, EmptyCatalogue())
    second = None
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            # The coach starts before the daemon (as the kiosk may): it waits, and says so.
            await until(pilot, lambda: "WAITING" in banner(app))
            # The live screen fully built (its rep table is the last part composed).
            await until(pilot, lambda: bool(app.screen.query("#reps")))
            assert app.screen.has_class("demo")  # the banner is shown
            first = await asyncio.to_thread(DaemonThread(path).start)
            await until(pilot, lambda: app.model.latest is not None)
            assert not app.screen.has_class("demo")
            await asyncio.to_thread(first.stop)
            await until(pilot, lambda: "RECONNECTING" in banner(app))
            assert app.screen.has_class("demo")  # the banner is shown
            assert app.model.latest is None  # the old picture is gone
            second = await asyncio.to_thread(DaemonThread(path).start)
            await until(pilot, lambda: app.model.latest is not None)
            await until(pilot, lambda: not app.screen.has_class("demo"))
            assert app.model.hello is not None and app.model.hello.backend.startswith("sim:")
    finally:
        if second is not None:
            second.stop()
