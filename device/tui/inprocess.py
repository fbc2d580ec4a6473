"""The coach's in-process feed: a worker thread runs the measurement session and posts messages.

The worker owns the session :class:`Stage` (pipeline, engine, sensor health); nothing else touches
it, so commands from the UI are queued and handled by the worker between blocks. Replays are paced
against the wall clock at the chosen speed — pacing only decides *when* a block is processed,
never what is detected, which depends on sample time alone — and can pause, seek and change speed.
Seeking backwards restarts the session and runs it unpaced up to the new position, so what is on
screen after a seek is exactly what an uninterrupted replay shows there.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from spinecoach.drivers.blocks import Block
from spinecoach.hub.messages import Command, Hello, Message
from spinecoach.tui.feed import Mailbox, Posted
from spinecoach.tui.model import FeedReset

#: Replay speeds that + and − step through.
SPEEDS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
#: Longest the worker sleeps before looking at commands and transport keys again (s).
WAKE_S = 0.02
#: A looping replay (the demo) rests this long on its last picture before starting again (s).
LOOP_PAUSE_S = 5.0


class Stage(Protocol):
    """One measurement session turning blocks into hub messages (run by the worker only)."""

    def hello(self) -> Hello: ...

    def start(self) -> list[Message]:
        """Messages that open the session (the first ``state``)."""

    def process(self, block: Block) -> list[Message]:
        """Messages caused by one block: frames (decimated), events, changed states."""

    def handle(self, command: Command) -> list[Message]:
        """Carry out a command; the messages include its ``ack``."""

    def finish(self) -> list[Message]:
        """The source ended: close the set and session (summaries)."""


class ReplayTransport:
    """Pause, seek and speed of a replay; the UI sets them, the worker follows.

    ``position_s`` is the sample time of the last block processed.
    """

    def __init__(self, duration_s: float, speed: float = 1.0, paused: bool = False) -> None:
        if speed not in SPEEDS:
            raise ValueError(f"speed must be one of {SPEEDS}")
        self._lock = threading.Lock()
        self.wake = threading.Event()
        self._duration_s = duration_s
        self._speed_index = SPEEDS.index(speed)
        self._paused = paused
        self._position_s = 0.0
        self._finished = False
        self._seek_to_s: float | None = None

    @property
    def position_s(self) -> float:
        return self._position_s

    @property
    def duration_s(self) -> float:
        return self._duration_s

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def speed(self) -> float:
        return SPEEDS[self._speed_index]

    @property
    def finished(self) -> bool:
        return self._finished

    def toggle_pause(self) -> None:
        with self._lock:
            self._paused = not self._paused
        self.wake.set()

    def seek(self, delta_s: float) -> None:
        """Ask for a position ``delta_s`` from the current one (clamped to the recording)."""
        with self._lock:
            base = self._seek_to_s if self._seek_to_s is not None else self._position_s
            self._seek_to_s = min(self._duration_s, max(0.0, base + delta_s))
        self.wake.set()

    def change_speed(self, steps: int) -> None:
        with self._lock:
            self._speed_index = min(len(SPEEDS) - 1, max(0, self._speed_index + steps))
        self.wake.set()

    # --- worker side -------------------------------------------------------------------------

    def take_seek(self) -> float | None:
        with self._lock:
            target, self._seek_to_s = self._seek_to_s, None
        return target

    def moved_to(self, position_s: float, finished: bool) -> None:
        self._position_s = position_s
        self._finished = finished


class InProcessFeed:
    """A :class:`~spinecoach.tui.feed.CoachFeed` running a session in a worker thread.

    ``make_stage`` builds a fresh session (called again when a replay seeks backwards).
    ``blocks``: a sequence (a recording: seekable, paced by ``replay``) or an iterator (live
    sensors, paced by the sensors themselves). ``loop``: a finished replay starts again after
    :data:`LOOP_PAUSE_S`. ``on_close`` releases the source (sensors) when the coach closes.
    If the session fails, :attr:`error` holds the exception and the worker stops.
    """

    def __init__(
        self,
        make_stage: Callable[[], Stage],
        blocks: Sequence[Block] | Iterable[Block],
        replay: ReplayTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        loop: bool = False,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.replay = replay
        self._loop = loop
        self._on_close = on_close
        self._make_stage = make_stage
        self._blocks = blocks
        self._clock = clock
        self._mailbox = Mailbox()
        self._commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spinecoach-feed", daemon=True)
        self.error: BaseException | None = None

    # --- CoachFeed ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def poll(self) -> list[Posted]:
        return self._mailbox.take()

    def send(self, command: Command) -> None:
        self._commands.put(command)
        if self.replay is not None:
            self.replay.wake.set()

    def close(self) -> None:
        self._stop.set()
        if self.replay is not None:
            self.replay.wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    # --- worker ------------------------------------------------------------------------------

    def _post(self, items: Iterable[Posted]) -> None:
        for item in items:
            self._mailbox.post(item)

    def _handle_commands(self, stage: Stage) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            self._post(stage.handle(command))

    def _run(self) -> None:
        try:
            if self.replay is None:
                self._run_live()
            else:
                self._run_replay(self.replay, list(self._blocks))
        except Exception as error:  # noqa: BLE001 - handed to the UI, which ends and the launcher raises it
            self.error = error

    def _open(self) -> Stage:
        stage = self._make_stage()
        self._post([stage.hello(), *stage.start()])
        return stage

    def _run_live(self) -> None:
        stage = self._open()
        blocks: Iterator[Block] = iter(self._blocks)
        for block in blocks:
            if self._stop.is_set():
                return
            self._handle_commands(stage)
            self._post(stage.process(block))
        self._post(stage.finish())
        while not self._stop.wait(WAKE_S):
            self._handle_commands(stage)

    def _run_replay(self, transport: ReplayTransport, blocks: list[Block]) -> None:
        player = _ReplayPlayer(self, transport, blocks)
        while not self._stop.is_set():
            player.step()


class _ReplayPlayer:
    """The worker's replay loop state: which block is next, and the pacing anchor.

    Pacing: block ``i`` is processed once ``(wall - anchor_wall) * speed`` reaches its end time
    minus ``anchor_sample``; the anchor is reset on resume, seek and speed change so nothing is
    played in a burst.
    """

    def __init__(self, feed: InProcessFeed, transport: ReplayTransport, blocks: list[Block]):
        self.feed = feed
        self.transport = transport
        self.blocks = blocks
        self.ends = [float(b.t_s[-1]) if len(b) else 0.0 for b in blocks]
        self.stage = feed._open()
        self.index = 0
        self.finished_posted = False
        self.finished_wall = 0.0
        self.anchor_wall = feed._clock()
        self.anchor_sample = 0.0
        self.anchor_speed = transport.speed
        self.was_paused = transport.paused

    @property
    def at_end(self) -> bool:
        return self.index >= len(self.blocks)

    def _process_next(self) -> None:
        self.feed._post(self.stage.process(self.blocks[self.index]))
        self.index += 1

    def _moved(self) -> None:
        position = self.ends[self.index - 1] if self.index else 0.0
        self.transport.moved_to(position, self.at_end)
        if self.at_end and not self.finished_posted:
            self.feed._post(self.stage.finish())
            self.finished_posted = True
            self.finished_wall = self.feed._clock()

    def _rest(self, seconds: float = WAKE_S) -> None:
        self.transport.wake.wait(min(seconds, WAKE_S))
        self.transport.wake.clear()

    def _seek(self, target_s: float) -> None:
        if target_s < self.transport.position_s:
            self.feed._post([FeedReset()])
            self.stage = self.feed._open()
            self.index = 0
            self.finished_posted = False
        while not self.at_end and self.ends[self.index] <= target_s:
            self._process_next()
        self._moved()
        self.anchor_wall, self.anchor_sample = self.feed._clock(), self.transport.position_s

    def step(self) -> None:
        """Do one thing: a command, a seek, a rest, or the next block when it is due."""
        feed, transport = self.feed, self.transport
        feed._handle_commands(self.stage)
        target = transport.take_seek()
        if target is not None:
            self._seek(target)
        if self.at_end:
            if feed._loop and feed._clock() - self.finished_wall >= LOOP_PAUSE_S:
                transport.seek(-transport.duration_s)
            self.was_paused = True
            self._rest()
            return
        if transport.paused:
            self.was_paused = True
            self._rest()
            return
        if self.was_paused or transport.speed != self.anchor_speed:
            self.anchor_wall, self.anchor_sample = feed._clock(), transport.position_s
            self.anchor_speed, self.was_paused = transport.speed, False
        due_wall = self.anchor_wall + (self.ends[self.index] - self.anchor_sample) / self.anchor_speed
        wait_s = due_wall - feed._clock()
        if wait_s > 0:
            self._rest(wait_s)
            return
        self._process_next()
        self._moved()
