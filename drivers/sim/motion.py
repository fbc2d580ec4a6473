"""Movement scripts: scalar channels of time with analytic first and second derivatives.

A movement is written as a :class:`Script`, a sequence of segments on one scalar channel
(an angle in degrees or a displacement in metres):

- ``move(to, duration_s)``: a minimum-jerk transition (Flash & Hogan 1985), the smooth
  bell-shaped speed profile of a voluntary point-to-point movement, zero speed and zero
  acceleration at both ends;
- ``pause(duration_s)`` / ``hold(duration_s)``: the channel stays where it is (a hold is a
  pause that the ground truth reports as an isometric hold).

Segments carry optional labels (phase kind, rep number, hold flag) that the ground truth reads,
so the script is the single source of both the signal and the truth.

:class:`Wobble` adds physiological tremor or postural sway as a fixed sum of sinusoids with
seeded frequencies, amplitudes and phases; :class:`Sum` adds channels. Every channel is a pure
function of time, evaluated vectorised, so a chunked evaluation equals a whole-array evaluation
bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Phase kinds of METRICS.md's tempo notation E-P-C-P, named by muscle length.
PHASE_KINDS: tuple[str, ...] = ("eccentric", "pause_lengthened", "concentric", "pause_shortened")


@dataclass(frozen=True)
class Derivatives:
    """A channel's value and its first two time derivatives (unit, unit/s, unit/s²)."""

    value: FloatArray
    rate: FloatArray
    accel: FloatArray


class Channel(Protocol):
    """A scalar function of time with analytic derivatives."""

    def evaluate(self, t_s: FloatArray) -> Derivatives:
        """Value, first and second derivative at the times ``t_s`` (s)."""


@dataclass(frozen=True)
class Constant:
    """A channel that never changes."""

    value: float = 0.0

    def evaluate(self, t_s: FloatArray) -> Derivatives:
        t = np.asarray(t_s, dtype=np.float64)
        zeros = np.zeros_like(t)
        return Derivatives(np.full_like(t, self.value), zeros, zeros.copy())


@dataclass(frozen=True)
class Segment:
    """One piece of a script, from ``start_s`` for ``duration_s`` seconds.

    ``kind`` is ``move`` (minimum jerk from ``from_value`` to ``to_value``), ``pause`` or
    ``hold`` (constant at ``from_value``). ``phase`` is one of :data:`PHASE_KINDS` or "";
    ``rep`` the rep number it belongs to or -1; ``label`` free text (e.g. "rest", "wind-up").
    """

    kind: str
    start_s: float
    duration_s: float
    from_value: float
    to_value: float
    phase: str = ""
    rep: int = -1
    label: str = ""

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass
class Script:
    """Builder of a piecewise channel; also a :class:`Channel` (evaluate at any time).

    Before the first segment and after the last the channel holds its end values.
    """

    start_value: float
    t0_s: float = 0.0
    segments: list[Segment] = field(default_factory=list)
    _compiled: tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def end_s(self) -> float:
        """Time the last segment ends (s)."""
        return self.segments[-1].end_s if self.segments else self.t0_s

    @property
    def end_value(self) -> float:
        """Value after the last segment."""
        return self.segments[-1].to_value if self.segments else self.start_value

    def _append(self, segment: Segment) -> Script:
        if segment.duration_s < 0:
            raise ValueError(f"segment duration must be >= 0, got {segment.duration_s}")
        self.segments.append(segment)
        self._compiled = None
        return self

    def move(
        self, to: float, duration_s: float, *, phase: str = "", rep: int = -1, label: str = ""
    ) -> Script:
        """Minimum-jerk transition to ``to`` over ``duration_s`` (s)."""
        if duration_s <= 0:
            raise ValueError("a move needs a positive duration")
        _check_phase(phase)
        return self._append(
            Segment("move", self.end_s, duration_s, self.end_value, to, phase, rep, label)
        )

    def pause(
        self, duration_s: float, *, phase: str = "", rep: int = -1, label: str = ""
    ) -> Script:
        """Stay at the current value for ``duration_s`` (s); zero length allowed (tempo 0)."""
        _check_phase(phase)
        value = self.end_value
        return self._append(
            Segment("pause", self.end_s, duration_s, value, value, phase, rep, label)
        )

    def hold(self, duration_s: float, *, rep: int = -1, label: str = "") -> Script:
        """An isometric hold at the current value for ``duration_s`` (s)."""
        value = self.end_value
        return self._append(Segment("hold", self.end_s, duration_s, value, value, "", rep, label))

    def until(self, t_s: float, *, label: str = "") -> Script:
        """Pause until absolute time ``t_s`` (no-op when already there)."""
        return self.pause(max(0.0, t_s - self.end_s), label=label)

    # -- evaluation ---------------------------------------------------------------------------
    def _arrays(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        compiled = self._compiled
        if compiled is None:
            moves = [s for s in self.segments if s.kind == "move"]
            compiled = (
                np.array([s.start_s for s in moves], dtype=np.float64),
                np.array([s.duration_s for s in moves], dtype=np.float64),
                np.array([s.from_value for s in moves], dtype=np.float64),
                np.array([s.to_value for s in moves], dtype=np.float64),
            )
            self._compiled = compiled
        return compiled

    def evaluate(self, t_s: FloatArray) -> Derivatives:
        t = np.asarray(t_s, dtype=np.float64)
        starts, durations, froms, tos = self._arrays()
        if starts.size == 0:
            return Constant(self.start_value).evaluate(t)
        # The move in force at t is the last one that started at or before t; between moves
        # the channel rests at that move's end value (pauses never change the value).
        k = np.searchsorted(starts, t, side="right") - 1
        before = k < 0
        k = np.clip(k, 0, None)
        d = durations[k]
        s = np.clip((t - starts[k]) / d, 0.0, 1.0)
        delta = tos[k] - froms[k]
        s2 = s * s
        s3 = s2 * s
        value = froms[k] + delta * (s3 * (10.0 - 15.0 * s + 6.0 * s2))
        inside = (t >= starts[k]) & (t < starts[k] + d) & ~before
        rate = np.where(inside, delta / d * (30.0 * s2 * (1.0 - s) ** 2), 0.0)
        accel = np.where(inside, delta / (d * d) * (60.0 * s - 180.0 * s2 + 120.0 * s3), 0.0)
        value = np.where(before, froms[0], value)
        return Derivatives(value, rate, accel)


def _check_phase(phase: str) -> None:
    if phase and phase not in PHASE_KINDS:
        raise ValueError(f"phase {phase!r} is not one of {', '.join(PHASE_KINDS)}")


@dataclass(frozen=True)
class Wobble:
    """Sum of sinusoids: ``Σ a_k sin(2π f_k t + φ_k)`` (unit, Hz, rad).

    Built with :meth:`seeded` so tremor (8-12 Hz, hundredths of a degree) and sway (0.1-1 Hz,
    tenths of a degree) look irregular but are a deterministic function of time.
    """

    amplitudes: tuple[float, ...]
    frequencies_hz: tuple[float, ...]
    phases_rad: tuple[float, ...]

    @classmethod
    def seeded(
        cls, seed: Sequence[int], rms: float, band_hz: tuple[float, float], components: int = 5
    ) -> Wobble:
        """A wobble of total RMS ``rms`` with ``components`` frequencies drawn in ``band_hz``."""
        rng = np.random.default_rng(list(seed))
        frequencies = rng.uniform(band_hz[0], band_hz[1], components)
        weights = rng.uniform(0.5, 1.0, components)
        # RMS of a sum of sinusoids of distinct frequencies: sqrt(Σ a_k² / 2).
        amplitudes = weights * rms * np.sqrt(2.0 / np.sum(weights**2))
        phases = rng.uniform(0.0, 2.0 * np.pi, components)
        return cls(
            tuple(float(a) for a in amplitudes),
            tuple(float(f) for f in frequencies),
            tuple(float(p) for p in phases),
        )

    def evaluate(self, t_s: FloatArray) -> Derivatives:
        t = np.asarray(t_s, dtype=np.float64)
        value = np.zeros_like(t)
        rate = np.zeros_like(t)
        accel = np.zeros_like(t)
        # An explicit loop over the few components keeps the summation order fixed, so the
        # result of an element never depends on how many elements are evaluated together.
        for a, f, p in zip(self.amplitudes, self.frequencies_hz, self.phases_rad, strict=True):
            w = 2.0 * np.pi * f
            arg = w * t + p
            sin = np.sin(arg)
            value += a * sin
            rate += a * w * np.cos(arg)
            accel -= a * w * w * sin
        return Derivatives(value, rate, accel)


@dataclass(frozen=True)
class Sum:
    """Pointwise sum of channels."""

    parts: tuple[Channel, ...]

    def evaluate(self, t_s: FloatArray) -> Derivatives:
        t = np.asarray(t_s, dtype=np.float64)
        value = np.zeros_like(t)
        rate = np.zeros_like(t)
        accel = np.zeros_like(t)
        for part in self.parts:
            d = part.evaluate(t)
            value += d.value
            rate += d.rate
            accel += d.accel
        return Derivatives(value, rate, accel)


@dataclass(frozen=True)
class Scaled:
    """A channel multiplied by a constant (e.g. a pelvic roll proportional to its shift)."""

    channel: Channel
    factor: float

    def evaluate(self, t_s: FloatArray) -> Derivatives:
        d = self.channel.evaluate(t_s)
        return Derivatives(d.value * self.factor, d.rate * self.factor, d.accel * self.factor)
