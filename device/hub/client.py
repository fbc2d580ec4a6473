"""A coach attached to the daemon's socket: :class:`SocketFeed`, the coach's feed over the hub.

A reader thread connects, reads protocol lines and posts the messages into the coach's
:class:`~spinecoach.tui.feed.Mailbox`; the app pulls them at its redraw rate. When the daemon
goes away (restart, upgrade, crash) the picture is cleared (a ``FeedReset``), the feed says so in
:attr:`SocketFeed.link` — the coach shows it as a banner — and tries again every :data:`RECONNECT_S` until the daemon answers; the
new session then starts from a clean picture (a ``FeedReset``, then the daemon's ``hello`` and
``state``). Nothing here needs a terminal; over SSH it is the same Unix-socket client.

A daemon speaking another protocol version is not retried: :attr:`SocketFeed.error` holds the
:class:`~spinecoach.hub.messages.ProtocolError` and the coach ends with its one line.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from spinecoach.hub.messages import (
    MAX_LINE_BYTES,
    Ack,
    Command,
    ProtocolError,
    Reply,
    Request,
    decode,
    encode,
)
from spinecoach.hub.server import client_socket_paths
from spinecoach.tui.feed import Mailbox, Posted
from spinecoach.tui.model import FeedReset

#: Pause between connection attempts while the daemon is away (s).
RECONNECT_S = 0.5
#: Longest a command may take to hand to the daemon before the link counts as lost (s).
SEND_TIMEOUT_S = 1.0


def find_daemon(paths: Sequence[Path] | None = None) -> Path | None:
    """The first socket of ``paths`` (default: :func:`client_socket_paths`) that answers."""
    from spinecoach.hub.server import socket_answers

    for path in paths if paths is not None else client_socket_paths():
        if path.exists() and socket_answers(path):
            return path
    return None


class SocketFeed:
    """A :class:`~spinecoach.tui.feed.CoachFeed` reading the daemon's socket.

    ``path``: the socket (None: look in :func:`client_socket_paths` on every attempt, so a
    daemon started later, or the system one, is found).
    """

    def __init__(self, path: Path | None = None, *, reconnect_s: float = RECONNECT_S,
                 candidates: Callable[[], list[Path]] = client_socket_paths) -> None:
        self.replay = None
        self.error: BaseException | None = None
        self._path = path
        self._candidates = candidates
        self._reconnect_s = reconnect_s
        self._mailbox = Mailbox()
        self._stop = threading.Event()
        self._send_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._ever_connected = False
        self._target = path or candidates()[0]
        #: Connections made so far (a test and the banner use it).
        self.connections = 0
        self._thread = threading.Thread(target=self._run, name="spinecoach-link", daemon=True)

    # --- CoachFeed ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def poll(self) -> list[Posted]:
        return self._mailbox.take()

    def send(self, command: Command) -> None:
        if not self._send_line(encode(command)):
            self._mailbox.post(Ack(command.cmd, False, "not connected to the daemon: " + self.link))

    def request(self, request: Request) -> None:
        """Ask the daemon (only one whose ``hello`` lists ``queries``); the ``reply`` comes back
        through :meth:`poll`, or at once a refused one when the link is down."""
        if not self._send_line(encode(request)):
            self._mailbox.post(Reply(request.id, request.query, False,
                                     "not connected to the daemon: " + self.link))

    def _send_line(self, line: bytes) -> bool:
        with self._send_lock:
            sock = self._sock
            if sock is not None:
                try:
                    sock.sendall(line)
                    return True
                except OSError:
                    pass  # the reader notices the broken link and reconnects
        return False

    def close(self) -> None:
        self._stop.set()
        with self._send_lock:
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    # --- link state --------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._sock is not None

    @property
    def link(self) -> str:
        """"" while attached; otherwise one line for the coach's banner."""
        if self._sock is not None:
            return ""
        # One line of an 80-column screen: what is going on, and where it is looked for.
        if self._ever_connected:
            return f"RECONNECTING to the daemon at {self._target}"
        return f"WAITING for `spinecoach daemon` at {self._target}"

    # --- reader thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            sock = self._connect()
            if sock is None:
                self._stop.wait(self._reconnect_s)
                continue
            try:
                self._read(sock)
            except ProtocolError as error:
                self.error = error  # another protocol version: retrying cannot help
                return
            finally:
                with self._send_lock:
                    self._sock = None
                sock.close()
            # The daemon's session is gone with it: clear the picture (and redraw the banner).
            self._mailbox.post(FeedReset())

    def _connect(self) -> socket.socket | None:
        paths = [self._path] if self._path is not None else self._candidates()
        for path in paths:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            sock.settimeout(SEND_TIMEOUT_S)
            try:
                sock.connect(str(path))
            except OSError:
                sock.close()
                continue
            self._target = path
            # A fresh session: nothing of the previous daemon's picture applies any more.
            self._mailbox.post(FeedReset())
            with self._send_lock:
                self._sock = sock
            self._ever_connected = True
            self.connections += 1
            return sock
        return None

    def _read(self, sock: socket.socket) -> None:
        sock.settimeout(0.25)  # so close() is noticed while the daemon is quiet
        pending = bytearray()
        while not self._stop.is_set():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            pending += data
            while (end := pending.find(b"\n")) >= 0:
                line = bytes(pending[:end])
                del pending[: end + 1]
                if line.strip():
                    self._mailbox.post(decode(line))
            if len(pending) > MAX_LINE_BYTES:
                raise ProtocolError(f"the daemon sent a line longer than {MAX_LINE_BYTES} bytes")
