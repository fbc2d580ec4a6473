"""Helpers for the daemon tests: a daemon on a thread, raw socket clients, a fake notify socket."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from spinecoach.acquisition.source import Source
from spinecoach.backend import Backend
from spinecoach.config import Config, load_config
from spinecoach.daemon import Daemon, open_daemon_source
from spinecoach.drivers.blocks import Block
from spinecoach.notify import Notifier

SCENARIO = "good_morning_tempo"


def wait_for(predicate: Callable[[], Any], timeout_s: float = 5.0, step_s: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"condition not met within {timeout_s} s")


class DaemonThread:
    """A daemon running on a background thread (no signal handlers), stopped with :meth:`stop`."""

    def __init__(self, socket_path: Path, *, notifier: Notifier | None = None,
                 open_source: Callable[[Backend], Source] | None = open_daemon_source,
                 backend: str = f"sim:{SCENARIO}", haptics: Any = None,
                 config: Config | None = None) -> None:
        self.lines: list[str] = []
        self.daemon = Daemon(Backend.parse(backend), config or load_config([]), socket_path,
                             notifier=notifier, open_source=open_source, haptics=haptics,
                             say=self.lines.append, pipeline_factory=FakePipeline)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.daemon.run()
        except BaseException as error:  # noqa: BLE001 - surfaced by the test
            self.error = error
            self.daemon.ready.set()

    def start(self) -> DaemonThread:
        self.thread.start()
        assert self.daemon.ready.wait(10.0), "daemon not ready within 10 s"
        assert self.error is None, self.error
        return self

    def stop(self) -> None:
        self.daemon.stop()
        self.thread.join(5.0)
        assert not self.thread.is_alive(), "daemon did not stop within 5 s"
        assert self.error is None, self.error


class LineClient:
    """A raw hub client: read decoded JSON lines, send commands."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.settimeout(2.0)
        self._pending = b""

    def read(self) -> dict[str, Any]:
        while b"\n" not in self._pending:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the daemon closed the connection")
            self._pending += data
        line, self._pending = self._pending.split(b"\n", 1)
        return json.loads(line)

    def read_until(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 5.0,
                   seen: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            message = self.read()
            if seen is not None:
                seen.append(message)
            if predicate(message):
                return message
        raise AssertionError("expected message not received")

    def send(self, cmd: str, **args: Any) -> None:
        line = json.dumps({"v": 1, "type": "command", "cmd": cmd, "args": args}) + "\n"
        self.sock.sendall(line.encode())

    def close(self) -> None:
        self.sock.close()


class FakeNotifySocket:
    """A datagram socket standing in for systemd's: records (monotonic time, fields)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.received: list[tuple[float, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.received.append((time.monotonic(), fields))

    def times(self, key: str) -> list[float]:
        return [t for t, fields in self.received if key in fields]

    def environ(self, watchdog_usec: int = 200_000) -> dict[str, str]:
        return {"NOTIFY_SOCKET": str(self.path), "WATCHDOG_USEC": str(watchdog_usec)}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.sock.close()


class StallingSource(Source):
    """A real simulated source that stops delivering after ``stall_after_s`` of wall time, as a
    hung bus would: its iterator blocks until the source is closed."""

    def __init__(self, inner: Source, stall_after_s: float) -> None:
        self.inner = inner
        self.stall_after_s = stall_after_s
        self.stalled_at: float | None = None
        self._released = threading.Event()
        self.meta = inner.meta
        self.notes = []
        self.description = "stalling"
        self.duration_s = None

    @property
    def streams(self):  # type: ignore[override]
        return self.inner.streams

    def start(self) -> None:
        self.inner.start()  # type: ignore[attr-defined]

    def blocks(self, duration_s: float | None = None) -> Iterator[Block]:
        start = time.monotonic()
        for block in self.inner.blocks(duration_s):
            if time.monotonic() - start >= self.stall_after_s:
                self.stalled_at = time.monotonic()
                self._released.wait()
                return
            yield block

    def close(self) -> None:
        self._released.set()
        self.inner.close()


class FakePipeline:
    """Stands in for the measurement pipeline (a cheap one, so tests spend no CPU on detection):
    a swinging angle and a rep every :data:`REP_EVERY_S` of sample time."""

    REP_EVERY_S = 1.0

    def __init__(self, streams: list[Any], what: Any) -> None:
        self._next_rep_s = self.REP_EVERY_S
        self._live: dict[str, Any] = {"angle_deg": 0.0, "omega_dps": 0.0, "force_n": None,
                                      "phase": "still"}

    def _advance(self, t_s: float) -> list[Any]:
        from spinecoach.core.results import CoreEvent, RepResult, Tempo

        self._live.update(angle_deg=30.0 + 30.0 * math.sin(t_s), omega_dps=30.0 * math.cos(t_s),
                          phase="eccentric" if math.cos(t_s) > 0 else "concentric")
        events = []
        while t_s >= self._next_rep_s:
            end = self._next_rep_s
            events.append(CoreEvent("rep", end, RepResult(
                start_s=end - 0.9, end_s=end, rom_deg=50.0, tempo=Tempo(0.3, 0.1, 0.4, 0.1),
                peak_eccentric_speed_dps=80.0, mean_concentric_speed_dps=60.0,
                peak_force_n=200.0)))
            self._next_rep_s += self.REP_EVERY_S
        return events

    def feed_imu(self, name: str, index: Any, gyro_dps: Any, accel_g: Any, valid: Any) -> list[Any]:
        return self._advance(float(index[-1]) / 1000.0) if len(index) else []

    def feed_force(self, name: str, index: Any, force_n: Any, valid: Any) -> list[Any]:
        if len(index):
            self._live["force_n"] = float(force_n[-1])
        return []

    def finish(self) -> None:
        return None

    @property
    def live(self) -> dict[str, Any]:
        return dict(self._live)
