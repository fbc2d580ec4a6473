"""The daemon on a simulated rig: several coaches, a coach dying, a daemon restart under an
attached coach, the notify protocol with a stalling sampler, the degraded mode."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import pytest
from daemon_helpers import (
    DaemonThread,
    FakeNotifySocket,
    LineClient,
    StallingSource,
    wait_for,
)
from spinecoach.backend import Backend
from spinecoach.daemon import PROGRESS_WINDOW_S, open_daemon_source
from spinecoach.errors import SensorError
from spinecoach.hub.client import SocketFeed
from spinecoach.hub.messages import Ack, Command, Frame, Hello, State
from spinecoach.notify import Notifier
from spinecoach.tui.model import FeedReset


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "run" / "hub.sock"


def test_two_coaches_see_the_same_session_and_each_gets_its_own_answers(sock_path: Path) -> None:
    daemon = DaemonThread(sock_path).start()
    try:
        a, b = LineClient(sock_path), LineClient(sock_path)
        for client in (a, b):
            assert client.read()["type"] == "hello"
            assert client.read()["type"] == "state"
        seen_a: list[dict] = []
        a.read_until(lambda m: m["type"] == "event" and m["kind"] == "rep", seen=seen_a)
        frames = [m["t_s"] for m in seen_a if m["type"] == "frame"]
        assert len(frames) >= 10
        # At most 30 frames in any second of sample time.
        assert max(sum(t <= u < t + 1.0 for u in frames) for t in frames) <= 30
        b.read_until(lambda m: m["type"] == "event" and m["kind"] == "rep")
        a.send("set_mode", mode="tracking")
        ack = a.read_until(lambda m: m["type"] == "ack")
        assert ack["ok"] and ack["cmd"] == "set_mode"
        seen_b: list[dict] = []
        state = b.read_until(lambda m: m["type"] == "state" and m["mode"] == "tracking", seen=seen_b)
        assert state["mode"] == "tracking"
        assert not any(m["type"] == "ack" for m in seen_b)  # the answer went to the asker only
        a.close()
        b.close()
    finally:
        daemon.stop()


def test_a_coach_dying_mid_stream_does_not_disturb_the_others(sock_path: Path) -> None:
    daemon = DaemonThread(sock_path).start()
    try:
        dying, healthy = LineClient(sock_path), LineClient(sock_path)
        dying.read_until(lambda m: m["type"] == "frame")
        wait_for(lambda: len(daemon.daemon.server.clients()) == 2)
        # An abortive close (RST), as when the coach's SSH session is killed.
        dying.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        dying.sock.close()
        wait_for(lambda: len(daemon.daemon.server.clients()) == 1)
        last = healthy.read_until(lambda m: m["type"] == "frame")["t_s"]
        later = healthy.read_until(lambda m: m["type"] == "frame" and m["t_s"] > last + 0.5)
        assert later["t_s"] > last
        assert any("detached" in line for line in daemon.lines)
        healthy.close()
    finally:
        daemon.stop()


def test_a_coach_reconnects_when_the_daemon_restarts(sock_path: Path) -> None:
    first = DaemonThread(sock_path).start()
    feed = SocketFeed(sock_path, reconnect_s=0.1)
    feed.start()
    try:
        posted: list = []
        wait_for(lambda: posted.extend(feed.poll()) or any(isinstance(p, Frame) for p in posted))
        assert isinstance(posted[0], FeedReset) and isinstance(posted[1], Hello)
        assert feed.link == ""
        first.stop()
        wait_for(lambda: feed.link.startswith("RECONNECTING"))
        feed.send(Command("start_set"))
        refused = [p for p in feed.poll() if isinstance(p, Ack)]
        assert refused and not refused[-1].ok and "not connected" in refused[-1].message
        second = DaemonThread(sock_path).start()
        try:
            wait_for(lambda: feed.connected)
            assert feed.link == "" and feed.connections >= 2
            posted = []
            wait_for(lambda: posted.extend(feed.poll()) or any(isinstance(p, Frame) for p in posted))
            start = next(i for i, p in enumerate(posted) if isinstance(p, FeedReset))
            # The mailbox coalesces states (a newer one replaces a waiting one, at its own
            # place), so a state follows the hello but frames may come between them.
            assert isinstance(posted[start + 1], Hello)
            assert any(isinstance(p, State) for p in posted[start + 2:])
        finally:
            second.stop()
    finally:
        feed.close()


def test_a_coach_attaching_while_the_daemon_starts_gets_the_hello_first(
    sock_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spinecoach.hub.server import HubServer

    serve_queries = HubServer.serve_queries

    def slow_serve_queries(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.3)  # widens the start-up window a retrying coach can attach in
        return serve_queries(self, *args, **kwargs)

    monkeypatch.setattr(HubServer, "serve_queries", slow_serve_queries)
    daemon = DaemonThread(sock_path)
    daemon.thread.start()  # not waiting for READY: the coach retries as the daemon starts
    try:
        deadline = time.monotonic() + 10.0
        while True:
            try:
                client = LineClient(sock_path)
                break
            except OSError:
                assert time.monotonic() < deadline, "the daemon never listened"
                time.sleep(0.005)
        assert client.read()["type"] == "hello"
        client.close()
        assert daemon.daemon.ready.wait(10.0)
    finally:
        daemon.stop()


def test_notify_ready_once_watchdog_only_while_sampling_stopping_at_the_end(
    sock_path: Path, tmp_path: Path
) -> None:
    notify = FakeNotifySocket(tmp_path / "notify.sock")
    sources: list[StallingSource] = []

    def stalling(backend: Backend) -> StallingSource:
        sources.append(StallingSource(open_daemon_source(backend), stall_after_s=1.0))
        return sources[-1]

    daemon = DaemonThread(sock_path, notifier=Notifier(notify.environ(watchdog_usec=200_000)),
                          open_source=stalling)
    try:
        daemon.start()
        wait_for(lambda: sources and sources[0].stalled_at is not None, timeout_s=5.0)
        stalled_at = sources[0].stalled_at
        time.sleep(PROGRESS_WINDOW_S + 1.5)
        pings = notify.times("WATCHDOG")
        ready = notify.times("READY")
        assert len(ready) == 1
        assert len([t for t in pings if t < stalled_at]) >= 3  # pinging while samples flow
        after = [t for t in pings if t > stalled_at]
        assert not after or max(after) - stalled_at <= 2.0  # and stopped within 2 s of the stall
        assert any("stalled" in fields.get("STATUS", "") for _t, fields in notify.received)
        assert not notify.times("STOPPING")
    finally:
        daemon.stop()
        notify_stopping = notify.times("STOPPING")
        notify.close()
    assert len(notify_stopping) == 1


def test_no_sensor_answering_is_the_degraded_mode(sock_path: Path, tmp_path: Path) -> None:
    notify = FakeNotifySocket(tmp_path / "notify.sock")

    def no_sensors(backend: Backend):  # type: ignore[no-untyped-def]
        raise SensorError("no sensor answered on /dev/i2c-1: check the wiring")

    daemon = DaemonThread(sock_path, backend="hardware", open_source=no_sensors,
                          notifier=Notifier(notify.environ(watchdog_usec=200_000)))
    try:
        daemon.start()
        wait_for(lambda: notify.times("READY"))
        status = next(f["STATUS"] for _t, f in notify.received if "READY" in f)
        assert status.startswith("degraded: no sensor answered")
        client = LineClient(sock_path)
        seen: list[dict] = []
        state = client.read_until(lambda m: m["type"] == "state", seen=seen)
        assert {s["status"] for s in state["sensors"].values()} == {"missing"}
        assert any(m["type"] == "event" and "no sensors" in m["message"] for m in seen)
        client.send("start_set")
        ack = client.read_until(lambda m: m["type"] == "ack")
        assert not ack["ok"] and "no sensors" in ack["message"]
        time.sleep(0.5)
        assert len(notify.times("WATCHDOG")) >= 2  # the retry loop keeps the watchdog fed
        client.close()
    finally:
        daemon.stop()
        notify.close()


def test_tare_zeroes_the_load_cell_between_sets_only(sock_path: Path) -> None:
    from daemon_helpers import SCENARIO
    from spinecoach.acquisition.source import open_sim_source

    def rig_as_hardware(backend: Backend):  # type: ignore[no-untyped-def]
        return open_sim_source(SCENARIO, realtime=True)  # a hardware backend: nothing autostarts

    daemon = DaemonThread(sock_path, backend="hardware", open_source=rig_as_hardware).start()
    try:
        client = LineClient(sock_path)
        client.read_until(lambda m: m["type"] == "frame" and m["force_n"] is not None)
        time.sleep(0.6)  # a full tare window of codes
        client.send("tare")
        ack = client.read_until(lambda m: m["type"] == "ack")
        assert ack["ok"], ack
        offset = float(ack["message"].split("(")[1].split()[0])

        def offsets() -> tuple[float, float]:
            sampler = next(s for s in daemon.daemon._source.streams if s.kind == "force")
            session = next(s for s in daemon.daemon.session._streams if s.kind == "force")
            return sampler.force_offset_counts, session.force_offset_counts

        # In force at the sampler, and the session restarted on the new stream table.
        wait_for(lambda: abs(offsets()[0] - offset) <= 0.5 and offsets()[0] == offsets()[1])
        first = client.read_until(lambda m: m["type"] == "frame")["t_s"]
        # Frames queued before the tare came in force are behind us after half a second.
        later = client.read_until(lambda m: m["type"] == "frame" and m["t_s"] > first + 0.5)
        assert abs(later["force_n"]) < 50.0  # about zero: the rig hangs unloaded before a set
        # Between sets, with the recording's exercise: a band-profile capture starts (its own
        # test is test_daemon_band_profile.py).
        client.send("calibrate", step="band_profile")
        started = client.read_until(lambda m: m["type"] == "ack")
        assert started["ok"] and "capture started" in started["message"], started
        client.close()
    finally:
        daemon.stop()


def test_blocks_closed_before_a_tare_stay_with_the_session_they_were_scaled_for(
    sock_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from daemon_helpers import SCENARIO
    from spinecoach.acquisition.source import open_sim_source
    from spinecoach.hub.session import HubSession

    def rig_as_hardware(backend: Backend):  # type: ignore[no-untyped-def]
        return open_sim_source(SCENARIO, realtime=True)

    fed: list[bool] = []  # per force block: on the stream entry of the session it went to
    process = HubSession.process

    def slow_checked_process(self, block, arrival_ns=None):  # type: ignore[no-untyped-def]
        if block.info.kind == "force":
            fed.append(self.stream(block.info.name) == block.info)
        time.sleep(0.012)  # a slow engine: blocks wait in the queue when the tare comes
        return process(self, block, arrival_ns)

    monkeypatch.setattr(HubSession, "process", slow_checked_process)
    daemon = DaemonThread(sock_path, backend="hardware", open_source=rig_as_hardware).start()
    try:
        client = LineClient(sock_path)
        client.read_until(lambda m: m["type"] == "frame" and m["force_n"] is not None)
        time.sleep(0.6)
        client.send("tare")
        assert client.read_until(lambda m: m["type"] == "ack")["ok"]
        blocks_at_tare = len(fed)
        wait_for(lambda: len(fed) > blocks_at_tare + 40)
        client.close()
    finally:
        daemon.stop()
    assert fed and all(fed), f"{fed.count(False)} force blocks reached a session of another scale"


def test_the_configured_hand_over_sets_how_much_sample_time_the_engine_gets_at_once(
    sock_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spinecoach.config import load_config
    from spinecoach.hub.session import HubSession

    config_file = tmp_path / "config.toml"
    config_file.write_text("[device]\nhandover_s = 0.05\n")
    spans_s: list[float] = []
    process = HubSession.process

    def measured_process(self, block, arrival_ns=None):  # type: ignore[no-untyped-def]
        if block.info.kind == "imu" and len(block) > 1:
            spans_s.append(len(block) / block.info.rate_hz)
        return process(self, block, arrival_ns)

    monkeypatch.setattr(HubSession, "process", measured_process)
    # No source opener given: the daemon opens the backend with the configured hand-over.
    daemon = DaemonThread(sock_path, open_source=None, config=load_config([config_file])).start()
    try:
        wait_for(lambda: len(spans_s) >= 10)
    finally:
        daemon.stop()
    # Blocks span the hand-over (a FIFO drain's frames more at most), not the default.
    assert all(0.045 <= span <= 0.06 for span in spans_s[1:-1]), spans_s


def test_tare_is_refused_while_a_set_runs(sock_path: Path) -> None:
    daemon = DaemonThread(sock_path).start()  # a scenario runs its set at once
    try:
        client = LineClient(sock_path)
        client.read_until(lambda m: m["type"] == "state" and m["set_state"] == "running")
        client.send("tare")
        ack = client.read_until(lambda m: m["type"] == "ack")
        assert not ack["ok"] and "stop the set first" in ack["message"]
        client.close()
    finally:
        daemon.stop()


@pytest.mark.parametrize("stop_after", range(1, 25))
def test_stopping_mid_batch_never_hands_a_block_over_twice(stop_after: int) -> None:
    from daemon_helpers import SCENARIO
    from spinecoach.acquisition.source import open_sim_source
    from spinecoach.daemon import _StampedSource

    stamped = _StampedSource(open_sim_source(SCENARIO))  # virtual clock: deterministic
    next_index: dict[str, int] = {}
    blocks = stamped.blocks()
    for count, block in enumerate(blocks, 1):
        next_index[block.info.name] = int(block.index[-1]) + 1
        if count == stop_after:
            break
    blocks.close()  # what SamplerThread.stop() does between two blocks
    for block in stamped.finish():
        if len(block):
            assert int(block.index[0]) >= next_index.get(block.info.name, 0)
    stamped.source.close()
