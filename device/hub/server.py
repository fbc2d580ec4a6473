"""The daemon's Unix socket: the hub protocol served to any number of coaches at once.

One thread runs a selector loop over the listening socket, every client and a wake-up pipe.
:meth:`HubServer.broadcast` encodes each message once and appends it to every client's queue;
a client whose socket takes the whole queue at once (the usual case: a coach keeping up) is
written to right there with a non-blocking send, and only what does not fit, or a socket error,
wakes the loop. So a coach that keeps up costs the engine one ``send`` per batch and no wake-up
of the loop's thread (each wake-up of another thread costs tens of µs of CPU), and a slow or
dead coach can still never hold up the engine: a non-blocking send never waits. Each client's
queue is bounded:

- ``frame`` lines are disposable (the next one supersedes them): beyond
  :data:`MAX_QUEUED_FRAMES` waiting, the oldest waiting frame is dropped;
- everything else (``hello``, ``state``, ``event``, ``summary``, ``ack``) is never dropped; a client
  with more than :data:`MAX_QUEUED_OTHERS` of them waiting cannot keep up and is disconnected
  (its coach reconnects and starts again from ``hello`` and the current ``state``).

A new client is greeted with ``hello``, the latest set and session summaries, a standing notice
(the daemon's degraded state, if any) and the current ``state``, then follows the live stream.
Commands read from clients are validated and queued in :attr:`HubServer.commands` with the
client's id for the engine; a line that is not a valid command is answered with a refused
``ack`` naming the problem.

Requests (stored sessions, progress, band profiles) never reach the engine: once the daemon has
called :meth:`HubServer.serve_queries`, a query thread of the server's own answers them one at a
time and sends each ``reply`` to the coach that asked. A coach may have at most
:data:`MAX_PENDING_REQUESTS` waiting; more are refused at once. Without :meth:`serve_queries` a
request is refused with a reply saying so (and ``hello`` announces no ``queries``).

No network socket is ever opened: the listener and the wake-up pair are ``AF_UNIX``.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import grp
import json
import os
import queue
import selectors
import socket
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from spinecoach.errors import SpinecoachError
from spinecoach.hub.messages import (
    MAX_LINE_BYTES,
    Ack,
    Command,
    Event,
    Frame,
    Hello,
    Message,
    ProtocolError,
    Reply,
    Request,
    State,
    Summary,
    decode,
    encode,
)

#: File name of the socket in the runtime directory.
SOCKET_NAME = "hub.sock"
#: Where the system daemon (spinecoach.service, RuntimeDirectory=spinecoach) listens.
SYSTEM_SOCKET_PATH = Path("/run/spinecoach") / SOCKET_NAME
#: Environment variable naming the socket explicitly (daemon and coach).
SOCKET_ENV = "SPINECOACH_SOCKET"
#: Group allowed to attach a coach (the socket is mode 0660, group spinecoach).
SOCKET_GROUP = "spinecoach"
SOCKET_MODE = 0o660

#: Frames waiting per client at most (1 s at 30 Hz); older ones are dropped first.
MAX_QUEUED_FRAMES = 30
#: Non-frame messages waiting per client at most before it is disconnected.
MAX_QUEUED_OTHERS = 2000
#: Coaches attached at once at most; more are refused (a file-descriptor bound, not a use case).
MAX_CLIENTS = 32
#: Bytes moved from a client's queue into its write buffer at a time.
WRITE_CHUNK_BYTES = 64 * 1024
#: How often the loop looks at the stop flag when nothing happens (s).
SELECT_TIMEOUT_S = 0.5
#: Requests one coach may have waiting for their replies; more are refused at once.
MAX_PENDING_REQUESTS = 8

#: Answers one request (runs on the server's query thread, never the engine's).
Answerer = Callable[[Request], Reply]


class HubSocketError(SpinecoachError, OSError):
    """The hub socket cannot be created (EX_CANTCREAT)."""

    exit_status = 73


#: prctl option naming the calling thread (linux/prctl.h).
_PR_SET_NAME = 15


def name_os_thread(name: str) -> None:
    """Give the calling OS thread a name (at most 15 bytes) that ``top -H`` and ``ps -L`` show,
    so the daemon's CPU can be told apart per thread. Best effort: not on every platform."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def runtime_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the daemon puts its socket: systemd's ``$RUNTIME_DIRECTORY`` (first entry), else
    ``$XDG_RUNTIME_DIR/spinecoach``, else ``/tmp/spinecoach-$UID``."""
    env = os.environ if environ is None else environ
    if env.get("RUNTIME_DIRECTORY"):
        return Path(env["RUNTIME_DIRECTORY"].split(":")[0])
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "spinecoach"
    return Path(f"/tmp/spinecoach-{os.getuid()}")


def default_socket_path(environ: Mapping[str, str] | None = None) -> Path:
    """The daemon's socket: ``$SPINECOACH_SOCKET``, else ``hub.sock`` in :func:`runtime_dir`."""
    env = os.environ if environ is None else environ
    if env.get(SOCKET_ENV):
        return Path(env[SOCKET_ENV])
    return runtime_dir(env) / SOCKET_NAME


def client_socket_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where a coach looks for a daemon, in order: ``$SPINECOACH_SOCKET`` alone when set, else
    this user's own daemon, then the system daemon (``/run/spinecoach/hub.sock``)."""
    env = os.environ if environ is None else environ
    if env.get(SOCKET_ENV):
        return [Path(env[SOCKET_ENV])]
    own = default_socket_path(env)
    return [own] if own == SYSTEM_SOCKET_PATH else [own, SYSTEM_SOCKET_PATH]


def socket_answers(path: Path, timeout_s: float = 0.5) -> bool:
    """True when something accepts connections on the Unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as probe:
        probe.settimeout(timeout_s)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _private_dir(directory: Path) -> None:
    """Create the runtime directory (0750) and refuse one that another user controls."""
    try:
        directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        info = directory.lstat()
    except OSError as error:
        raise HubSocketError(
            f"cannot create the socket directory {directory} ({error.strerror}); give a writable "
            "path with --socket"
        ) from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise HubSocketError(
            f"{directory} is not a directory owned by this user; remove it or give another path "
            "with --socket"
        )


def _share_with_group(path: Path) -> None:
    """Mode 0660 and group spinecoach when that group exists and this user may hand files to it."""
    os.chmod(path, SOCKET_MODE)
    try:
        gid = grp.getgrnam(SOCKET_GROUP).gr_gid
    except KeyError:
        return  # a development machine without the group: the owner alone attaches
    if gid in (os.getegid(), *os.getgroups()):
        with contextlib.suppress(OSError):
            os.chown(path, -1, gid)


def bind_hub_socket(path: Path) -> socket.socket:
    """A listening, non-blocking Unix socket at ``path`` (mode 0660, group spinecoach).

    A stale socket file left by a daemon that died is replaced; one that still answers means a
    daemon is running, which is an error rather than a second daemon fighting over the sensors.
    """
    _private_dir(path.parent)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise HubSocketError(f"{path} exists and is not a socket; remove it or use --socket")
        if socket_answers(path):
            raise HubSocketError(
                f"a spinecoach daemon already serves {path}: stop it first "
                "(`systemctl stop spinecoach`) or give another path with --socket"
            )
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        listener.bind(str(path))
        _share_with_group(path)
        listener.listen(MAX_CLIENTS)
    except OSError as error:
        listener.close()
        raise HubSocketError(
            f"cannot listen on {path} ({error.strerror}); give a writable path with --socket"
        ) from None
    listener.setblocking(False)
    return listener


@dataclass(eq=False)
class _Client:
    """One attached coach: its socket, what it sent that is not a full line yet, what waits."""

    id: int
    sock: socket.socket
    inbox: bytearray = field(default_factory=bytearray)
    outbox: bytearray = field(default_factory=bytearray)
    waiting: deque[tuple[bool, bytes]] = field(default_factory=deque)  # (is_frame, line)
    frames: int = 0
    others: int = 0
    dropped_frames: int = 0
    overflowed: bool = False
    pending_requests: int = 0
    #: Why the last send failed (the loop drops the client), None while it works.
    failed: str | None = None

    def queue(self, line: bytes, is_frame: bool) -> None:
        if self.overflowed:
            return
        if is_frame:
            if self.frames >= MAX_QUEUED_FRAMES:
                self._drop_oldest_frame()
            self.frames += 1
        else:
            if self.others >= MAX_QUEUED_OTHERS:
                self.overflowed = True  # the loop disconnects it
                return
            self.others += 1
        self.waiting.append((is_frame, line))

    def _drop_oldest_frame(self) -> None:
        for index, (is_frame, _line) in enumerate(self.waiting):
            if is_frame:
                del self.waiting[index]
                self.frames -= 1
                self.dropped_frames += 1
                return

    def fill_outbox(self) -> None:
        while self.waiting and len(self.outbox) < WRITE_CHUNK_BYTES:
            is_frame, line = self.waiting.popleft()
            if is_frame:
                self.frames -= 1
            else:
                self.others -= 1
            self.outbox += line

    def send_waiting(self) -> bool:
        """Send what waits with one non-blocking ``send`` per chunk (call with the server's
        lock held: the engine's and the loop's sends must not interleave). True when nothing is
        left for the loop to do; False when some waits for the socket to drain, or the send
        failed (:attr:`failed` says why), or the client overflowed."""
        if self.overflowed or self.failed is not None:
            return False
        while True:
            self.fill_outbox()
            if not self.outbox:
                return True
            try:
                sent = self.sock.send(self.outbox)
            except (BlockingIOError, InterruptedError):
                return False
            except (ConnectionResetError, BrokenPipeError):
                self.failed = "closed"
                return False
            except OSError as error:
                self.failed = error.strerror or "write error"
                return False
            del self.outbox[:sent]
            if self.outbox:
                return False


@dataclass(frozen=True)
class ClientInfo:
    """What :meth:`HubServer.clients` reports about one attached coach."""

    id: int
    waiting: int
    dropped_frames: int


class HubServer:
    """Serves the hub protocol on ``listener`` (from :func:`bind_hub_socket`) until :meth:`close`.

    ``on_log`` receives one line per client attach/detach (the daemon's journal).
    """

    def __init__(self, listener: socket.socket, path: Path,
                 on_log: Callable[[str], None] | None = None) -> None:
        self.path = path
        #: (client id, command) in arrival order, for the engine to carry out.
        self.commands: queue.SimpleQueue[tuple[int, Command]] = queue.SimpleQueue()
        self._listener = listener
        self._log = on_log or (lambda _line: None)
        self._lock = threading.Lock()
        self._clients: dict[int, _Client] = {}
        self._next_id = 1
        self._greeting: dict[str, bytes] = {}
        self._wake_r, self._wake_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._stopping = threading.Event()
        self._wake_pending = False
        self._thread = threading.Thread(target=self._run, name="spinecoach-hub", daemon=True)
        self._features: tuple[str, ...] = ()
        self._answer: Answerer | None = None
        self._requests: queue.SimpleQueue[tuple[int, Request] | None] = queue.SimpleQueue()
        self._query_thread: threading.Thread | None = None

    # --- engine side -------------------------------------------------------------------------

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def serve_queries(self, answer: Answerer, features: tuple[str, ...]) -> None:
        """Answer coaches' requests with ``answer`` on a thread of the server's own, and
        announce ``features`` (see :data:`~spinecoach.hub.messages.FEATURES`) in every
        ``hello`` sent from now on. Call before :meth:`set_hello`."""
        self._answer = answer
        self._features = tuple(features)
        self._query_thread = threading.Thread(target=self._answer_requests,
                                              name="spinecoach-query", daemon=True)
        self._query_thread.start()

    def set_hello(self, hello: Hello) -> None:
        """The first line every client gets (with this server's features)."""
        with self._lock:
            self._greeting["hello"] = encode(self._announce(hello))

    def _announce(self, message: Message) -> Message:
        if isinstance(message, Hello) and self._features:
            return dataclasses.replace(message, features=self._features)
        return message

    def set_notice(self, notice: Event | None) -> None:
        """A standing message every new client gets (the degraded state); None clears it."""
        with self._lock:
            if notice is None:
                self._greeting.pop("notice", None)
            else:
                self._greeting["notice"] = encode(notice)

    def broadcast(self, messages: Iterable[Message]) -> None:
        """Queue ``messages`` for every client; returns at once."""
        lines = [(encode(self._announce(m)), isinstance(m, Frame), m) for m in messages]
        if not lines:
            return
        with self._lock:
            for line, is_frame, message in lines:
                self._remember(line, message)
                for client in self._clients.values():
                    client.queue(line, is_frame)
            # Sent here when the sockets take it all; the loop is woken only for the rest. A list,
            # not a generator: all() must not stop at the first client that is not done.
            done = all([client.send_waiting() for client in self._clients.values()])  # noqa: C419
        if not done:
            self._wake()

    def send_to(self, client_id: int, messages: Iterable[Message]) -> None:
        """Queue ``messages`` for one client (the answer to its command)."""
        with self._lock:
            client = self._clients.get(client_id)
            if client is None:
                return
            for message in messages:
                client.queue(encode(message), isinstance(message, Frame))
            done = client.send_waiting()
        if not done:
            self._wake()

    def clients(self) -> list[ClientInfo]:
        with self._lock:
            return [ClientInfo(c.id, len(c.waiting), c.dropped_frames)
                    for c in self._clients.values()]

    def close(self) -> None:
        """Send what is waiting (briefly), disconnect everyone and remove the socket file."""
        # The listener goes first, so no coach attaches to a daemon that is leaving.
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._stopping.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        if self._query_thread is not None:
            self._requests.put(None)
            self._query_thread.join(timeout=1.0)
        self._listener.close()
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.sock.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _remember(self, line: bytes, message: Message) -> None:
        """Keep what a client attaching later must see first."""
        if isinstance(message, State):
            self._greeting["state"] = line
        elif isinstance(message, Hello):
            self._greeting["hello"] = line
        elif isinstance(message, Summary):
            self._greeting[f"summary:{message.scope}"] = line

    def _wake(self) -> None:
        # One wake-up byte at a time: the loop flushes everything queued when it wakes.
        if self._wake_pending:
            return
        self._wake_pending = True
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    # --- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        name_os_thread("sc-hub")
        while not self._stopping.is_set():
            for key, events in self._selector.select(SELECT_TIMEOUT_S):
                if key.data is None:
                    self._accept()
                elif key.data == "wake":
                    self._wake_pending = False  # before the flush below, so no wake is lost
                    with contextlib.suppress(BlockingIOError):
                        while self._wake_r.recv(4096):
                            pass
                else:
                    client: _Client = key.data
                    if events & selectors.EVENT_READ:
                        self._read(client)
                    if events & selectors.EVENT_WRITE and client.id in self._clients:
                        self._write(client)
            self._flush_all()
        self._flush_all()

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._log(f"coach could not attach: {error.strerror}")
            return
        sock.setblocking(False)
        with self._lock:
            if len(self._clients) >= MAX_CLIENTS:
                sock.close()
                self._log(f"coach refused: {MAX_CLIENTS} already attached")
                return
            client = _Client(self._next_id, sock)
            self._next_id += 1
            for key in ("hello", "summary:set", "summary:session", "notice", "state"):
                if key in self._greeting:
                    client.queue(self._greeting[key], False)
            self._clients[client.id] = client
            count = len(self._clients)
        self._selector.register(sock, selectors.EVENT_READ, client)
        self._log(f"coach {client.id} attached ({count} attached)")

    def _drop(self, client: _Client, why: str) -> None:
        with self._lock:
            if self._clients.pop(client.id, None) is None:
                return
            count = len(self._clients)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client.sock)
        client.sock.close()
        self._log(f"coach {client.id} detached: {why} ({count} attached)")

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except (ConnectionResetError, BrokenPipeError):
            self._drop(client, "closed")  # a coach quitting abruptly, or a probe for a daemon
            return
        except OSError as error:
            self._drop(client, error.strerror or "read error")
            return
        if not data:
            self._drop(client, "closed")
            return
        client.inbox += data
        while True:
            end = client.inbox.find(b"\n")
            if end < 0:
                break
            line = bytes(client.inbox[:end])
            del client.inbox[: end + 1]
            self._command(client, line)
        if len(client.inbox) > MAX_LINE_BYTES:
            self._drop(client, f"sent a line longer than {MAX_LINE_BYTES} bytes")

    def _command(self, client: _Client, line: bytes) -> None:
        if not line.strip():
            return
        try:
            message = decode(line)
            if isinstance(message, Request):
                self._request(client, message)
                return
            if not isinstance(message, Command):
                raise ProtocolError("a coach sends only `command` and `request` lines")
        except ProtocolError as error:
            refusal = _refused_request(line, str(error))
            self.send_to(client.id, [refusal or Ack(_command_name(line), False, str(error))])
            return
        self.commands.put((client.id, message))

    def _request(self, client: _Client, request: Request) -> None:
        if self._answer is None:
            self.send_to(client.id, [Reply(request.id, request.query, False,
                                           "this daemon answers no requests")])
            return
        with self._lock:
            busy = client.pending_requests >= MAX_PENDING_REQUESTS
            if not busy:
                client.pending_requests += 1
        if busy:
            self.send_to(client.id, [Reply(
                request.id, request.query, False,
                f"{MAX_PENDING_REQUESTS} requests already wait: ask again when they are answered")])
            return
        self._requests.put((client.id, request))

    def _answer_requests(self) -> None:
        """The query thread: one request at a time, each reply to the coach that asked."""
        name_os_thread("sc-query")
        assert self._answer is not None
        while (item := self._requests.get()) is not None:
            client_id, request = item
            with self._lock:
                client = self._clients.get(client_id)
                if client is None:
                    continue  # it left: nobody to answer
            try:
                reply = self._answer(request)
            except Exception as error:  # noqa: BLE001 - one bad answer must not end the thread
                self._log(f"request {request.query} failed: {error!r}")
                reply = Reply(request.id, request.query, False,
                              f"the daemon could not answer {request.query}: {error}")
            if len(encode(reply)) > MAX_LINE_BYTES:
                reply = Reply(request.id, request.query, False,
                              f"the answer to {request.query} is too large: ask for fewer rows")
            with self._lock:
                client.pending_requests -= 1
            self.send_to(client_id, [reply])

    def _flush_all(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
        for client in clients:
            if client.overflowed:
                self._drop(client, f"fell behind by more than {MAX_QUEUED_OTHERS} messages")
            else:
                self._write(client)

    def _write(self, client: _Client) -> None:
        with self._lock:
            client.send_waiting()
            failed = client.failed
            wants_write = bool(client.outbox or client.waiting)
        if failed is not None:
            self._drop(client, failed)
            return
        mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if wants_write else 0)
        with contextlib.suppress(KeyError, ValueError):
            if self._selector.get_key(client.sock).events != mask:
                self._selector.modify(client.sock, mask, client)


def _refused_request(line: bytes, why: str) -> Reply | None:
    """A refused reply for a ``request`` line that failed validation (None for other lines,
    and for a request without an integer id, which no reply could be matched to)."""
    try:
        body = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or body.get("type") != "request":
        return None
    request_id, query = body.get("id"), body.get("query")
    if isinstance(request_id, bool) or not isinstance(request_id, int):
        return None
    return Reply(request_id, query if isinstance(query, str) else "?", False, why)


def _command_name(line: bytes) -> str:
    """The ``cmd`` of a line that failed validation, for its refused ack ("?" when unreadable)."""
    try:
        body = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return "?"
    cmd = body.get("cmd") if isinstance(body, dict) else None
    return cmd if isinstance(cmd, str) else "?"
