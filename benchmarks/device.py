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

Goals: daemon CPU <= 5 %, coach <= 15 %, p99 <= 5 ms, RSS <= 80 MB, ready <= 2 s.

    python benchmarks/device.py [--seconds 30] [--scenario good_morning_tempo] [--coach model]
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


def measure(scenario: str, seconds: float, settle_s: float, coach_kind: str,
            nice: int = 0) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="spinecoach-bench-"))
    notify = NotifyListener(tmp / "notify.sock")
    socket_path = tmp / "hub.sock"
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC="10000000",
               SPINECOACH_CONFIG=str(tmp / "absent.toml"), SPINECOACH_STATE_DIR=str(tmp / "state"))
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
        daemon_before, coach_before = cpu_s(daemon.pid), cpu_s(coach.pid)
        start = time.monotonic()
        time.sleep(seconds)
        wall = time.monotonic() - start
        load = os.getloadavg()[0]
        daemon_cpu = (cpu_s(daemon.pid) - daemon_before) / wall * 100
        coach_cpu = (cpu_s(coach.pid) - coach_before) / wall * 100
        per_thread: dict[str, float] = {}
        for tid, name in threads(daemon.pid).items():
            try:
                used = cpu_s(daemon.pid, tid) - before.get(tid, 0.0)
            except OSError:
                continue
            per_thread[name] = per_thread.get(name, 0.0) + used / wall * 100
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
    print(f"scenario sim:{scenario}, coach {coach_kind}, window {wall:.1f} s after {settle_s:g} s "
          f"settling, nice {nice}, load average {load:.1f} on {os.cpu_count()} CPUs; "
          f"daemon exit {status}, {watchdogs} watchdog pings")
    print("daemon threads (% of one core): " + ", ".join(
        f"{name} {pct:.1f}" for name, pct in sorted(per_thread.items(), key=lambda kv: -kv[1])
        if pct >= 0.05))
    print(f"buzzer commands: {commands} over {len(p99s)} session(s)")
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
    parser.add_argument("--textual-child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model-child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.textual_child is not None:
        return run_coach_child(args.textual_child, args.seconds)
    if args.model_child is not None:
        return run_model_child(args.model_child, args.seconds)
    figures = measure(args.scenario, args.seconds, args.settle, args.coach, args.nice)
    units = {"daemon_cpu_pct": "%", "daemon_cpu_without_sampler_pct": "%", "coach_cpu_pct": "%",
             "latency_p99_ms": "ms", "daemon_rss_mb": "MB", "ready_s": "s"}
    for name, value in figures.items():
        goal = GOALS.get(name)
        verdict = "" if goal is None else ("  ok" if value <= goal else f"  MISSED by {value - goal:.2f}")
        goal_text = "" if goal is None else f" (goal <= {goal:g})"
        print(f"{name:32s} {value:8.2f} {units[name]}{goal_text}{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
