"""The in-process feed: worker thread, mailbox coalescing, replay pause/seek/speed, commands."""

from __future__ import annotations

import time

import numpy as np
import pytest
from spinecoach.drivers.blocks import Block, ForceBlock, Gap, StreamInfo
from spinecoach.hub.messages import Ack, Command, Frame, Hello, Message, State
from spinecoach.hub.sensors import SensorMonitor
from spinecoach.recording.model import ForceStream, Recording
from spinecoach.tui.feed import Mailbox
from spinecoach.tui.inprocess import SPEEDS, InProcessFeed, ReplayTransport
from spinecoach.tui.model import FeedReset

RATE_HZ = 100.0


def force_recording(duration_s: float = 2.0) -> Recording:
    n = int(duration_s * RATE_HZ)
    info = StreamInfo(name="force", kind="force", rate_hz=RATE_HZ)
    stream = ForceStream(
        info=info,
        index=np.arange(n, dtype=np.int64),
        force_n=np.linspace(0.0, 100.0, n),
        valid=np.ones(n, dtype=bool),
    )
    return Recording(force={"force": stream})


class EchoStage:
    """A stage that reports each block's last force as a frame and acknowledges commands."""

    opened = 0

    def __init__(self) -> None:
        EchoStage.opened += 1

    def hello(self) -> Hello:
        return Hello(daemon="test", backend="replay:test", demo=False)

    def start(self) -> list[Message]:
        return [State(athlete="T")]

    def process(self, block: Block) -> list[Message]:
        assert isinstance(block, ForceBlock)
        return [Frame(t_s=float(block.t_s[-1]), angle_deg=None, speed_dps=None,
                      force_n=float(block.force_n[-1]))]

    def handle(self, command: Command) -> list[Message]:
        return [Ack(command.cmd, True, "done")]

    def finish(self) -> list[Message]:
        return [State(athlete="T", set_state="done")]


def wait_for(predicate, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_replay_runs_to_the_end_and_answers_commands() -> None:
    recording = force_recording(1.0)
    transport = ReplayTransport(recording.duration_s, speed=8.0)
    feed = InProcessFeed(EchoStage, list(recording.blocks(1 / 30)), transport)
    feed.start()
    try:
        wait_for(lambda: transport.finished)
        feed.send(Command("tare"))
        wait_for(lambda: any(isinstance(m, Ack) for m in feed._mailbox._items))
        items = feed.poll()
    finally:
        feed.close()
    assert isinstance(items[0], Hello)
    frames = [m for m in items if isinstance(m, Frame)]
    assert frames[-1].t_s == pytest.approx(0.99)
    assert [f.t_s for f in frames] == sorted(f.t_s for f in frames)
    states = [m for m in items if isinstance(m, State)]
    assert states == [State(athlete="T", set_state="done")]  # coalesced to the newest
    assert Ack("tare", True, "done") in items
    assert transport.position_s == pytest.approx(0.99)


def test_replay_is_paced_by_speed() -> None:
    recording = force_recording(0.5)
    transport = ReplayTransport(recording.duration_s, speed=1.0)
    feed = InProcessFeed(EchoStage, list(recording.blocks(1 / 30)), transport)
    started = time.monotonic()
    feed.start()
    try:
        wait_for(lambda: transport.finished)
    finally:
        feed.close()
    # Half a second of samples at 1x takes about half a second (never much less).
    assert time.monotonic() - started >= 0.4


def test_pause_holds_the_position_and_seek_back_restarts_the_session() -> None:
    recording = force_recording(2.0)
    transport = ReplayTransport(recording.duration_s, speed=1.0, paused=True)
    EchoStage.opened = 0
    feed = InProcessFeed(EchoStage, list(recording.blocks(1 / 30)), transport)
    feed.start()
    try:
        time.sleep(0.15)
        assert transport.position_s == 0.0 and transport.paused
        transport.seek(1.5)  # forward while paused: processed at once, unpaced
        wait_for(lambda: transport.position_s >= 1.4)
        assert transport.paused
        feed.poll()
        transport.seek(-1.0)
        wait_for(lambda: transport.position_s < 1.0)
        items = feed.poll()
        assert isinstance(items[0], FeedReset) and isinstance(items[1], Hello)
        assert EchoStage.opened == 2
        frames = [m for m in items if isinstance(m, Frame)]
        assert frames[0].t_s < 0.1 and frames[-1].t_s <= 0.5 + 1e-9
        transport.seek(-10.0)  # clamped at the start
        wait_for(lambda: transport.position_s == 0.0)
        transport.toggle_pause()
        wait_for(lambda: transport.position_s > 0.05)
    finally:
        feed.close()


def test_speed_steps_are_bounded() -> None:
    transport = ReplayTransport(10.0)
    transport.change_speed(10)
    assert transport.speed == SPEEDS[-1] == 8.0
    transport.change_speed(-10)
    assert transport.speed == SPEEDS[0] == 0.5
    with pytest.raises(ValueError):
        ReplayTransport(1.0, speed=3.0)


def test_live_feed_processes_an_iterator_and_stays_for_commands() -> None:
    recording = force_recording(0.5)
    feed = InProcessFeed(EchoStage, iter(list(recording.blocks(0.1))))
    assert feed.replay is None
    feed.start()
    try:
        feed.send(Command("start_set"))
        wait_for(lambda: any(isinstance(m, Ack) for m in list(feed._mailbox._items)))
        items = feed.poll()
    finally:
        feed.close()
    assert sum(isinstance(m, Frame) for m in items) == 5
    assert not feed._thread.is_alive()


def test_mailbox_bounds_frames_but_keeps_everything_else() -> None:
    box = Mailbox(max_frames=10)
    for i in range(25):
        box.post(Frame(t_s=float(i), angle_deg=None, speed_dps=None, force_n=1.0))
        box.post(State(rep_no=i))
    box.post(Ack("tare", True))
    items = box.take()
    frames = [m for m in items if isinstance(m, Frame)]
    assert [f.t_s for f in frames] == [float(i) for i in range(15, 25)]
    assert [m for m in items if isinstance(m, State)] == [State(rep_no=24)]
    assert box.dropped_frames == 15 and items[-1] == Ack("tare", True)
    box.post(Frame(t_s=1.0, angle_deg=None, speed_dps=None, force_n=1.0))
    box.post(FeedReset())
    assert len(box.take()) == 1 and box.take() == []


def _force_block(start: int, n: int, gaps: tuple[Gap, ...] = (), name: str = "force") -> ForceBlock:
    info = StreamInfo(name=name, kind="force", rate_hz=RATE_HZ)
    index = np.arange(start, start + n, dtype=np.int64)
    return ForceBlock(info, index, np.zeros(n), np.ones(n, dtype=bool), gaps=gaps)


def test_sensor_monitor_measures_rate_gaps_and_staleness_in_sample_time() -> None:
    expected = [StreamInfo(name="trunk", kind="imu", rate_hz=1000.0)]
    monitor = SensorMonitor(expected)
    assert monitor.statuses()["trunk"].status == "missing"
    # add() says when a block may change a status at once: a stream's first block, lost samples
    news = [monitor.add(_force_block(k * 10, 10)) for k in range(30)]  # 3 s of 100 Hz, 0.1 s blocks
    assert news == [True] + [False] * 29
    force = monitor.statuses()["force"]
    assert force.status == "ok" and force.gaps == 0
    assert force.rate_hz == pytest.approx(100.0, rel=0.01)
    assert monitor.add(_force_block(305, 5, (Gap("force", 300, 5, "missed_conversion"),)))
    force = monitor.statuses()["force"]
    assert force.status == "degraded" and force.gaps == 5
    # Another stream moves on by more than a second without the load cell.
    monitor.add(_force_block(0, 500, name="other"))
    assert monitor.statuses()["force"].status == "stale"


def test_a_looping_replay_starts_again_and_seeking_to_the_end_finishes(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from spinecoach.tui import inprocess

    monkeypatch.setattr(inprocess, "LOOP_PAUSE_S", 0.05)
    recording = force_recording(0.5)
    transport = ReplayTransport(recording.duration_s, speed=8.0)
    feed = InProcessFeed(EchoStage, list(recording.blocks(1 / 30)), transport, loop=True)
    seen: list = []
    feed.start()
    try:
        wait_for(lambda: seen.extend(feed.poll()) or sum(isinstance(m, FeedReset) for m in seen) >= 1)
        assert State(athlete="T", set_state="done") in seen  # finished before looping
    finally:
        feed.close()

    closed: list[bool] = []
    transport = ReplayTransport(recording.duration_s, paused=True)
    feed = InProcessFeed(EchoStage, list(recording.blocks(1 / 30)), transport,
                         on_close=lambda: closed.append(True))
    feed.start()
    try:
        transport.seek(60.0)
        wait_for(lambda: transport.finished)
        wait_for(lambda: State(athlete="T", set_state="done") in feed._mailbox._items)
    finally:
        feed.close()
    assert closed == [True]


class FailingStage(EchoStage):
    def process(self, block: Block) -> list[Message]:
        raise ValueError("broken kernel")


def test_a_failing_session_is_kept_for_the_app_to_raise() -> None:
    recording = force_recording(0.2)
    feed = InProcessFeed(FailingStage, iter(list(recording.blocks(0.1))))
    feed.start()
    wait_for(lambda: feed.error is not None)
    feed.close()
    assert isinstance(feed.error, ValueError)


def test_replay_keys_in_the_app_drive_the_transport() -> None:
    import asyncio

    from spinecoach.tui.app import CoachApp

    recording = force_recording(30.0)
    transport = ReplayTransport(recording.duration_s, speed=1.0, paused=True)
    feed = InProcessFeed(EchoStage, list(recording.blocks(1 / 30)), transport)

    async def until(pilot, condition, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        # Polled, not slept: on a loaded machine the worker thread may take a while.
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, "condition not reached in time"
            await pilot.pause(0.02)

    async def run() -> None:
        app = CoachApp(feed)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.replay_label() == "❚❚ paused 0/30 s 1×")
            await pilot.press("right", "right")
            await until(pilot, lambda: transport.position_s == pytest.approx(10.0, abs=0.05))
            await pilot.press("left")
            await until(pilot, lambda: transport.position_s == pytest.approx(5.0, abs=0.05))
            await pilot.press("plus", "plus", "plus")
            assert transport.speed == 8.0
            await pilot.press("minus")
            assert transport.speed == 4.0
            await pilot.press("space")
            assert not transport.paused
            await until(pilot, lambda: transport.position_s > 5.5)
            assert "▶" in app.replay_label() and "4×" in app.replay_label()
            await until(pilot, lambda: "/30 s 4×" in str(app.screen.query_one(".status").render()))
            await until(pilot, lambda: app.model.latest is not None and app.model.latest.t_s > 5.5)

    asyncio.run(run())
    assert not feed._thread.is_alive()  # the app closed the feed on exit
