"""What the coach knows, folded from hub messages (pure Python: no Textual, no clock).

The screens draw from one :class:`CoachModel`; :meth:`CoachModel.apply` folds a message in and
bumps :attr:`CoachModel.revision`, so the app redraws only when something changed. Keeping this
headless lets the tests check the coaching logic (tempo guide, force-angle curves) without a
terminal.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from spinecoach.hub.messages import Ack, Event, Frame, Hello, Message, State, Summary

#: Seconds of frames kept for the force-time plot and for cutting rep curves out of.
FRAME_HISTORY_S = 60.0
#: Frames kept at most (60 s at the 30 Hz frame rate).
FRAME_HISTORY_MAX = 1800
#: Reps whose force-angle curves are drawn.
CURVE_REPS = 5
#: Cues listed on the live screen.
CUE_LINES = 6

#: Tempo slots E-P-C-P (METRICS.md "Tempo") and their labels.
TEMPO_SLOTS: tuple[str, ...] = ("eccentric", "pause_lengthened", "concentric", "pause_shortened")
TEMPO_LABELS: dict[str, str] = {
    "eccentric": "Lower",
    "pause_lengthened": "Pause",
    "concentric": "Lift",
    "pause_shortened": "Pause",
}


class FeedReset:
    """Marker an in-process feed posts when it restarts the session (a replay seek backwards)."""


@dataclass
class RepRecord:
    """A counted rep: its result fields (as sent in the ``rep`` event) and its force-angle trace."""

    number: int
    result: dict[str, Any]
    curve: list[tuple[float, float]] = field(default_factory=list)

    def figure(self, name: str) -> float | None:
        """A numeric field of the result, None when absent or not a number."""
        value = self.result.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return None

    def tempo_s(self) -> list[float | None]:
        """Phase durations E-P-C-P (s) of this rep."""
        tempo = self.result.get("tempo") or {}
        return [_number(tempo.get(f"{slot}_s")) for slot in TEMPO_SLOTS]


@dataclass
class CoachModel:
    """The coach's picture of the session."""

    hello: Hello | None = None
    state: State = field(default_factory=State)
    frames: deque[Frame] = field(default_factory=lambda: deque(maxlen=FRAME_HISTORY_MAX))
    reps: list[RepRecord] = field(default_factory=list)
    cues: deque[Event] = field(default_factory=lambda: deque(maxlen=CUE_LINES))
    last_hold: dict[str, Any] | None = None
    last_contraction: dict[str, Any] | None = None
    set_summary: Summary | None = None
    session_summary: Summary | None = None
    last_ack: Ack | None = None
    revision: int = 0
    #: Tempo slot the athlete is in and the sample time it began (s).
    tempo_slot: str | None = None
    tempo_slot_start_s: float = 0.0
    _last_moving_phase: str | None = None

    # ----------------------------------------------------------------------------------------

    @property
    def latest(self) -> Frame | None:
        """The newest frame, None before the first."""
        return self.frames[-1] if self.frames else None

    @property
    def demo(self) -> bool:
        """True when the feed replays the bundled demo because no sensors were found."""
        return bool(self.hello and self.hello.demo)

    def target_tempo_s(self) -> list[float] | None:
        """The prescribed E-P-C-P durations (s), None when the protocol sets no tempo."""
        tempo = self.state.target.get("tempo_s")
        if isinstance(tempo, list) and len(tempo) == 4:
            values = [_number(v) for v in tempo]
            if all(v is not None for v in values):
                return [float(v) for v in values if v is not None]
        return None

    def tempo_elapsed_s(self) -> float:
        """Time spent in the current tempo slot (s), by sample time."""
        latest = self.latest
        if latest is None or self.tempo_slot is None:
            return 0.0
        return max(0.0, latest.t_s - self.tempo_slot_start_s)

    # ----------------------------------------------------------------------------------------

    def apply(self, message: Message | FeedReset) -> None:
        """Fold one message into the model."""
        if isinstance(message, FeedReset):
            self._reset()
        elif isinstance(message, Frame):
            self._apply_frame(message)
        elif isinstance(message, Event):
            self._apply_event(message)
        elif isinstance(message, State):
            if message.set_no != self.state.set_no and message.set_state == "running":
                # A new set: curves and the rep table belong to one set.
                self.reps.clear()
            self.state = message
        elif isinstance(message, Summary):
            if message.scope == "set":
                self.set_summary = message
            else:
                self.session_summary = message
        elif isinstance(message, Hello):
            self.hello = message
        elif isinstance(message, Ack):
            self.last_ack = message
        else:
            return
        self.revision += 1

    def _reset(self) -> None:
        hello = self.hello
        revision = self.revision
        fresh = CoachModel()
        self.__dict__.update(fresh.__dict__)
        self.hello = hello
        self.revision = revision

    def _apply_frame(self, frame: Frame) -> None:
        if self.frames and frame.t_s < self.frames[-1].t_s:
            # Time went backwards without a reset (a daemon restart): start the picture anew.
            self.frames.clear()
        self.frames.append(frame)
        while self.frames and frame.t_s - self.frames[0].t_s > FRAME_HISTORY_S:
            self.frames.popleft()
        slot = self._slot_for(frame.phase)
        if slot != self.tempo_slot:
            self.tempo_slot = slot
            self.tempo_slot_start_s = frame.t_s

    def _slot_for(self, phase: str) -> str | None:
        """The tempo slot of a phase: a still phase is the pause after the last moving phase."""
        if phase in ("eccentric", "concentric"):
            self._last_moving_phase = phase
            return phase
        if phase == "still":
            if self._last_moving_phase == "eccentric":
                return "pause_lengthened"
            if self._last_moving_phase == "concentric":
                return "pause_shortened"
        return None

    def _apply_event(self, event: Event) -> None:
        if event.kind == "rep":
            start_s = _number(event.data.get("start_s"))
            end_s = _number(event.data.get("end_s"))
            curve = self._curve(start_s, end_s)
            self.reps.append(RepRecord(len(self.reps) + 1, dict(event.data), curve))
        elif event.kind == "hold_end":
            self.last_hold = dict(event.data)
        elif event.kind == "contraction":
            self.last_contraction = dict(event.data)
        if event.message:
            self.cues.append(event)

    def _curve(self, start_s: float | None, end_s: float | None) -> list[tuple[float, float]]:
        """(angle °, force N) pairs of the frames between the rep's start and end."""
        if start_s is None or end_s is None:
            return []
        return [
            (f.angle_deg, f.force_n)
            for f in self.frames
            if start_s <= f.t_s <= end_s and f.angle_deg is not None and f.force_n is not None
        ]

    def curve_reps(self) -> list[RepRecord]:
        """The reps whose force-angle curves are drawn (newest last)."""
        return [rep for rep in self.reps if rep.curve][-CURVE_REPS:]


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None
