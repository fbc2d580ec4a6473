"""Movement detection: phases with hysteresis, reps with a minimum range, holds (METRICS.md).

The per-sample work runs in :mod:`spinecoach.core._detect`; this module validates input, turns
settings in seconds into samples at the stream's rate, and turns committed phase changes into
reps (a handful of decisions per second, so plain Python). Everything is in sample numbers
(0 = first sample fed); the caller converts to seconds with its stream's ``t0_s`` and rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from spinecoach.core._detect import HoldKernelState, PhaseKernelState, hold_step, phase_step
from spinecoach.core.results import MotionSettings

FloatArray = npt.NDArray[np.float64]

#: Motion settings with METRICS.md's defaults (no exercise).
DEFAULT_MOTION = MotionSettings()
#: Longest walk back from a threshold crossing to the movement's baseline (s).
DEFAULT_WALKBACK_S = 1.0
#: Speed below which the walk back (or forward) from a threshold crossing stops at the first
#: local minimum: the noise level of a filtered, bias-corrected gyro is well under this.
DEFAULT_BASELINE_DPS = 2.0


def samples(seconds: float, rate_hz: float) -> int:
    """``seconds`` as a whole number of samples at ``rate_hz`` (at least 1)."""
    return max(1, round(seconds * rate_hz))


def _check_rate(rate_hz: float) -> float:
    if not (rate_hz > 0 and np.isfinite(rate_hz)):
        raise ValueError(f"rate_hz must be a positive number, got {rate_hz!r}")
    return float(rate_hz)


def _as_1d(x: npt.ArrayLike, name: str) -> FloatArray:
    a = np.ascontiguousarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    return a


@dataclass(frozen=True)
class PhaseChange:
    """A committed phase: ``phase`` (0 still, +1/-1 moving with that sign of angular velocity)
    starts at sample ``boundary``; the sample ``decided`` made it certain."""

    boundary: int
    phase: int
    decided: int


class PhaseDetector:
    """Streaming phase classifier over the primary angular velocity (°/s, already filtered)."""

    def __init__(
        self,
        rate_hz: float,
        settings: MotionSettings = DEFAULT_MOTION,
        walkback_s: float = DEFAULT_WALKBACK_S,
        baseline_dps: float = DEFAULT_BASELINE_DPS,
        filter_delay_samples: int = 0,
    ) -> None:
        """``filter_delay_samples``: group delay of the low-pass the velocity went through; the
        boundaries are moved back by it (see the kernel)."""
        self.rate_hz = _check_rate(rate_hz)
        if not settings.still_threshold_dps < settings.moving_threshold_dps:
            raise ValueError("still_threshold_dps must be below moving_threshold_dps")
        self._st = PhaseKernelState(
            settings.moving_threshold_dps,
            settings.still_threshold_dps,
            samples(settings.min_phase_s, rate_hz),
            samples(walkback_s, rate_hz),
            float(baseline_dps),
            int(filter_delay_samples),
        )

    @property
    def phase(self) -> int:
        """Committed phase of the latest sample (0 still, +1/-1 moving)."""
        return int(self._st.phase)

    @property
    def boundary(self) -> int:
        """First sample of the committed phase."""
        return int(self._st.boundary)

    def copy(self) -> PhaseDetector:
        other = object.__new__(PhaseDetector)
        other.rate_hz = self.rate_hz
        other._st = self._st.copy()
        return other

    def update(self, omega_dps: npt.ArrayLike) -> list[PhaseChange]:
        """Consume consecutive samples; return the phase changes they commit."""
        w = _as_1d(omega_dps, "omega_dps")
        n = w.shape[0]
        ob = np.empty(n, np.int64)
        op = np.empty(n, np.int8)
        od = np.empty(n, np.int64)
        count = phase_step(self._st, w, ob, op, od)
        return [PhaseChange(int(ob[i]), int(op[i]), int(od[i])) for i in range(count)]


@dataclass(frozen=True)
class HoldChange:
    """``kind`` "hold_start" (end = -1) or "hold_end" (end = first sample of the break);
    ``reason`` of an end: "left_band" or "force_unstable"."""

    kind: str
    start: int
    end: int
    decided: int
    reason: str = ""


_REASONS = {0: "", 1: "left_band", 2: "force_unstable"}


class HoldDetector:
    """Streaming hold detector: angle in [lo_deg, hi_deg] and force within ±frac of its mean.

    Pass NaN force where there is no load cell. ``min_hold_s`` rejects passing through the band.
    """

    def __init__(
        self,
        rate_hz: float,
        lo_deg: float,
        hi_deg: float,
        force_tolerance_frac: float = 0.10,
        debounce_s: float = 0.2,
        min_hold_s: float = 1.0,
    ):
        self.rate_hz = _check_rate(rate_hz)
        if not lo_deg <= hi_deg:
            raise ValueError("hold band: lo_deg must not exceed hi_deg")
        self._st = HoldKernelState(
            float(lo_deg),
            float(hi_deg),
            float(force_tolerance_frac),
            round(debounce_s * rate_hz),
            samples(min_hold_s, rate_hz),
        )

    @classmethod
    def for_target(cls, rate_hz: float, settings: MotionSettings) -> HoldDetector:
        """The band hold_target ± hold_tolerance of an exercise's settings."""
        if settings.hold_target_deg is None:
            raise ValueError("these motion settings have no hold target")
        t, tol = settings.hold_target_deg, settings.hold_tolerance_deg
        return cls(
            rate_hz, t - tol, t + tol, settings.hold_force_tolerance_frac,
            settings.hold_debounce_s, settings.min_hold_s,
        )

    @property
    def holding(self) -> bool:
        return bool(self._st.holding)

    @property
    def samples_seen(self) -> int:
        return int(self._st.n_seen)

    def copy(self) -> HoldDetector:
        other = object.__new__(HoldDetector)
        other.rate_hz = self.rate_hz
        other._st = self._st.copy()
        return other

    def update(self, angle_deg: npt.ArrayLike, force_n: npt.ArrayLike | None = None) -> list[HoldChange]:
        a = _as_1d(angle_deg, "angle_deg")
        n = a.shape[0]
        f = np.full(n, np.nan) if force_n is None else _as_1d(force_n, "force_n")
        if f.shape != a.shape:
            raise ValueError("force_n must have the same length as angle_deg")
        kind = np.empty(n, np.int8)
        start = np.empty(n, np.int64)
        end = np.empty(n, np.int64)
        dec = np.empty(n, np.int64)
        reason = np.empty(n, np.int8)
        count = hold_step(self._st, a, f, kind, start, end, dec, reason)
        return [
            HoldChange(
                "hold_start" if kind[i] == 1 else "hold_end",
                int(start[i]), int(end[i]), int(dec[i]), _REASONS[int(reason[i])],
            )
            for i in range(count)
        ]

    def finish(self) -> list[HoldChange]:
        """End a hold still running at the end of the data (end = one past the last sample)."""
        st = self._st
        if not st.holding:
            return []
        st.holding = False
        end = int(st.break_start) if st.break_count > 0 else int(st.n_seen)
        if end - int(st.start) < int(st.min_n):
            return []
        return [HoldChange("hold_end", int(st.start), end, int(st.n_seen) - 1, "end_of_data")]


@dataclass(frozen=True)
class RepSpan:
    """Sample boundaries of one rep, away from the start position and back.

    ``away_dir`` is the sign of the angular velocity moving away. The away swing runs
    [start, away_end), the pause at the far end [away_end, back_start), the return
    [back_start, end). ``rest_pause`` samples of stillness at the start position preceded the
    rep (since the previous rep; 0 for the first). ``extreme`` is the sample of the far end.

    A rep that swept on through the start position (a throw) has ``wind_up_end`` >= 0: its
    first swing, the wind-up, ran [start, wind_up_end) against ``away_dir``, and the swing
    through the start position [through_start, away_end) in ``away_dir``; -1 otherwise.
    """

    start: int
    away_end: int
    back_start: int
    end: int
    away_dir: int
    extreme: int
    rest_pause: int
    decided: int
    wind_up_end: int = -1
    through_start: int = -1


class RepTracker:
    """Turns committed phase changes into reps (METRICS.md "Rep").

    A rep is a swing of at least ``min_rom_deg`` away from the start position followed by a
    return of at least ``max(min_rom_deg, min_return_frac x excursion)``; a return that sweeps
    on past the start by ``min_rom_deg`` or more (a throw) continues the rep, which then ends on
    the way back from the far side. Movements in the same
    direction separated by a short stop belong to one swing; a stop at the far end is the
    far pause. The rep is decided when its return movement stops or reverses.
    ``angle_at(sample)`` and ``extreme_in(a, b, dir)`` read the angle history.
    """

    def __init__(
        self,
        min_rom_deg: float,
        angle_at: Callable[[int], float],
        extreme_in: Callable[[int, int, int], int],
        min_return_frac: float = 0.5,
    ) -> None:
        self.min_rom_deg = float(min_rom_deg)
        self.min_return_frac = float(min_return_frac)
        self._angle_at = angle_at
        self._extreme_in = extreme_in
        self._prev: PhaseChange | None = None
        self._reset_candidate()
        self._last_rep_end: int | None = None

    def _reset_candidate(self) -> None:
        self._stage = "idle"  # idle -> away -> back
        self._start = 0
        self._dir = 0
        self._extreme = 0
        self._away_end = 0
        self._back_start = 0
        self._back_end = 0
        self._wind_up_end = -1
        self._through_start = -1

    @property
    def oldest_needed(self) -> int | None:
        """Earliest sample a future rep can still refer to (for trimming histories)."""
        if self._stage == "idle":
            return self._prev.boundary if self._prev is not None else None
        return min(self._start, self._last_rep_end if self._last_rep_end is not None else self._start)

    def update(self, change: PhaseChange) -> list[RepSpan]:
        """Feed the next committed phase change; return the reps it completes."""
        prev, self._prev = self._prev, change
        if prev is None:
            prev = PhaseChange(0, 0, 0)
            if change.phase == 0:
                return []
        if prev.phase == 0:
            return self._moving_starts(change) if change.phase != 0 else []
        # a moving segment [prev.boundary, change.boundary) in direction prev.phase has ended
        reps = self._moving_ended(prev.phase, prev.boundary, change.boundary, change.decided)
        if change.phase != 0:
            reps += self._moving_starts(change)
        return reps

    def finish(self, n_samples: int) -> list[RepSpan]:
        """End of the data after ``n_samples``: a movement still running stops there."""
        prev = self._prev
        if prev is None or prev.phase == 0 or n_samples <= prev.boundary:
            return []
        self._prev = PhaseChange(n_samples, 0, n_samples - 1)
        return self._moving_ended(prev.phase, prev.boundary, n_samples, n_samples - 1)

    def _moving_starts(self, change: PhaseChange) -> list[RepSpan]:
        if self._stage == "idle":
            self._stage = "away"
            self._start = change.boundary
            self._dir = change.phase
            self._extreme = change.boundary
        return []

    def _excursion(self, sample: int) -> float:
        return (self._angle_at(sample) - self._angle_at(self._start)) * self._dir

    def _moving_ended(self, direction: int, a: int, b: int, decided: int) -> list[RepSpan]:
        if self._stage == "away":
            if direction == self._dir:
                ext = self._extreme_in(a, b, self._dir)
                if self._excursion(ext) >= self._excursion(self._extreme):
                    self._extreme = ext
                self._away_end = b
                return []
            # a reversal: only a rep candidate if the away swing was large enough
            if self._excursion(self._extreme) >= self.min_rom_deg:
                self._stage = "back"
                self._back_start = a
            else:
                self._reset_candidate()
                self._stage = "away"
                self._start, self._dir, self._extreme = a, direction, a
                self._away_end = b
                self._extreme = self._extreme_in(a, b, direction)
                return []
        if self._stage == "back":
            if direction == self._dir:
                # moving away again before returning far enough: the swing continues
                ext = self._extreme_in(a, b, self._dir)
                if self._excursion(ext) > self._excursion(self._extreme):
                    self._extreme = ext
                    self._away_end = b
                    self._stage = "away"
                return []
            self._back_end = b
            if self._excursion(b) <= -self.min_rom_deg:
                # the return swept on past the start by a full range (a throw: wind-up, throw
                # through): the far side is an excursion of the same rep, which ends on the
                # way back from there
                if self._wind_up_end < 0:
                    self._wind_up_end, self._through_start = self._away_end, a
                self._dir = -self._dir
                self._extreme = self._extreme_in(a, b, self._dir)
                self._away_end = b
                self._stage = "away"
                return []
            excursion = self._excursion(self._extreme)
            returned = (self._angle_at(self._extreme) - self._angle_at(b)) * self._dir
            if returned >= max(self.min_rom_deg, self.min_return_frac * excursion):
                rest = 0 if self._last_rep_end is None else max(0, self._start - self._last_rep_end)
                rep = RepSpan(
                    start=self._start,
                    away_end=self._away_end,
                    back_start=self._back_start,
                    end=b,
                    away_dir=self._dir,
                    extreme=self._extreme,
                    rest_pause=rest,
                    decided=decided,
                    wind_up_end=self._wind_up_end,
                    through_start=self._through_start,
                )
                self._last_rep_end = b
                self._reset_candidate()
                return [rep]
        return []


def detect_phases(
    omega_dps: npt.ArrayLike, rate_hz: float, settings: MotionSettings = DEFAULT_MOTION
) -> list[PhaseChange]:
    """Phase changes of a whole recording (batch form of :class:`PhaseDetector`)."""
    return PhaseDetector(rate_hz, settings).update(omega_dps)


def count_reps(
    angle_deg: npt.ArrayLike,
    omega_dps: npt.ArrayLike,
    rate_hz: float,
    settings: MotionSettings = DEFAULT_MOTION,
) -> list[RepSpan]:
    """Reps of a whole recording from its primary angle and (filtered) angular velocity."""
    angle = _as_1d(angle_deg, "angle_deg")
    tracker = RepTracker(
        settings.min_rom_deg,
        lambda i: float(angle[min(i, len(angle) - 1)]),
        lambda a, b, d: a + int(np.argmax(angle[a:b] * d)) if b > a else a,
        settings.min_return_frac,
    )
    reps: list[RepSpan] = []
    for change in detect_phases(omega_dps, rate_hz, settings):
        reps += tracker.update(change)
    return reps + tracker.finish(len(angle))
