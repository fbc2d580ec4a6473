"""sd_notify messages reach a fake notify socket exactly as systemd expects them."""

from __future__ import annotations

import socket
from pathlib import Path

from spinecoach.notify import Notifier


def _listener(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    return sock


def test_messages_reach_the_notify_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    listener = _listener(path)
    notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "4000000"})
    assert notifier.enabled and notifier.watchdog_interval_s == 2.0
    assert notifier.ready("sensors ok")
    assert listener.recv(4096) == b"READY=1\nSTATUS=sensors ok"
    assert notifier.watchdog()
    assert listener.recv(4096) == b"WATCHDOG=1"
    assert notifier.stopping()
    assert listener.recv(4096) == b"STOPPING=1"
    notifier.close()
    listener.close()


def test_abstract_namespace_address() -> None:
    name = f"spinecoach-test-{id(object())}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind("\0" + name)
    listener.settimeout(2)
    assert Notifier({"NOTIFY_SOCKET": "@" + name}).status("x")
    assert listener.recv(100) == b"STATUS=x"
    listener.close()


def test_outside_systemd_everything_is_a_no_op(tmp_path: Path) -> None:
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_interval_s is None
    assert notifier.ready("x") is False
    # A socket that vanished is reported as not delivered, never raised.
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "missing")})
    assert gone.watchdog() is False


def test_watchdog_for_another_pid_is_ignored() -> None:
    assert Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_interval_s is None
