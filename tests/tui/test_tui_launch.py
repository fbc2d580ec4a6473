"""The coach's feeds as the commands build them: the simulated rig live, the demo replay."""

from __future__ import annotations

import time

from spinecoach.backend import Backend
from spinecoach.hub.messages import Frame, Hello, State
from spinecoach.tui.launch import demo_path, live_feed, replay_feed, standalone_feed


def collect(feed, until, timeout_s: float = 20.0) -> list:  # type: ignore[no-untyped-def]
    items: list = []
    deadline = time.monotonic() + timeout_s
    feed.start()
    try:
        while not until(items):
            assert time.monotonic() < deadline, f"feed never got there; it posted {items[:5]}"
            time.sleep(0.05)
            items.extend(feed.poll())
    finally:
        feed.close()
    assert feed.error is None
    return items


def test_the_simulated_rig_runs_its_scenario_live() -> None:
    feed = live_feed(Backend.parse("sim:good_morning_tempo"))
    assert feed.replay is None
    items = collect(feed, lambda got: sum(isinstance(m, Frame) for m in got) >= 20)
    hello = items[0]
    assert isinstance(hello, Hello) and hello.backend == "sim:good_morning_tempo"
    state = [m for m in items if isinstance(m, State)][-1]
    assert (state.exercise, state.protocol) == ("banded_good_morning", "tempo_set")
    assert state.set_state == "running" and state.target["reps"] == 8
    assert {"trunk", "force"} <= set(state.sensors)


def test_the_demo_is_the_bundled_recording_with_the_banner_flag() -> None:
    assert demo_path().is_file()
    feed = standalone_feed(force_demo=True)
    assert feed.replay is not None and feed.replay.duration_s > 30
    items = collect(feed, lambda got: any(isinstance(m, State) for m in got))
    assert isinstance(items[0], Hello) and items[0].demo
    assert [m for m in items if isinstance(m, State)][-1].athlete == "demo"
    plain = replay_feed(demo_path(), paused=True)
    assert plain.replay is not None and plain.replay.paused
    items = collect(plain, lambda got: bool(got))
    assert isinstance(items[0], Hello) and not items[0].demo
