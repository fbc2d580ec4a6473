"""The device as it runs: `spinecoach daemon` on the simulated rig with one coach attached.

Starts the daemon as its own process (``--backend sim:SCENARIO --store``: the rig's IMU at
1 kHz and load cell at 320 SPS, paced to real time, sessions stored as on the device) with a
stand-in systemd notify socket, attaches one coach (the Textual app, headless, at 80×24, over
the socket), lets both settle, then measures over a window:

- daemon CPU (% of one core; utime+stime from /proc), total and per thread — the sampler thread
  includes the register-level chip *simulation*, which on the device is replaced by I2C reads;
- coach CPU (% of one core);
- sample-to-buzzer latency p99 (ms): the daemon's own figure, from the sampler handing a block
  over to the buzzer command, printed per session on its log when the session ends (the worst
  session is reported);
- daemon RSS (MB, the peak VmHWM);
- daemon time to READY (s): from spawning the process to the READY=1 datagram.

With ``--breakdown`` it also measures, in its own process and warm, where the daemon's cycles go
per second of rig time: simulated hardware, driver logic, sampler, pipeline and engine, store,
hub serialisation (see :func:`breakdown`).

Goals: daemon CPU <= 5 %, coach <= 15 %, p99 <= 5 ms, RSS <= 80 MB, ready <= 2 s.

    python benchmarks/device.py [--seconds 30] [--scenario good_morning_tempo] [--coach model]
                                [--handover S] [--breakdown]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TICKS_S = os.sysconf("SC_CLK_TCK")
GOALS = {"daemon_cpu_pct": 5.0, "coach_cpu_pct": 15.0, "latency_p99_ms": 5.0,
         "daemon_rss_mb": 80.0, "ready_s": 2.0}


def cpu_s(pid: int, tid: int | None = None) -> float:
    """CPU time (user + system, s) of a process or one of its threads."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_S


def threads(pid: int) -> dict[int, str]:
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = (task / "comm").read_text().strip()
        except OSError:
            continue
    return out


def wakeups(pid: int, tid: int) -> int:
    """Voluntary context switches of a thread so far: each is one sleep and one wake-up."""
    match = re.search(r"voluntary_ctxt_switches:\s+(\d+)",
                      Path(f"/proc/{pid}/task/{tid}/status").read_text())
    return int(match.group(1)) if match else 0


def peak_rss_mb(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


class NotifyListener:
    """A stand-in for systemd's notify socket: the time READY=1 arrived."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.path = path
        self.ready_at: float | None = None
        self.watchdogs = 0
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096).decode()
            except (TimeoutError, OSError):
                continue
            if "READY=1" in data and self.ready_at is None:
                self.ready_at = time.monotonic()
            self.watchdogs += "WATCHDOG=1" in data

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def run_coach_child(socket_path: Path, seconds: float) -> int:
    """The coach process: the Textual app, headless, attached to the daemon for ``seconds``."""
    from spinecoach.hub.client import SocketFeed
    from spinecoach.tui.app import CoachApp
    from spinecoach.tui.catalogue import EmptyCatalogue

    app = CoachApp(SocketFeed(socket_path), EmptyCatalogue())
    app.call_later(lambda: app.set_timer(seconds, app.exit))
    app.run(headless=True, size=(80, 24))
    return 0


def run_model_child(socket_path: Path, seconds: float) -> int:
    """A coach without Textual: the socket feed folded into the coach's model at 30 Hz, to tell
    the transport's share of the coach's CPU from the drawing's."""
    from spinecoach.hub.client import SocketFeed
    from spinecoach.tui.model import CoachModel

    feed, model = SocketFeed(socket_path), CoachModel()
    feed.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for item in feed.poll():
            model.apply(item)
        time.sleep(1 / 30)
    feed.close()
    return 0


class _Timers:
    """Time (s) spent inside wrapped callables, by part: ``perf_counter``, which in one busy
    thread is its CPU time, and cheap to read (the thread's CPU clock is a system call)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def wrap(self, part: str, owner: object, name: str) -> None:
        inner = getattr(owner, name)

        def timed(*args: object, **kwargs: object) -> object:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.spent[part] = self.spent.get(part, 0.0) + time.perf_counter() - start

        setattr(owner, name, timed)


def _sampler_run(
    scenario: str, seconds: float, timers: _Timers | None, handover_s: float | None = None
) -> tuple[list[Any], list[Any], float, int]:
    """The daemon's source on the virtual clock for ``seconds``: its streams and blocks, the time
    the run took (``perf_counter``; thread CPU time without ``timers``) and the bus transactions.
    With ``timers``, the time inside the simulated bus and inside the drivers is accumulated."""
    from spinecoach.acquisition.source import open_source
    from spinecoach.daemon import DAEMON_SAMPLER, daemon_sampler

    settings = DAEMON_SAMPLER if handover_s is None else daemon_sampler(handover_s)
    source = open_source(f"sim:{scenario}", settings=settings)
    bus = source.bus  # type: ignore[attr-defined]
    if timers is not None:
        for name in ("read_byte_data", "write_byte_data", "read_i2c_block_data",
                     "write_i2c_block_data", "read_block", "i2c_rdwr"):
            timers.wrap("sim", bus, name)
    source.start()  # type: ignore[attr-defined]
    if timers is not None:
        sampler = source.sampler  # type: ignore[attr-defined]
        for channel in [*sampler._imus, *sampler._forces]:
            for name in ("drain", "poll", "check_configuration"):
                if hasattr(channel.driver, name):
                    timers.wrap("drivers", channel.driver, name)
    clock = time.perf_counter if timers is not None else time.thread_time
    start = clock()
    blocks = list(source.blocks(seconds))
    return list(source.streams), blocks, clock() - start, bus.counters.transactions


def breakdown(scenario: str, seconds: float, handover_s: float | None = None) -> dict[str, float]:
    """Where the daemon's own cycles go: CPU (% of one core) per second of rig time of each part
    of its work, measured warm in this process on the virtual clock (no pacing, no threads, no
    coach, no wake-ups); the live figures also pay for waking up ~100 times a second.

    The sampler's side runs the daemon's source (its sampler settings) twice: once for its CPU
    time, once with timers around the simulated bus and the drivers for the shares of that time.
    The engine's side feeds those blocks to the session the daemon runs (pipeline, protocol,
    cues, frames, store) and its calibration windows, and encodes the messages as the hub does.
    """
    from spinecoach.calibration_steps import DeferredWindow as _DeferredWindow
    from spinecoach.config import load_config
    from spinecoach.daemon import measurement_pipeline
    from spinecoach.engine.library import load_library
    from spinecoach.engine.session import open_store, scenario_defaults
    from spinecoach.hub.messages import encode
    from spinecoach.hub.session import HubSession, SessionChoice

    streams, blocks, sampler_cpu_s, transactions = _sampler_run(scenario, seconds, None, handover_s)
    timers = _Timers()
    _, _, sampler_wall_s, _ = _sampler_run(scenario, seconds, timers, handover_s)
    sim_share = timers.spent.get("sim", 0.0) / sampler_wall_s
    driver_share = timers.spent.get("drivers", 0.0) / sampler_wall_s - sim_share

    config = load_config()
    defaults = scenario_defaults(scenario)
    store = open_store(config, lambda _: None)
    timers.wrap("store", store, "add_block")
    session = HubSession(
        streams, f"sim:{scenario}",
        SessionChoice(athlete="bench", exercise=defaults.exercise, protocol=defaults.protocol),
        library=load_library(config.exercises_dir()), autostart=True, store=store,
        pipeline_factory=measurement_pipeline)
    windows = [_DeferredWindow(0.5), _DeferredWindow(), _DeferredWindow()]
    encoded, hub_s = 0, 0.0
    cpu_start, wall_start = time.thread_time(), time.perf_counter()
    session.start()
    for block in blocks:
        messages = session.process(block)
        hub_start = time.perf_counter()
        encoded += sum(len(encode(m)) for m in messages)
        hub_s += time.perf_counter() - hub_start
        for window in windows[:2] if block.info.kind == "force" else windows[2:]:
            window.add(block)
    session.finish()
    engine_cpu_s = time.thread_time() - cpu_start
    engine_wall_s = time.perf_counter() - wall_start
    store.close(timeout_s=5.0)
    store_share = timers.spent.get("store", 0.0) / engine_wall_s
    hub_share = hub_s / engine_wall_s
    parts = {
        "simulated hardware (rig signals, chip registers, SimBus)": sampler_cpu_s * sim_share,
        "driver logic (FIFO parsing, polling, retries)": sampler_cpu_s * driver_share,
        "sampler and accounting": sampler_cpu_s * (1.0 - sim_share - driver_share),
        "pipeline, engine, session, windows": engine_cpu_s * (1.0 - store_share - hub_share),
        "store (queueing blocks; not its writer thread)": engine_cpu_s * store_share,
        "hub serialisation (JSON lines)": engine_cpu_s * hub_share,
    }
    print(f"breakdown over {seconds:g} s of sim:{scenario} (warm, one thread): "
          f"{transactions / seconds:.0f} bus transactions/s, {len(blocks) / seconds:.0f} blocks/s,"
          f" {encoded / seconds / 1000:.1f} kB/s of hub lines")
    for name, used_s in parts.items():
        print(f"  {name:58s} {used_s / seconds * 100:6.2f} % of one core")
    return {name: used_s / seconds * 100 for name, used_s in parts.items()}


def measure(scenario: str, seconds: float, settle_s: float, coach_kind: str,
            nice: int = 0, handover_s: float | None = None) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="spinecoach-bench-"))
    notify = NotifyListener(tmp / "notify.sock")
    socket_path = tmp / "hub.sock"
    config = tmp / "config.toml"  # the defaults, or the hand-over asked for
    config.write_text("" if handover_s is None else f"[device]\nhandover_s = {handover_s!r}\n")
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC="10000000",
               SPINECOACH_CONFIG=str(config), SPINECOACH_STATE_DIR=str(tmp / "state"))
    spawned = time.monotonic()
    # `nice -n N` (coreutils) so the priority holds from the first instruction (start-up too).
    niced = ["nice", "-n", str(nice)] if nice else []
    daemon = subprocess.Popen(
        [*niced, sys.executable, "-m", "spinecoach", "daemon", "--backend", f"sim:{scenario}",
         "--socket", str(socket_path), "--store"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(daemon.stdout or []), daemon=True).start()
    coach = None
    try:
        while notify.ready_at is None:
            if daemon.poll() is not None or time.monotonic() - spawned > 30:
                raise SystemExit("the daemon did not become ready:\n" + "".join(log))
            time.sleep(0.005)
        ready_s = notify.ready_at - spawned
        coach = subprocess.Popen(
            [*niced, sys.executable, __file__, f"--{coach_kind}-child", str(socket_path),
             "--seconds", str(seconds + settle_s + 5)], env=env)
        time.sleep(settle_s)
        names = threads(daemon.pid)
        before = {tid: cpu_s(daemon.pid, tid) for tid in names}
        woken = {tid: wakeups(daemon.pid, tid) for tid in names}
        daemon_before, coach_before = cpu_s(daemon.pid), cpu_s(coach.pid)
        start = time.monotonic()
        time.sleep(seconds)
        wall = time.monotonic() - start
        load = os.getloadavg()[0]
        daemon_cpu = (cpu_s(daemon.pid) - daemon_before) / wall * 100
        coach_cpu = (cpu_s(coach.pid) - coach_before) / wall * 100
        per_thread: dict[str, float] = {}
        per_thread_wakeups: dict[str, float] = {}
        for tid, name in threads(daemon.pid).items():
            try:
                used = cpu_s(daemon.pid, tid) - before.get(tid, 0.0)
                woke = wakeups(daemon.pid, tid) - woken.get(tid, 0)
            except OSError:
                continue
            per_thread[name] = per_thread.get(name, 0.0) + used / wall * 100
            per_thread_wakeups[name] = per_thread_wakeups.get(name, 0.0) + woke / wall
        rss = peak_rss_mb(daemon.pid)
        watchdogs = notify.watchdogs
    finally:
        if coach is not None and coach.poll() is None:
            coach.terminate()
            coach.wait(5)
        daemon.send_signal(signal.SIGTERM)
        status = daemon.wait(5)
        time.sleep(0.1)
        notify.close()
    p99s = [float(m.group(1)) for line in log
            if (m := re.search(r"p99 ([0-9.]+) ms", line))]
    commands = sum(int(m.group(1)) for line in log
                   if (m := re.search(r"ended: (\d+) buzzer commands", line)))
    if status != 0:
        print("".join(log[-20:]))
    print(f"scenario sim:{scenario}, coach {coach_kind}, hand-over "
          f"{'default' if handover_s is None else f'{handover_s:g} s'}, "
          f"window {wall:.1f} s after {settle_s:g} s "
          f"settling, nice {nice}, load average {load:.1f} on {os.cpu_count()} CPUs; "
          f"daemon exit {status}, {watchdogs} watchdog pings")
    print("daemon threads (% of one core, wake-ups/s): " + ", ".join(
        f"{name} {pct:.1f} ({per_thread_wakeups.get(name, 0.0):.0f}/s)"
        for name, pct in sorted(per_thread.items(), key=lambda kv: -kv[1]) if pct >= 0.05))
    attached = sum(bool(re.search(r"coach \d+ attached", line)) for line in log)
    print(f"buzzer commands: {commands} over {len(p99s)} session(s); coaches attached: {attached}"
          + ("" if attached else " (the coach never attached: its figure is of an idle app)"))
    return {
        "daemon_cpu_pct": daemon_cpu,
        "daemon_cpu_without_sampler_pct": daemon_cpu - per_thread.get("sc-sampler", 0.0),
        "coach_cpu_pct": coach_cpu,
        "latency_p99_ms": max(p99s) if p99s else float("nan"),
        "daemon_rss_mb": rss,
        "ready_s": ready_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window (s)")
    parser.add_argument("--settle", type=float, default=5.0, help="settling time first (s)")
    parser.add_argument("--scenario", default="good_morning_tempo")
    parser.add_argument("--coach", choices=("textual", "model"), default="textual",
                        help="the coach attached: the Textual app headless (default), or the "
                        "socket feed and model alone (no drawing)")
    parser.add_argument("--nice", type=int, default=0,
                        help="scheduling priority of daemon and coach (negative: ahead of other "
                        "load on a shared machine, as if alone on the device; needs root)")
    parser.add_argument("--handover", type=float, default=None, metavar="S",
                        help="the daemon's device.handover_s (default: the configuration's)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also measure where the daemon's own cycles go, warm, in this "
                        "process (simulated hardware, drivers, sampler, engine, store, hub)")
    parser.add_argument("--textual-child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model-child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.textual_child is not None:
        return run_coach_child(args.textual_child, args.seconds)
    if args.model_child is not None:
        return run_model_child(args.model_child, args.seconds)
    figures = measure(args.scenario, args.seconds, args.settle, args.coach, args.nice,
                      args.handover)
    units = {"daemon_cpu_pct": "%", "daemon_cpu_without_sampler_pct": "%", "coach_cpu_pct": "%",
             "latency_p99_ms": "ms", "daemon_rss_mb": "MB", "ready_s": "s"}
    for name, value in figures.items():
        goal = GOALS.get(name)
        verdict = "" if goal is None else ("  ok" if value <= goal else f"  MISSED by {value - goal:.2f}")
        goal_text = "" if goal is None else f" (goal <= {goal:g})"
        print(f"{name:32s} {value:8.2f} {units[name]}{goal_text}{verdict}")
    if args.breakdown:
        state = Path(tempfile.mkdtemp(prefix="spinecoach-breakdown-"))
        os.environ.update(SPINECOACH_CONFIG=str(state / "absent.toml"),
                          SPINECOACH_STATE_DIR=str(state))
        breakdown(args.scenario, args.seconds, args.handover)
    return 0


if __name__ == "__main__":
    sys.exit(main())
