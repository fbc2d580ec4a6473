"""Ground truth of a simulated scenario, exact by construction, as JSON next to a recording.

The truth is derived from the same movement scripts and force models that generate the
signals, following the definitions of METRICS.md:

- reps: start/end (s) of each excursion, its phases (eccentric, pause lengthened, concentric,
  pause shortened) with their scripted boundaries and where METRICS.md's speed thresholds see
  them, range of motion (deg, max − min of the true primary angle over the rep), and where
  relevant the sway RMS (deg) or peak rotation speed (°/s);
- holds: the interval in which the true primary angle stays inside target ± tolerance
  (``start_s``/``end_s``), plus the scripted still segment (``still_start_s``/``still_end_s``);
- contractions (load cell): true rise start, METRICS.md onset, baseline, peak force, time to
  peak, force and RFD at 50-200 ms, peak RFD (20 ms sliding window in the first 300 ms),
  impulse of (force − baseline) over 100/200/300 ms and over the whole contraction, mean force
  over the "on" time, all in closed form (see :class:`~spinecoach.drivers.sim.rig.Contraction`);
- the true primary angle of every IMU placement sampled at 100 Hz (:class:`AngleCurve`).

JSON keys (format version 1), all times in seconds from the scenario start::

    {"format": "spinecoach-truth", "version": 1, "scenario", "exercise", "protocol", "seed",
     "duration_s", "primary_placement",
     "primary_angle": "flexion" (rotation about sensor +y from upright) or "heading"
                      (rotation about vertical, for throws),
     "tempo": E-P-C-P string or null,
     "eccentric_sign": +1 if the lengthening phase increases the primary angle, -1 if it
                       decreases it (of the first side when both sides are worked), or null,
     "fatigue_index_pct": number or null,
     "reps": [{"index", "start_s", "end_s", "rom_deg",
               "phases": [{"kind", "start_s", "end_s", "threshold_start_s",
                           "threshold_end_s"}],
               "sway_rms_deg", "peak_rotation_speed_dps"}],
     "holds": [{"index", "start_s", "end_s", "target_deg", "tolerance_deg",
                "still_start_s", "still_end_s", "approach_start_s", "overshoot_deg",
                "stabilisation_s"}],
     "shifts": [{"start_s", "end_s", "offset_m"}],
     "contractions": [{"index", "rise_start_s", "onset_s", "threshold_n", "end_s", "on_s",
                       "baseline_n", "peak_force_n", "time_to_peak_s",
                       "force_at_n": {"50": ...}, "rfd_n_per_s": {"50": ...},
                       "peak_rfd_n_per_s", "impulse_n_s": {"100": ...},
                       "impulse_total_n_s", "mean_force_on_n"}],
     "angles": {"trunk": {"t0_s", "rate_hz", "angle_deg": [...]}}}

Field names follow :mod:`spinecoach.core.results` where they mean the same thing
(``ContractionResult``: window dicts keyed by the window in ms as a string, e.g. "50").
``to_json`` writes compact JSON with sorted keys, so the same truth always gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.sim.motion import Channel, Script, Segment
from spinecoach.drivers.sim.rig import Contraction
from spinecoach.errors import DataFormatError

FloatArray = npt.NDArray[np.float64]
AngleFn = Callable[[FloatArray], FloatArray]

TRUTH_FORMAT = "spinecoach-truth"
TRUTH_VERSION = 1

#: METRICS.md windows: force/RFD at 50-200 ms, impulse over 100-300 ms, peak RFD 20 ms in 300 ms.
RFD_WINDOWS_MS: tuple[int, ...] = (50, 100, 150, 200)
IMPULSE_WINDOWS_MS: tuple[int, ...] = (100, 200, 300)
PEAK_RFD_WINDOW_S = 0.020
PEAK_RFD_SEARCH_S = 0.300
#: METRICS.md onset threshold: baseline + max(k·SD, floor); a contraction ends when force is
#: back below baseline + floor.
ONSET_K_SD = 5.0
ONSET_FLOOR_N = 20.0
#: METRICS.md phase thresholds: moving above 10 °/s, still below 5 °/s (hysteresis).
MOVING_THRESHOLD_DPS = 10.0
STILL_THRESHOLD_DPS = 5.0
#: METRICS.md stabilisation: within ±2° of the settled value for 100 ms.
STABLE_BAND_DEG = 2.0
STABLE_FOR_S = 0.100
#: Default hold tolerance (deg) of METRICS.md.
HOLD_TOLERANCE_DEG = 5.0
#: METRICS.md hold debounce: a hold ends only when the angle leaves the band for longer (s).
HOLD_DEBOUNCE_S = 0.200
#: Sampling used to find extrema and band crossings of the analytic angle (s).
TRUTH_STEP_S = 0.0005
#: Rate of the stored true-angle curves (Hz).
ANGLE_CURVE_RATE_HZ = 100.0


@dataclass(frozen=True)
class PhaseTruth:
    """One movement phase: ``kind`` is eccentric, pause_lengthened, concentric or
    pause_shortened.

    ``start_s``/``end_s`` are the scripted boundaries: a minimum-jerk move starts and ends at
    zero speed, so these are where the movement truly begins and ends.
    ``threshold_start_s``/``threshold_end_s`` are the same phase as METRICS.md's speed
    thresholds see it on the noise-free primary angular speed: a move from |ω| rising above
    10 °/s to |ω| falling below 5 °/s, a pause between the neighbouring moves' crossings.
    A detector that follows METRICS.md should match these to within its filter delay.
    """

    kind: str
    start_s: float
    end_s: float
    threshold_start_s: float
    threshold_end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class RepTruth:
    """One rep: an excursion away from the start position and back."""

    index: int
    start_s: float
    end_s: float
    rom_deg: float
    phases: tuple[PhaseTruth, ...] = ()
    sway_rms_deg: float | None = None
    peak_rotation_speed_dps: float | None = None

    def phase_duration_s(self, kind: str) -> float:
        """Total duration (s) of the rep's phases of ``kind`` (0 if it has none)."""
        return sum(p.duration_s for p in self.phases if p.kind == kind)


@dataclass(frozen=True)
class HoldTruth:
    """One isometric hold: inside target ± tolerance from ``start_s`` to ``end_s``.

    The approach to the hold is the run of moves just before it, starting at
    ``approach_start_s`` (the true movement onset). ``overshoot_deg``: the largest excursion
    of the true angle past the target, in the approach direction, from the approach start to
    the hold's end (0 when it never passes the target). ``stabilisation_s``: from the approach
    start to the first time the angle stays within ±2° of the target for 100 ms (METRICS.md's
    stabilisation time; the target is the settled value), None if it never does.
    """

    index: int
    start_s: float
    end_s: float
    target_deg: float
    tolerance_deg: float
    still_start_s: float
    still_end_s: float
    approach_start_s: float
    overshoot_deg: float
    stabilisation_s: float | None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class ShiftTruth:
    """A lateral pelvic shift reaching ``offset_m`` (m, + = to the athlete's left)."""

    start_s: float
    end_s: float
    offset_m: float


@dataclass(frozen=True)
class ContractionTruth:
    """Force-development figures of one contraction (N, s, N/s, N·s), exact.

    ``rise_start_s`` is where the force truly leaves the baseline. ``onset_s`` is METRICS.md's
    onset on the noise-free force: where it passes baseline + ``threshold_n``
    (max(5 × the load cell's noise SD, 20 N)), the start of the final run above threshold.
    Every windowed figure is measured from ``onset_s`` as METRICS.md defines it: force at
    onset + w, RFD = (F(onset + w) − F(onset)) / w, peak RFD over 20 ms windows starting in
    the first 300 ms, impulse of (F − baseline) from the onset. ``end_s``: force back down to
    baseline + 20 N after release. ``mean_force_on_n``: mean force from the onset to the
    release (the "on" time of a repeater).
    """

    index: int
    rise_start_s: float
    onset_s: float
    threshold_n: float
    end_s: float
    on_s: float
    baseline_n: float
    peak_force_n: float
    time_to_peak_s: float
    force_at_n: Mapping[str, float]
    rfd_n_per_s: Mapping[str, float]
    peak_rfd_n_per_s: float
    impulse_n_s: Mapping[str, float]
    impulse_total_n_s: float
    mean_force_on_n: float

    @classmethod
    def from_model(
        cls, index: int, contraction: Contraction, baseline_n: float, noise_sd_n: float
    ) -> ContractionTruth:
        """Closed forms for ``F = baseline + A(1 − e^(−s/τ)) − D s`` (see Contraction)."""
        c = contraction
        a, tau, d, on = c.amplitude_n, c.tau_rise_s, c.decline_n_per_s, c.on_s
        threshold = max(ONSET_K_SD * noise_sd_n, ONSET_FLOOR_N)
        s_on = _threshold_crossing(c, threshold)
        # dF/ds = (A/τ) e^(−s/τ) − D is decreasing, so the peak is where it vanishes (or the
        # end of the "on" time), and the steepest 20 ms window starts at the onset.
        s_peak = on if d <= 0 else min(on, max(0.0, tau * float(np.log(a / (tau * d)))))
        net_release = c.net_at(on)
        # After release the net force decays as net_release·e^(−u/τr); it crosses the floor at
        # u_end, and the tail's impulse to there is τr (net_release − floor).
        u_end = c.tau_relax_s * float(np.log(max(net_release, ONSET_FLOOR_N) / ONSET_FLOOR_N))
        tail = c.tau_relax_s * (net_release - ONSET_FLOOR_N) if net_release > ONSET_FLOOR_N else 0
        impulse_at_onset = c.impulse_net(s_on)
        return cls(
            index=index,
            rise_start_s=c.onset_s,
            onset_s=c.onset_s + s_on,
            threshold_n=threshold,
            end_s=c.onset_s + on + u_end,
            on_s=on,
            baseline_n=baseline_n,
            peak_force_n=baseline_n + c.net_at(s_peak),
            time_to_peak_s=s_peak - s_on,
            force_at_n={str(w): baseline_n + c.net_at(s_on + w / 1000) for w in RFD_WINDOWS_MS},
            rfd_n_per_s={
                str(w): (c.net_at(s_on + w / 1000) - threshold) / (w / 1000) for w in RFD_WINDOWS_MS
            },
            peak_rfd_n_per_s=(c.net_at(s_on + PEAK_RFD_WINDOW_S) - threshold) / PEAK_RFD_WINDOW_S,
            impulse_n_s={
                str(w): c.impulse_net(s_on + w / 1000) - impulse_at_onset
                for w in IMPULSE_WINDOWS_MS
            },
            impulse_total_n_s=c.impulse_net(on) - impulse_at_onset + float(tail),
            mean_force_on_n=baseline_n + (c.impulse_net(on) - impulse_at_onset) / (on - s_on),
        )


def _threshold_crossing(c: Contraction, threshold_n: float) -> float:
    """Time after the rise start (s) at which the net force reaches ``threshold_n``.

    Without within-rep decline ``s = −τ ln(1 − thr/A)``; the decline term is then removed by
    Newton's method on ``A(1 − e^(−s/τ)) − D s − thr`` (converges to machine precision in a
    few steps: the function is smooth and concave).
    """
    a, tau, d = c.amplitude_n, c.tau_rise_s, c.decline_n_per_s
    s = -tau * float(np.log1p(-threshold_n / a))
    for _ in range(50):
        f = c.net_at(s) - threshold_n
        slope = a / tau * float(np.exp(-s / tau)) - d
        step = f / slope
        s -= step
        if abs(step) < 1e-15:
            break
    return s


@dataclass(frozen=True)
class AngleCurve:
    """The true primary angle (deg) sampled at ``rate_hz`` from ``t0_s``."""

    t0_s: float
    rate_hz: float
    angle_deg: FloatArray

    @classmethod
    def sample(cls, angle_fn: AngleFn, duration_s: float, rate_hz: float) -> AngleCurve:
        t = np.arange(int(np.floor(duration_s * rate_hz)) + 1) / rate_hz
        return cls(0.0, rate_hz, np.round(angle_fn(t), 6))

    def at(self, t_s: FloatArray) -> FloatArray:
        """The angle (deg) at ``t_s`` by linear interpolation."""
        grid = self.t0_s + np.arange(self.angle_deg.size) / self.rate_hz
        return np.interp(np.asarray(t_s, dtype=np.float64), grid, self.angle_deg)


@dataclass
class GroundTruth:
    """Everything a scenario knows about itself; see the module docstring for the JSON keys."""

    scenario: str
    exercise: str
    protocol: str
    seed: int
    duration_s: float
    primary_placement: str | None
    primary_angle: str = "flexion"
    tempo: str | None = None
    eccentric_sign: int | None = None
    reps: list[RepTruth] = field(default_factory=list)
    holds: list[HoldTruth] = field(default_factory=list)
    shifts: list[ShiftTruth] = field(default_factory=list)
    contractions: list[ContractionTruth] = field(default_factory=list)
    fatigue_index_pct: float | None = None
    angles: dict[str, AngleCurve] = field(default_factory=dict)

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TRUTH_FORMAT,
            "version": TRUTH_VERSION,
            "scenario": self.scenario,
            "exercise": self.exercise,
            "protocol": self.protocol,
            "seed": self.seed,
            "duration_s": self.duration_s,
            "primary_placement": self.primary_placement,
            "primary_angle": self.primary_angle,
            "tempo": self.tempo,
            "eccentric_sign": self.eccentric_sign,
            "fatigue_index_pct": self.fatigue_index_pct,
            "reps": [
                {
                    "index": r.index,
                    "start_s": r.start_s,
                    "end_s": r.end_s,
                    "rom_deg": r.rom_deg,
                    "phases": [
                        {
                            "kind": p.kind,
                            "start_s": p.start_s,
                            "end_s": p.end_s,
                            "threshold_start_s": p.threshold_start_s,
                            "threshold_end_s": p.threshold_end_s,
                        }
                        for p in r.phases
                    ],
                    "sway_rms_deg": r.sway_rms_deg,
                    "peak_rotation_speed_dps": r.peak_rotation_speed_dps,
                }
                for r in self.reps
            ],
            "holds": [
                {
                    "index": h.index,
                    "start_s": h.start_s,
                    "end_s": h.end_s,
                    "target_deg": h.target_deg,
                    "tolerance_deg": h.tolerance_deg,
                    "still_start_s": h.still_start_s,
                    "still_end_s": h.still_end_s,
                    "approach_start_s": h.approach_start_s,
                    "overshoot_deg": h.overshoot_deg,
                    "stabilisation_s": h.stabilisation_s,
                }
                for h in self.holds
            ],
            "shifts": [
                {"start_s": s.start_s, "end_s": s.end_s, "offset_m": s.offset_m}
                for s in self.shifts
            ],
            "contractions": [
                {
                    "index": c.index,
                    "rise_start_s": c.rise_start_s,
                    "onset_s": c.onset_s,
                    "threshold_n": c.threshold_n,
                    "end_s": c.end_s,
                    "on_s": c.on_s,
                    "baseline_n": c.baseline_n,
                    "peak_force_n": c.peak_force_n,
                    "time_to_peak_s": c.time_to_peak_s,
                    "force_at_n": dict(c.force_at_n),
                    "rfd_n_per_s": dict(c.rfd_n_per_s),
                    "peak_rfd_n_per_s": c.peak_rfd_n_per_s,
                    "impulse_n_s": dict(c.impulse_n_s),
                    "impulse_total_n_s": c.impulse_total_n_s,
                    "mean_force_on_n": c.mean_force_on_n,
                }
                for c in self.contractions
            ],
            "angles": {
                name: {
                    "t0_s": curve.t0_s,
                    "rate_hz": curve.rate_hz,
                    "angle_deg": [float(v) for v in curve.angle_deg],
                }
                for name, curve in self.angles.items()
            },
        }

    def to_json(self) -> str:
        """Stable, compact JSON text (sorted keys, one trailing newline)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroundTruth:
        if data.get("format") != TRUTH_FORMAT or data.get("version") != TRUTH_VERSION:
            raise DataFormatError(
                f"not a spinecoach ground-truth file version {TRUTH_VERSION} (format "
                f"{data.get('format')!r}, version {data.get('version')!r}); regenerate it with "
                "the current scenarios"
            )
        try:
            return cls(
                scenario=str(data["scenario"]),
                exercise=str(data["exercise"]),
                protocol=str(data["protocol"]),
                seed=int(data["seed"]),
                duration_s=float(data["duration_s"]),
                primary_placement=data["primary_placement"],
                primary_angle=str(data["primary_angle"]),
                tempo=data["tempo"],
                eccentric_sign=data["eccentric_sign"],
                fatigue_index_pct=data["fatigue_index_pct"],
                reps=[
                    RepTruth(
                        index=int(r["index"]),
                        start_s=float(r["start_s"]),
                        end_s=float(r["end_s"]),
                        rom_deg=float(r["rom_deg"]),
                        phases=tuple(PhaseTruth(**p) for p in r["phases"]),
                        sway_rms_deg=r["sway_rms_deg"],
                        peak_rotation_speed_dps=r["peak_rotation_speed_dps"],
                    )
                    for r in data["reps"]
                ],
                holds=[HoldTruth(**h) for h in data["holds"]],
                shifts=[ShiftTruth(**s) for s in data["shifts"]],
                contractions=[ContractionTruth(**c) for c in data["contractions"]],
                angles={
                    name: AngleCurve(
                        float(a["t0_s"]), float(a["rate_hz"]), np.asarray(a["angle_deg"], float)
                    )
                    for name, a in data["angles"].items()
                },
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DataFormatError(
                f"ground-truth file is missing or has a bad field ({error}); regenerate it with "
                "the current scenarios"
            ) from error

    @classmethod
    def from_json(cls, text: str) -> GroundTruth:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataFormatError(
                f"ground-truth JSON is malformed at line {error.lineno} column {error.colno}: "
                f"{error.msg}; regenerate the file"
            ) from error
        if not isinstance(data, dict):
            raise DataFormatError("ground-truth JSON must be an object; regenerate the file")
        return cls.from_dict(data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GroundTruth):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


# ------------------------------------------------------------------------------------------------
# Deriving truth from scripts
# ------------------------------------------------------------------------------------------------
def dense_times(start_s: float, end_s: float, step_s: float = TRUTH_STEP_S) -> FloatArray:
    """Times from ``start_s`` to ``end_s`` inclusive at ``step_s`` (the last one exact)."""
    n = max(int(np.ceil((end_s - start_s) / step_s)), 1)
    return np.linspace(start_s, end_s, n + 1)


def _speed_window(channel: Channel, move: Segment) -> tuple[float, float]:
    """When |rate| of ``channel`` first rises above the moving threshold inside ``move`` and
    then first falls below the still threshold (s, linearly interpolated between samples)."""
    t = dense_times(move.start_s, move.end_s + 0.5)
    speed = np.abs(channel.evaluate(t).rate)
    above = np.flatnonzero(speed > MOVING_THRESHOLD_DPS)
    if above.size == 0:
        return move.start_s, move.end_s  # too slow for the thresholds: keep the script's
    i = int(above[0])
    up = _crossing(t, speed, MOVING_THRESHOLD_DPS, max(i - 1, 0), i)
    below = np.flatnonzero(speed[i:] < STILL_THRESHOLD_DPS)
    if below.size == 0:
        return up, move.end_s
    j = i + int(below[0])
    return up, _crossing(t, speed, STILL_THRESHOLD_DPS, j - 1, j)


def reps_from_script(
    script: Script,
    primary: Channel,
    *,
    sway_fn: AngleFn | None = None,
    speed_fn: AngleFn | None = None,
) -> list[RepTruth]:
    """Reps from the segments labelled with a rep number.

    A rep runs from the start of its first move to the end of its last move; its phases are
    its labelled segments in time order (a trailing pause at the start position belongs to
    the rep's tempo even though it follows ``end_s``). ``primary`` is the full primary-angle
    channel (script plus sway): ``rom_deg`` is its max − min over the rep and its rate gives
    the phases' threshold boundaries. ``sway_fn`` gives the RMS about the mean of the
    off-axis angle over the rep; ``speed_fn`` the peak of |speed| over the rep (e.g. rotation
    speed about vertical).
    """
    all_moves = [s for s in script.segments if s.kind == "move"]
    windows = {id(m): _speed_window(primary, m) for m in all_moves}

    def threshold_bounds(segment: Segment) -> tuple[float, float]:
        if segment.kind == "move":
            return windows[id(segment)]
        before = [m for m in all_moves if m.end_s <= segment.start_s]
        after = [m for m in all_moves if m.start_s >= segment.end_s]
        start = windows[id(before[-1])][1] if before else segment.start_s
        end = windows[id(after[0])][0] if after else segment.end_s
        return start, end

    reps: list[RepTruth] = []
    numbers = sorted({s.rep for s in script.segments if s.rep >= 0})
    for number in numbers:
        segments = [s for s in script.segments if s.rep == number]
        moves = [s for s in segments if s.kind == "move"]
        start_s, end_s = moves[0].start_s, moves[-1].end_s
        t = dense_times(start_s, end_s)
        angle = primary.evaluate(t).value
        sway = None
        if sway_fn is not None:
            off = sway_fn(t)
            sway = float(np.sqrt(np.mean((off - off.mean()) ** 2)))
        speed = None if speed_fn is None else float(np.max(np.abs(speed_fn(t))))
        reps.append(
            RepTruth(
                index=len(reps),
                start_s=start_s,
                end_s=end_s,
                rom_deg=float(angle.max() - angle.min()),
                phases=tuple(
                    PhaseTruth(s.phase, s.start_s, s.end_s, *threshold_bounds(s))
                    for s in segments
                    if s.phase
                ),
                sway_rms_deg=sway,
                peak_rotation_speed_dps=speed,
            )
        )
    return reps


def _crossing(t: FloatArray, y: FloatArray, edge: float, i: int, j: int) -> float:
    """Time between samples i and j where ``y`` crosses ``edge`` (linear interpolation)."""
    if y[j] == y[i]:
        return float(t[j])
    frac = (edge - y[i]) / (y[j] - y[i])
    return float(t[i] + np.clip(frac, 0.0, 1.0) * (t[j] - t[i]))


def holds_from_script(
    script: Script,
    angle_fn: AngleFn,
    duration_s: float,
    tolerance_deg: float = HOLD_TOLERANCE_DEG,
) -> list[HoldTruth]:
    """Holds from the ``hold`` segments: each extended to the surrounding interval in which
    ``angle_fn`` stays within the hold value ± ``tolerance_deg`` (band edges interpolated),
    with the overshoot and stabilisation time of its approach (see :class:`HoldTruth`).

    As METRICS.md defines a hold, excursions out of the band lasting no longer than the
    debounce (HOLD_DEBOUNCE_S) do not break it: an approach that overshoots through the band
    edge and settles back within the debounce starts the hold at its first entry."""
    holds: list[HoldTruth] = []
    t = dense_times(0.0, duration_s)
    y = angle_fn(t)
    for number, segment in enumerate(script.segments):
        if segment.kind != "hold":
            continue
        target = segment.from_value
        first = int(np.searchsorted(t, segment.start_s))
        last = int(np.searchsorted(t, segment.end_s, side="right")) - 1
        start_s, end_s = _debounced_band_interval(t, y, target, tolerance_deg, first, last)
        approach = _approach_start(script, number)
        overshoot, stabilisation = _approach_figures(t, y, target, approach, segment.end_s)
        holds.append(
            HoldTruth(
                index=len(holds),
                start_s=start_s,
                end_s=end_s,
                target_deg=target,
                tolerance_deg=tolerance_deg,
                still_start_s=segment.start_s,
                still_end_s=segment.end_s,
                approach_start_s=approach,
                overshoot_deg=overshoot,
                stabilisation_s=stabilisation,
            )
        )
    return holds


def _debounced_band_interval(
    t: FloatArray, y: FloatArray, target: float, tolerance_deg: float, first: int, last: int
) -> tuple[float, float]:
    """The hold around samples [first, last] (inside target ± tolerance_deg): widened over
    every excursion out of the band of at most HOLD_DEBOUNCE_S, from the entry after the
    last longer excursion before it to the exit that starts the first longer one after it
    (band edges interpolated; the ends of the data bound it)."""
    outside = np.abs(y - target) > tolerance_deg

    def exit_time(j: int) -> float:  # y[j - 1] inside, y[j] outside
        return _crossing(t, y, target + tolerance_deg * np.sign(y[j] - target), j - 1, j)

    def entry_time(i: int) -> float:  # y[i] outside, y[i + 1] inside
        return _crossing(t, y, target + tolerance_deg * np.sign(y[i] - target), i, i + 1)

    start_s, k = float(t[0]), first
    while True:
        out = np.flatnonzero(outside[:k])
        if out.size == 0:
            break
        i = int(out[-1])
        inside_before = np.flatnonzero(~outside[:i])
        entry = entry_time(i)
        if inside_before.size == 0 or entry - exit_time(int(inside_before[-1]) + 1) > HOLD_DEBOUNCE_S:
            start_s = entry
            break
        k = int(inside_before[-1]) + 1
    end_s, k = float(t[-1]), last
    while True:
        out = np.flatnonzero(outside[k:])
        if out.size == 0:
            break
        j = k + int(out[0])
        inside_after = np.flatnonzero(~outside[j:])
        exit_ = exit_time(j)
        if inside_after.size == 0 or entry_time(j + int(inside_after[0]) - 1) - exit_ > HOLD_DEBOUNCE_S:
            end_s = exit_
            break
        k = j + int(inside_after[0])
    return start_s, end_s


def _approach_start(script: Script, hold_number: int) -> float:
    """Start of the run of moves that ends at segment ``hold_number`` (s)."""
    start = script.segments[hold_number].start_s
    for segment in reversed(script.segments[:hold_number]):
        if segment.kind != "move":
            break
        start = segment.start_s
    return start


def _approach_figures(
    t: FloatArray, y: FloatArray, target: float, approach_s: float, hold_end_s: float
) -> tuple[float, float | None]:
    """Overshoot past ``target`` (deg) and stabilisation time (s, None if the angle never
    settles) of one approach."""
    first = int(np.searchsorted(t, approach_s))
    last = int(np.searchsorted(t, hold_end_s, side="right"))
    window_t, window_y = t[first:last], y[first:last]
    direction = float(np.sign(target - window_y[0])) or 1.0
    overshoot = max(0.0, float(np.max((window_y - target) * direction)))
    # The first sample from which the angle stays inside ±2° for 100 ms.
    inside = np.abs(window_y - target) <= STABLE_BAND_DEG
    run = int(np.ceil(STABLE_FOR_S / (t[1] - t[0])))
    stable_from = np.flatnonzero(
        np.convolve(inside.astype(np.int64), np.ones(run + 1, dtype=np.int64), "valid") == run + 1
    )
    stabilisation = float(window_t[int(stable_from[0])] - approach_s) if stable_from.size else None
    return overshoot, stabilisation


def shifts_from_script(script: Script) -> list[ShiftTruth]:
    """Every move of a displacement script (lateral pelvis position, m) as a shift."""
    return [ShiftTruth(s.start_s, s.end_s, s.to_value) for s in script.segments if s.kind == "move"]


def contractions_truth(
    contractions: Sequence[Contraction], baseline_n: float, noise_sd_n: float
) -> list[ContractionTruth]:
    """Closed-form truth of each contraction (``noise_sd_n``: the load cell's noise SD)."""
    return [
        ContractionTruth.from_model(i, c, baseline_n, noise_sd_n)
        for i, c in enumerate(contractions)
    ]


def fatigue_index_pct(contractions: Sequence[ContractionTruth]) -> float:
    """(first − last) / first × 100 over per-rep peak force (METRICS.md, no reps skipped)."""
    first, last = contractions[0].peak_force_n, contractions[-1].peak_force_n
    return (first - last) / first * 100.0
