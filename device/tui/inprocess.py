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
    sensors, paced by the sensors themselves).
    """

    def __init__(
        self,
        make_stage: Callable[[], Stage],
        blocks: Sequence[Block] | Iterable[Block],
        replay: ReplayTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replay = replay
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
        except BaseException as error:
            self.error = error
            raise

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
        ends = [float(b.t_s[-1]) if len(b) else 0.0 for b in blocks]
        stage = self._open()
        index = 0
        anchor_wall = self._clock()
        anchor_sample = 0.0
        anchor_speed = transport.speed
        was_paused = transport.paused
        while not self._stop.is_set():
            self._handle_commands(stage)
            target = transport.take_seek()
            if target is not None:
                if target < transport.position_s:
                    self._post([FeedReset()])
                    stage = self._open()
                    index = 0
                while index < len(blocks) and ends[index] <= target:
                    self._post(stage.process(blocks[index]))
                    index += 1
                position = ends[index - 1] if index else 0.0
                transport.moved_to(position, index >= len(blocks))
                anchor_wall, anchor_sample = self._clock(), position
            if transport.paused or index >= len(blocks):
                was_paused = True
                transport.wake.wait(WAKE_S)
                transport.wake.clear()
                continue
            if was_paused or transport.speed != anchor_speed:
                # Resume (or a new speed) counts from here, so nothing is played in a burst.
                anchor_wall, anchor_sample = self._clock(), transport.position_s
                anchor_speed, was_paused = transport.speed, False
            due_wall = anchor_wall + (ends[index] - anchor_sample) / anchor_speed
            wait_s = due_wall - self._clock()
            if wait_s > 0:
                transport.wake.wait(min(wait_s, WAKE_S))
                transport.wake.clear()
                continue
            self._post(stage.process(blocks[index]))
            index += 1
            finished = index >= len(blocks)
            transport.moved_to(ends[index - 1], finished)
            if finished:
                self._post(stage.finish())
