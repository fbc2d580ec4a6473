"""The daemon as a process: SIGTERM, the notify socket, no network sockets, start-up errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from daemon_helpers import SCENARIO, FakeNotifySocket, FakePipeline, LineClient, wait_for
from gpiozero.pins.mock import MockFactory, MockPWMPin
from spinecoach.backend import Backend
from spinecoach.config import load_config
from spinecoach.daemon import Daemon
from spinecoach.drivers.buzzer import Buzzer
from spinecoach.notify import Notifier

SPINECOACH = [sys.executable, "-m", "spinecoach"]


def inet_socket_inodes(pid: int) -> set[str]:
    """Inodes of the process's open sockets that are TCP, UDP or raw IP (v4 or v6)."""
    fd_dir = Path(f"/proc/{pid}/fd")
    open_sockets = set()
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            open_sockets.add(target[8:-1])
    inet = set()
    for table in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if path.exists():
            for line in path.read_text().splitlines()[1:]:
                inet.add(line.split()[9])
    return open_sockets & inet


def test_the_inet_socket_check_sees_a_network_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        assert inet_socket_inodes(os.getpid())


def child_env(tmp_path: Path, notify: FakeNotifySocket) -> dict[str, str]:
    env = dict(os.environ)
    env.update(notify.environ(watchdog_usec=200_000))
    env["SPINECOACH_CONFIG"] = str(tmp_path / "absent.toml")
    env["SPINECOACH_STATE_DIR"] = str(tmp_path / "state")
    return env


def test_sigterm_stops_the_daemon_within_2_s_with_exit_0(tmp_path: Path) -> None:
    notify = FakeNotifySocket(tmp_path / "notify.sock")
    sock_path = tmp_path / "run" / "hub.sock"
    # The command itself, with the real measurement pipeline.
    child = subprocess.Popen([*SPINECOACH, "daemon", "--backend", f"sim:{SCENARIO}", "--socket",
                              str(sock_path)], env=child_env(tmp_path, notify),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: notify.times("READY"), timeout_s=15.0)
        client = LineClient(sock_path)
        client.read_until(lambda m: m["type"] == "frame")
        wait_for(lambda: len(notify.times("WATCHDOG")) >= 3)
        assert not inet_socket_inodes(child.pid)
        sent = time.monotonic()
        child.send_signal(signal.SIGTERM)
        status = child.wait(timeout=5.0)
        took = time.monotonic() - sent
        output = child.stdout.read() if child.stdout else ""
    finally:
        if child.poll() is None:
            child.kill()
        notify.close()
    assert status == 0, output
    assert took < 2.0
    assert len(notify.times("READY")) == 1
    assert len(notify.times("STOPPING")) == 1
    assert "buzzer off" in output
    assert not sock_path.exists()


def test_sigterm_switches_a_buzzing_motor_off(tmp_path: Path) -> None:
    factory = MockFactory(pin_class=MockPWMPin)
    buzzer = Buzzer(pin_factory=factory)
    pin = factory.pin(18)
    lines: list[str] = []
    daemon = Daemon(Backend.parse(f"sim:{SCENARIO}"), load_config([]), tmp_path / "hub.sock",
                    notifier=Notifier({}), haptics=buzzer, say=lines.append,
                    pipeline_factory=FakePipeline)
    observed: dict[str, float] = {}

    def terminate_while_buzzing() -> None:
        daemon.ready.wait(10.0)
        buzzer.play("long")  # 0.4 s at full duty
        wait_for(lambda: pin.state > 0, timeout_s=1.0)
        observed["duty"] = pin.state
        observed["sent"] = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=terminate_while_buzzing, daemon=True)
    helper.start()
    status = daemon.run()  # on the main thread: it owns the SIGTERM handler
    took = time.monotonic() - observed["sent"]
    helper.join(1.0)
    assert status == 0
    assert observed["duty"] == 1.0
    assert pin.state == 0  # off at once, not after the pattern ran out
    assert took < 2.0
    assert lines[-1].startswith("stopped")


def test_a_configuration_error_is_one_line_and_status_78(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text('[device]\nbackend = "carrier-pigeon"\n')
    env = {**os.environ, "SPINECOACH_CONFIG": str(bad)}
    result = subprocess.run([*SPINECOACH, "daemon", "--socket", str(tmp_path / "hub.sock")],
                            env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 78
    assert result.stderr.count("\n") == 1 and "device.backend" in result.stderr


@pytest.mark.skipif(Path("/dev/i2c-1").exists(), reason="this machine has an I2C bus")
def test_hardware_without_an_i2c_bus_exits_78_with_what_to_do(tmp_path: Path) -> None:
    env = {**os.environ, "SPINECOACH_CONFIG": str(tmp_path / "absent.toml")}
    result = subprocess.run(
        [*SPINECOACH, "daemon", "--backend", "hardware", "--socket", str(tmp_path / "hub.sock")],
        env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 78, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "enable I2C" in last and "sim:SCENARIO" in last
