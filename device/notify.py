"""The systemd notification protocol (sd_notify), for ``Type=notify`` services.

A datagram of ``KEY=VALUE`` lines sent to the Unix socket named by ``$NOTIFY_SOCKET`` (a leading
``@`` means the abstract namespace). Outside systemd the variable is unset and every call is a
no-op, so the daemon runs the same from a shell.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class Notifier:
    """Sends READY / STATUS / WATCHDOG / STOPPING to systemd.

    ``watchdog_interval_s`` is half of ``$WATCHDOG_USEC`` (systemd's recommendation), or None
    when the unit has no watchdog.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address: str | None = None
        if address:
            self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        wanted = usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.watchdog_interval_s: float | None = int(usec) / 2e6 if wanted else None
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notify socket."""
        return self._address is not None

    def send(self, **fields: str | int) -> bool:
        """Send one notification; returns False (never raises) if it could not be delivered."""
        if self._address is None:
            return False
        payload = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto(payload.encode(), self._address)
        except OSError:
            # systemd restarting or the socket gone: the watchdog will notice, do not crash.
            return False
        return True

    def ready(self, status: str) -> bool:
        """Tell systemd start-up is complete."""
        return self.send(ready=1, status=status)

    def status(self, text: str) -> bool:
        """Update the status line shown by ``systemctl status``."""
        return self.send(status=text)

    def watchdog(self) -> bool:
        """Ping the watchdog; call only while the sampler is making progress."""
        return self.send(watchdog=1)

    def stopping(self) -> bool:
        """Tell systemd shutdown has begun."""
        return self.send(stopping=1)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
