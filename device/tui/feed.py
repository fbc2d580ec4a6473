"""Where the coach's messages come from, and where its commands go (no Textual).

A :class:`CoachFeed` is polled by the app at a bounded rate; producers (a worker thread running
the pipeline, or later a socket reader attached to the daemon) post into a :class:`Mailbox`
that coalesces what only matters at its newest (``state``) and bounds what could pile up while
the screen is busy (``frame``), never dropping events, summaries or answers — the toolong
pattern of a background thread posting and the UI pulling.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from spinecoach.hub.messages import Ack, Command, Frame, Message, State
from spinecoach.tui.model import FeedReset

#: Frames kept waiting for the screen at most (10 s at 30 Hz); older ones are dropped first.
MAILBOX_MAX_FRAMES = 300

Posted: TypeAlias = Message | FeedReset


class ReplayControl(Protocol):
    """Transport keys of a replay: pause, seek, speed. Times are sample times (s)."""

    @property
    def position_s(self) -> float: ...

    @property
    def duration_s(self) -> float: ...

    @property
    def paused(self) -> bool: ...

    @property
    def speed(self) -> float: ...

    @property
    def finished(self) -> bool: ...

    def toggle_pause(self) -> None: ...

    def seek(self, delta_s: float) -> None: ...

    def change_speed(self, steps: int) -> None: ...


class CoachFeed(Protocol):
    """A source of hub messages and a sink for commands."""

    #: Transport control when the feed plays a recording, else None.
    replay: ReplayControl | None

    def start(self) -> None:
        """Begin producing (start the worker or connect)."""

    def poll(self) -> list[Posted]:
        """Everything posted since the last poll, oldest first (never blocks)."""

    def send(self, command: Command) -> None:
        """Ask for something; the answer comes back through :meth:`poll` as an ``ack``."""

    def close(self) -> None:
        """Stop producing and release what the feed holds (threads, sensors, sockets)."""


class Mailbox:
    """Thread-safe, coalescing queue between one producer thread and the UI."""

    def __init__(self, max_frames: int = MAILBOX_MAX_FRAMES) -> None:
        self._lock = threading.Lock()
        self._items: deque[Posted] = deque()
        self._frames = 0
        self._max_frames = max_frames
        self.dropped_frames = 0

    def post(self, item: Posted) -> None:
        """Queue ``item``: a ``state`` replaces a waiting one; frames beyond the bound push out the
        oldest waiting frame."""
        with self._lock:
            if isinstance(item, State):
                self._items = deque(i for i in self._items if not isinstance(i, State))
            elif isinstance(item, Frame):
                if self._frames >= self._max_frames:
                    self._drop_oldest_frame()
                self._frames += 1
            elif isinstance(item, FeedReset):
                # Nothing queued before a reset can matter to the screen any more.
                self._items.clear()
                self._frames = 0
            self._items.append(item)

    def _drop_oldest_frame(self) -> None:
        for index, waiting in enumerate(self._items):
            if isinstance(waiting, Frame):
                del self._items[index]
                self._frames -= 1
                self.dropped_frames += 1
                return

    def take(self) -> list[Posted]:
        """Everything waiting, oldest first."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self._frames = 0
        return items


@dataclass
class ScriptedFeed:
    """A feed that hands over a fixed list of messages on the first poll and records commands
    (each answered with an accepting ``ack``). Used for deterministic screenshots and tests."""

    messages: list[Posted]
    replay: ReplayControl | None = None

    def __post_init__(self) -> None:
        self.sent: list[Command] = []
        self._delivered = False
        self._answers: list[Posted] = []

    def start(self) -> None:
        """Nothing to start: the messages are already here."""

    def poll(self) -> list[Posted]:
        out: list[Posted] = []
        if not self._delivered:
            self._delivered = True
            out.extend(self.messages)
        out.extend(self._answers)
        self._answers.clear()
        return out

    def send(self, command: Command) -> None:
        self.sent.append(command)
        self._answers.append(Ack(command.cmd, True, f"{command.cmd.replace('_', ' ')} sent"))

    def close(self) -> None:
        """Nothing to release."""
