"""The streaming measurement pipeline: IMU and load-cell blocks in, events and results out.

``Pipeline(streams, motion)`` takes the stream descriptions (anything with ``name``, ``kind``
("imu"/"force"), ``rate_hz`` and ``t0_s``, e.g. :class:`spinecoach.drivers.blocks.StreamInfo`)
and the exercise's :class:`MotionSettings` (None: no exercise, the primary axis is the axis of
largest angular excursion). Blocks are fed with ``feed_imu`` / ``feed_force``; each returns the
:class:`CoreEvent` objects its samples decide, ``finish`` returns the :class:`AnalysisResult`.

Per IMU sample: orientation (spinecoach.core.orientation) -> primary angle about the working axis
-> angular velocity (backward difference of the angle, low-passed) -> phases -> reps, holds,
limits. Per force sample: single-sample spike rejection -> contraction detector. Reps and holds
that need force wait until the force stream has reached their end, so the results never depend
on how the samples were cut into blocks or interleaved. Time is the sample clock only.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from spinecoach.core import metrics
from spinecoach.core._lookup import interp_on_grid, latest_on_grid
from spinecoach.core._metrics import bell_fit_profile, mean_of
from spinecoach.core._primary import PrimaryAngleState, primary_step
from spinecoach.core._repfit import abs_vertical_rates, axis_tilt_rms, peak_of
from spinecoach.core.angles import largest_excursion_axis, up_in_sensor
from spinecoach.core.detect import (
    HoldChange,
    HoldDetector,
    PhaseChange,
    PhaseDetector,
    RepSpan,
    RepTracker,
    samples,
)
from spinecoach.core.filters import HampelFilter, HampelSettings, LowPassFilter, LowPassSettings
from spinecoach.core.force import ContractionDetector, ForceSettings
from spinecoach.core.history import SampleHistory
from spinecoach.core.imu_calibration import ImuCalibration, calibrations_of
from spinecoach.core.orientation import OrientationFilter, OrientationSettings
from spinecoach.core.results import (
    AnalysisResult,
    ContractionResult,
    CoreEvent,
    HoldResult,
    LoweringResult,
    MotionSettings,
    RepResult,
    Tempo,
)

FloatArray = npt.NDArray[np.float64]

DEFAULT_FORCE = ForceSettings()
DEFAULT_ORIENTATION = OrientationSettings()
#: Samples of the primary IMU used to choose the working axis when no exercise names it (s).
AXIS_WINDOW_S = 10.0
#: Earth-up in the sensor frame at the zero pose of a named exercise: upright, +x up the spine.
ZERO_POSE_UP_SENSOR = np.array([1.0, 0.0, 0.0])
#: Where the working axis is closer than this to vertical, gravity cannot reference rotation
#: about it; the gyro rate about the axis carries the primary angle there (°).
VERTICAL_AXIS_DEG = 20.0
#: Low-pass of the primary angular velocity: 2nd-order Butterworth at this cut-off (Hz), capped
#: at 0.4 x the IMU rate; its group delay is taken off the phase boundaries.
OMEGA_LOWPASS_HZ = 15.0
#: A hole in the primary IMU at least this long (s) is bridged: the primary angle runs
#: straight from the last sample before it to the first after (the orientation re-levels
#: there), so a lost stretch reads as movement at the mean speed, not as a pause and a jump.
HOLE_BRIDGE_S = 0.1
#: Rate (Hz) the eccentric speed is decimated to (by a whole factor) before SPARC.
SPARC_RATE_HZ = 100.0
#: Window of the force spike (Hampel) filter (s, made odd and at least 3 samples), its
#: threshold (robust SDs) and a floor (N) under which a deviation is noise, not a spike.
HAMPEL_WINDOW_S = 0.01
HAMPEL_K = 3.0
HAMPEL_FLOOR_N = 5.0
#: A contraction whose onset lies within this of a rep's movement onset gives its asynchrony (s).
ASYNCHRONY_WINDOW_S = 1.0
#: Samples kept before anything still referenced, for stabilisation look-backs (s).
HISTORY_MARGIN_S = 2.0
#: How often the histories are trimmed (s of primary samples); they hold at most this much more.
TRIM_EVERY_S = 0.25
#: History channels computed afresh per block (never written to again), which the history may
#: keep without copying.
_FRESH_CHANNELS = frozenset({"angle", "rate", "omega", "quat", "vertical_rate"})


def hampel_settings(rate_hz: float) -> HampelSettings:
    """Spike-rejection window of HAMPEL_WINDOW_S at ``rate_hz`` (odd, 3..255 samples)."""
    n = min(255, max(3, samples(HAMPEL_WINDOW_S, rate_hz)))
    return HampelSettings(n if n % 2 else n + 1, HAMPEL_K, HAMPEL_FLOOR_N)


class StreamLike(Protocol):
    """What the pipeline reads of a stream description (``StreamInfo``); an IMU stream may
    also carry its calibration fields and ``gyro_delay_s``."""

    name: str
    kind: str
    rate_hz: float
    t0_s: float


@dataclass
class _ImuChain:
    name: str
    rate_hz: float
    t0_s: float
    orientation: OrientationFilter
    next_index: int | None = None
    index0: int = 0
    zero_q: FloatArray | None = None
    angle_state: PrimaryAngleState | None = None
    heading_deg: float = 0.0
    primed: bool = False
    holes: list[tuple[int, int]] = field(default_factory=list)  # to bridge (_bridge_holes)


@dataclass
class _ForceChain:
    name: str
    rate_hz: float
    t0_s: float
    hampel: HampelFilter
    detector: ContractionDetector
    next_index: int | None = None
    index0: int = 0
    n_out: int = 0  # despiked samples fed to the detector
    last_input: float = 0.0  # last valid raw sample (held over invalid ones)
    to_skip: int = 0  # leading spike-filter outputs that precede the first sample
    ok_queue: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))
    queue_all_ok: bool = True  # every flag in ok_queue is True
    history: SampleHistory = field(default_factory=lambda: SampleHistory({"force": ()}))


def _cross3(a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
    """Cross product of two 3-vectors (numpy's general cross costs far more per call)."""
    a0, a1, a2 = (float(v) for v in np.asarray(a, dtype=np.float64))
    b0, b1, b2 = (float(v) for v in np.asarray(b, dtype=np.float64))
    return np.array([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0])


def _hole_runs(index: npt.NDArray[np.int64], expected: int, index0: int,
               min_len: int) -> list[tuple[int, int]]:
    """[a, b) sample numbers (counted from ``index0``) of the holes at least ``min_len`` long
    before and between a block's indices, the first expected at ``expected``."""
    missing = np.diff(index, prepend=expected - 1) - 1
    where = np.flatnonzero(missing >= min_len)
    return [(int(index[k] - missing[k]) - index0, int(index[k]) - index0) for k in where]


def _bridge_holes(angle: FloatArray, rate: FloatArray, holes: list[tuple[int, int]], n0: int,
                  prev_angle: float, rate_hz: float) -> list[tuple[int, int]]:
    """Bridge, in place, the holes [a, b) (primary sample numbers; each ends before a sample
    of this block, which starts at sample ``n0``) of a block's angle and rate; returns the
    holes still ahead."""
    ahead = []
    for a, b in holes:
        if b >= n0 + len(angle):
            ahead.append((a, b))
            continue
        i, j = a - n0, b - n0
        before = angle[i - 1] if i > 0 else prev_angle
        step = (angle[j] - before) / (j - i + 1)
        angle[i:j] = before + step * np.arange(1, j - i + 1)
        rate[i:j + 1] = step * rate_hz
    return ahead


def _extreme_in(hist: SampleHistory, a: int, b: int, direction: int) -> int:
    """Sample of the largest angle in ``direction`` among samples [a, b) of ``hist`` (``a``
    if none are kept)."""
    seg = hist.get("angle", a, b)
    return a + int(np.argmax(seg * direction)) if len(seg) else a


def _hold_invalid(x: FloatArray, ok: npt.NDArray[np.bool_], last: float) -> FloatArray:
    """``x`` with every invalid sample replaced by the last valid one before it (``last`` for
    leading ones)."""
    if ok.all():
        return x
    pos = np.where(ok, np.arange(len(x)), -1)
    np.maximum.accumulate(pos, out=pos)
    return np.where(pos >= 0, x[np.maximum(pos, 0)], last)


def _consecutive(index: npt.NDArray[np.int64], expected: int | None) -> bool:
    """True when a block's indices run on from ``expected`` (any start if None) without a hole
    (the usual block; then nothing needs expanding)."""
    first = int(index[0])
    return (expected is None or first == expected) and int(index[-1]) - first + 1 == index.size


def _fill_gaps(
    index: npt.NDArray[np.int64], expected: int | None, *arrays: FloatArray
) -> tuple[int, list[FloatArray], npt.NDArray[np.bool_]]:
    """Expand a block with holes (missing indices) to consecutive samples marked invalid.

    Returns the first index, the expanded arrays and the validity mask of inserted samples.
    """
    first = int(index[0]) if expected is None else expected
    if int(index[0]) < first:
        raise ValueError(
            f"sample index {int(index[0])} goes backwards (expected {first} or later); "
            "blocks of a stream must be fed in order"
        )
    n_total = int(index[-1]) - first + 1
    if n_total == len(index):
        return first, list(arrays), np.ones(len(index), dtype=bool)
    pos = (index - first).astype(np.int64)
    present = np.zeros(n_total, dtype=bool)
    present[pos] = True
    out = []
    for a in arrays:
        full = np.zeros((n_total, *a.shape[1:]), dtype=np.float64)
        full[pos] = a
        out.append(full)
    return first, out, present


#: The smallest SD a calibration's gyro bias is seeded with (°/s): a capture's standard error
#: can round to 0, and a Kalman variance of 0 would never learn the bias's later drift.
MIN_SEED_BIAS_SD_DPS = 0.001


def _orientation_filter(rate_hz: float, settings: OrientationSettings,
                        calibration: ImuCalibration | None,
                        gyro_delay_s: float | None = None) -> OrientationFilter:
    """An IMU's orientation filter. ``gyro_delay_s``, the chip's gyro group delay when its
    stream knows it, replaces the settings' (which is a typical chip's, for streams that do
    not know theirs): a prediction over the wrong delay costs rate × error in the angle.
    When the IMU's calibration knows how far its gyro bias may be off
    (a box calibration, the sensor at true rest), the filter starts with that bias as known:
    the calibration already subtracts it, so what is left is 0 ± that SD. That SD is what
    opens the movement rejection from the start (``movement_reject_bias_sd_dps``). A bias of
    unknown quality (a zero pose's, with the athlete's sway in it) is never seeded."""
    if gyro_delay_s is not None and gyro_delay_s != settings.gyro_delay_s:
        settings = replace(settings, gyro_delay_s=float(gyro_delay_s))
    orientation = OrientationFilter(rate_hz, settings)
    if calibration is not None and calibration.gyro_bias_sd_dps is not None:
        orientation.seed_bias_dps(np.zeros(3),
                                  max(calibration.gyro_bias_sd_dps, MIN_SEED_BIAS_SD_DPS))
    return orientation


class Pipeline:
    """Streaming pipeline over one session's streams (see the module docstring)."""

    def __init__(
        self,
        streams: Sequence[StreamLike],
        motion: MotionSettings | None = None,
        force_settings: ForceSettings = DEFAULT_FORCE,
        orientation_settings: OrientationSettings = DEFAULT_ORIENTATION,
        primary_imu: str | None = None,
        primary_axis: npt.ArrayLike | None = None,
        on_orientation: Callable[[str, FloatArray, FloatArray], None] | None = None,
        imu_calibration: Mapping[str, ImuCalibration] | None = None,
    ) -> None:
        """``imu_calibration`` (by IMU stream name) is applied to every IMU sample before
        anything else (bias and offset subtracted, rotated into the body frame); streams it
        does not name use the calibration their stream description carries, if any.
        ``primary_axis`` (sensor frame) overrides the choice of the working axis when the
        motion settings name none (e.g. chosen from a whole recording); without either, the
        axis of largest excursion over the first AXIS_WINDOW_S of the primary IMU is used.
        ``on_orientation(name, t_s, quat_wxyz)`` receives every IMU block's orientation.
        Without motion settings (no exercise) moving phases are "moving" and the swing away
        from the start position counts as the eccentric one."""
        self.motion = motion if motion is not None else MotionSettings()
        self._exercise_known = motion is not None
        self.force_settings = force_settings
        self._on_orientation = on_orientation
        #: Set to receive every primary-angle and (first) force sample as processed:
        #: ``on_samples("angle_deg" | "force_n", t_s, values)`` (e.g. a band-profile capture).
        self.on_samples: Callable[[str, FloatArray, FloatArray], None] | None = None
        calibration = {**calibrations_of(streams), **(imu_calibration or {})}
        self._imu_calibration = {k: c for k, c in calibration.items() if not c.is_identity}
        self._imu: dict[str, _ImuChain] = {}
        self._force: dict[str, _ForceChain] = {}
        for s in streams:
            if s.kind == "imu":
                self._imu[s.name] = _ImuChain(
                    s.name, float(s.rate_hz), float(s.t0_s),
                    _orientation_filter(s.rate_hz, orientation_settings,
                                        self._imu_calibration.get(s.name),
                                        getattr(s, "gyro_delay_s", None)),
                )
            elif s.kind == "force":
                self._force[s.name] = _ForceChain(
                    s.name, float(s.rate_hz), float(s.t0_s),
                    HampelFilter(hampel_settings(s.rate_hz)),
                    ContractionDetector(s.rate_hz, force_settings, s.t0_s),
                )
                self._force[s.name].to_skip = self._force[s.name].hampel.delay_samples
            else:
                raise ValueError(f"stream {s.name!r} has unknown kind {s.kind!r}")
        if primary_imu is None:
            primary_imu = "trunk" if "trunk" in self._imu else next(iter(self._imu), None)
        elif primary_imu not in self._imu:
            raise ValueError(f"primary IMU {primary_imu!r} is not among the streams")
        self.primary = primary_imu
        self.streams = {s.name: float(s.rate_hz) for s in streams}
        self._force_name = next(iter(self._force), None)
        axis = self.motion.primary_axis if self.motion.primary_axis is not None else primary_axis
        self._axis: FloatArray | None = None if axis is None else self._unit(axis)
        self._pending_axis: list[tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]] = []
        self._pending_axis_n = 0
        self._primary_ready = False
        self._reps: list[RepResult] = []
        self._rep_spans: list[RepSpan] = []
        self._pending_reps: list[RepSpan] = []
        self._holds: list[HoldResult] = []
        self._contractions: list[tuple[float, ContractionResult]] = []
        self._onsets: list[int] = []
        self._onset_times: list[float] = []
        self._phase_name = "still"
        self._eccentric_from: int | None = None  # first sample of the eccentric phase running
        self._live: dict[str, Any] = {"t_s": 0.0, "angle_deg": None, "omega_dps": None,
                                      "force_n": None, "phase": "still", "lumbar_deg": None,
                                      "holding": False}
        self._limit_state = 0
        if self.primary is not None:
            self._setup_primary(self._imu[self.primary].rate_hz)

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _unit(v: npt.ArrayLike) -> FloatArray:
        a = np.asarray(v, dtype=np.float64)
        n = float(np.linalg.norm(a))
        if a.shape != (3,) or not n > 0:
            raise ValueError(f"primary_axis must be a non-zero 3-vector, got {v!r}")
        return a / n

    def _setup_primary(self, rate: float) -> None:
        m = self.motion
        self._rate = rate
        cutoff = min(OMEGA_LOWPASS_HZ, 0.4 * rate)
        self._omega_lp = LowPassFilter(rate, LowPassSettings(cutoff, 2))
        # DC group delay of a 2nd-order Butterworth: sqrt(2) / (2 pi fc)
        self._delay_n = round(np.sqrt(2.0) / (2 * np.pi * cutoff) * rate)
        self._phases = PhaseDetector(rate, m, filter_delay_samples=self._delay_n)
        self._hist = SampleHistory(
            {"angle": (), "rate": (), "omega": (), "quat": (4,), "vertical_rate": ()})
        self._last_rep_end_s: float | None = None
        # The tracker reads the history, not the pipeline: a reference back to the pipeline
        # would make it a reference cycle, freed (with every buffer it holds) only by the
        # cyclic garbage collector, long after the last reference to it went.
        self._tracker = RepTracker(
            m.min_rom_deg,
            partial(self._hist.at, "angle"),
            partial(_extreme_in, self._hist),
            m.min_return_frac,
        )
        self._holds_det = HoldDetector.for_target(rate, m) if m.hold_target_deg is not None else None
        self._hold_next = 0  # next primary sample to feed to the hold detector
        self._hold_start_sample: int | None = None
        self._n = 0  # primary samples processed
        self._next_trim_n = 0  # primary sample count at which _trim next drops history

    # ------------------------------------------------------------------ helpers
    def _t(self, sample: int) -> float:
        chain = self._imu[self.primary]  # type: ignore[index]
        return chain.t0_s + (chain.index0 + sample) / chain.rate_hz

    def _phase_label(self, phase: int) -> str:
        if phase == 0:
            return "still"
        if not self._exercise_known:
            return "moving"
        return "eccentric" if phase * self.motion.eccentric_sign > 0 else "concentric"

    @property
    def live(self) -> dict[str, Any]:
        """Latest values for the coach: t_s, angle_deg, omega_dps, force_n, phase, lumbar_deg,
        holding (a copy)."""
        return dict(self._live)

    @property
    def primary_axis(self) -> FloatArray | None:
        """The working axis in the primary IMU's sensor frame (None until chosen)."""
        return None if self._axis is None else self._axis.copy()

    # ------------------------------------------------------------------ IMU
    def feed_imu(
        self,
        name: str,
        index: npt.ArrayLike,
        gyro_dps: npt.ArrayLike,
        accel_g: npt.ArrayLike,
        valid: npt.ArrayLike | None = None,
    ) -> list[CoreEvent]:
        """Consume a block of one IMU stream; return the events it decides."""
        if name not in self._imu:
            raise ValueError(f"no IMU stream named {name!r} in this pipeline")
        idx = np.asarray(index, dtype=np.int64)
        if idx.size == 0:
            return []
        chain = self._imu[name]
        if name == self.primary and not _consecutive(idx, chain.next_index):
            first = int(idx[0]) if chain.next_index is None else chain.next_index
            chain.holes += _hole_runs(idx, first, first if chain.next_index is None
                                      else chain.index0, samples(HOLE_BRIDGE_S, chain.rate_hz))
        gyro = np.asarray(gyro_dps, dtype=np.float64).reshape(-1, 3)
        accel = np.asarray(accel_g, dtype=np.float64).reshape(-1, 3)
        if name in self._imu_calibration:
            gyro, accel = self._imu_calibration[name].apply(gyro, accel)
        if chain.next_index is None:
            chain.index0 = int(idx[0])
        ok: npt.NDArray[np.bool_] | None = None  # None: every sample valid
        if valid is None and _consecutive(idx, chain.next_index):
            chain.next_index = int(idx[-1]) + 1
        else:
            ok = np.ones(idx.size, bool) if valid is None else np.asarray(valid, dtype=bool)
            first, (gyro, accel, okf), present = _fill_gaps(
                idx, chain.next_index, gyro, accel, ok.astype(np.float64)
            )
            ok = present & (okf > 0.5)
            chain.next_index = first + len(ok)
        if name == self.primary and self._axis is None:
            return self._buffer_for_axis(chain, gyro, accel, ok)
        return self._process_imu(chain, gyro, accel, ok)

    def _buffer_for_axis(self, chain: _ImuChain, gyro: FloatArray, accel: FloatArray,
                         ok: npt.NDArray[np.bool_] | None) -> list[CoreEvent]:
        if ok is None:
            ok = np.ones(len(gyro), bool)
        self._pending_axis.append((gyro, accel, ok))
        self._pending_axis_n += len(ok)
        if self._pending_axis_n < samples(AXIS_WINDOW_S, chain.rate_hz):
            return []
        return self._decide_axis(samples(AXIS_WINDOW_S, chain.rate_hz))

    def _decide_axis(self, window_n: int) -> list[CoreEvent]:
        chain = self._imu[self.primary]  # type: ignore[index]
        gyro = np.concatenate([p[0] for p in self._pending_axis])
        accel = np.concatenate([p[1] for p in self._pending_axis])
        ok = np.concatenate([p[2] for p in self._pending_axis])
        self._pending_axis = []
        try:
            self._axis = largest_excursion_axis(gyro[:window_n], ok[:window_n])
        except ValueError:
            self._axis = np.array([0.0, 1.0, 0.0])
        return self._process_imu(chain, gyro, accel, ok)

    def _process_imu(self, chain: _ImuChain, gyro: FloatArray, accel: FloatArray,
                     ok: npt.NDArray[np.bool_] | None) -> list[CoreEvent]:
        """Orientation, then the primary or the pelvis chain; ``ok`` None: all samples valid."""
        all_ok = ok is None or bool(ok.all())
        if not all_ok:
            assert ok is not None
            # Non-finite values in invalid samples must not reach the filter.
            gyro = np.where(ok[:, None], gyro, 0.0)
            accel = np.where(ok[:, None], accel, 0.0)
        if not chain.primed and (all_ok or ok.any()):  # type: ignore[union-attr]
            self._prime(chain, accel[0 if ok is None else int(np.argmax(ok))])
        q = chain.orientation.update(gyro, accel, None if all_ok else ok)
        if chain.zero_q is None:
            chain.zero_q = q[0].copy()
        if self._on_orientation is not None:
            n0 = chain.next_index - len(q) - chain.index0  # type: ignore[operator]
            t = chain.t0_s + (chain.index0 + n0 + np.arange(len(q))) / chain.rate_hz
            self._on_orientation(chain.name, t, q)
        if chain.name != self.primary:
            if chain.name == "pelvis" and self._axis is not None:
                ang, _ = self._angles(chain, q, gyro)
                if self._live["angle_deg"] is not None:
                    self._live["lumbar_deg"] = float(self._live["angle_deg"] - ang[-1])
            return []
        return self._process_primary(chain, q, gyro)

    def _prime(self, chain: _ImuChain, accel_g: FloatArray) -> None:
        """Start the filter at the inclination of the first valid sample.

        The filter starts level and corrects its inclination at its correction rate; held
        still at the first sample's attitude for one correction step first, it outputs the
        right attitude from the first real sample on, so the zero pose (the first sample) is
        the athlete's and not the filter's start-up transient.
        """
        n = int(np.ceil(chain.rate_hz / chain.orientation.settings.correction_rate_hz)) + 1
        chain.orientation.update(np.zeros((n, 3)), np.tile(accel_g, (n, 1)))
        chain.primed = True

    def _angles(self, chain: _ImuChain, q: FloatArray, gyro: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Primary angle (°) and its rate (°/s) of a block, continuous across blocks.

        Gravity-referenced (heading-free); where the working axis is within VERTICAL_AXIS_DEG
        of vertical the gyro rate about the axis carries the angle (see ``_primary.pyx``).
        """
        assert self._axis is not None and chain.zero_q is not None
        if self.motion.primary_angle == "heading":
            return self._heading(chain, q, gyro)
        if chain.angle_state is None:
            axis = self._axis
            # A named exercise measures from the trunk convention's upright pose (sensor +x up
            # the spine, vertical), so targets are absolute; without one, from the first sample.
            up0 = ZERO_POSE_UP_SENSOR if self._exercise_known else up_in_sensor(chain.zero_q)[0]
            ref = up0 - axis * float(up0 @ axis)
            if np.linalg.norm(ref) < 1e-6:  # axis vertical at the zero pose: any reference
                ref = _cross3(axis, [1.0, 0.0, 0.0] if abs(axis[0]) < 0.9 else [0.0, 1.0, 0.0])
            ref /= np.linalg.norm(ref)
            chain.angle_state = PrimaryAngleState(
                ref, _cross3(axis, ref), axis, float(np.sin(np.radians(VERTICAL_AXIS_DEG))))
        n = len(q)
        angle = np.empty(n)
        rate = np.empty(n)
        primary_step(chain.angle_state, np.ascontiguousarray(q), np.ascontiguousarray(gyro),
                     chain.rate_hz, angle, rate)
        return angle, rate

    def _heading(self, chain: _ImuChain, q: FloatArray, gyro: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Rotation about the earth vertical (°) and its rate (°/s): the gyro projected on the
        sensor-frame vertical, accumulated sample by sample from the last angle."""
        up = up_in_sensor(q)
        rate = up[:, 0] * gyro[:, 0] + up[:, 1] * gyro[:, 1] + up[:, 2] * gyro[:, 2]
        steps = np.concatenate(([chain.heading_deg], rate / chain.rate_hz))
        angle = np.add.accumulate(steps)[1:]
        chain.heading_deg = float(angle[-1])
        return angle, rate

    def _process_primary(self, chain: _ImuChain, q: FloatArray, gyro: FloatArray) -> list[CoreEvent]:
        n = len(q)
        angle, raw_omega = self._angles(chain, q, gyro)
        if chain.holes:
            prev = self._hist.at("angle", self._n - 1) if self._n else float(angle[0])
            chain.holes = _bridge_holes(angle, raw_omega, chain.holes, self._n, prev, chain.rate_hz)
        omega = self._omega_lp.update(raw_omega)
        # |rate about the vertical| is all the reps need of the gyro: one number per sample
        # kept instead of three (the values metrics.rotation_speed_dps takes the peak of)
        vertical = np.empty(n)
        abs_vertical_rates(np.ascontiguousarray(q), np.ascontiguousarray(gyro), vertical)
        self._hist.append(_FRESH_CHANNELS, angle=angle, rate=raw_omega, omega=omega, quat=q,
                          vertical_rate=vertical)
        start = self._n
        self._n += n
        if self.on_samples is not None:
            self.on_samples("angle_deg", self._t(start) + np.arange(n) / self._rate, angle)
        events: list[CoreEvent] = []
        for change in self._phases.update(omega):
            events += self._on_phase(change)
        events += self._check_limits(angle, start)
        events += self._advance_holds()
        events += self._flush_reps()
        self._live.update(
            t_s=self._t(self._n - 1), angle_deg=float(angle[-1]), omega_dps=float(omega[-1]),
            phase=self._phase_name,
        )
        self._trim()
        return events

    def _on_phase(self, change: PhaseChange) -> list[CoreEvent]:
        b = change.boundary
        events: list[CoreEvent] = []
        was_still = self._phase_name == "still"
        self._phase_name = self._phase_label(change.phase)
        events.append(CoreEvent("phase", self._t(b), self._phase_name))
        events += self._eccentric_ended(change)
        if was_still and change.phase != 0:
            self._onsets.append(b)
            self._onset_times.append(self._t(b))
            events.append(CoreEvent("movement_onset", self._t(b)))
        for span in self._tracker.update(change):
            self._pending_reps.append(span)
        return events

    def _eccentric_ended(self, change: PhaseChange) -> list[CoreEvent]:
        """An ``eccentric_end`` event when ``change`` ends an eccentric phase: the lowering's
        start and end from the bell fit of its speed up to the deciding sample (the phase
        boundaries see a slow bell's soft ends late and early), so the tempo rule can judge it
        at once, before the rep is decided."""
        a, b = self._eccentric_from, change.boundary
        self._eccentric_from = b if self._phase_name == "eccentric" else None
        if a is None or self._phase_name == "eccentric":
            return []
        direction = self.motion.eccentric_sign
        t_a, t_b = self._t(a), self._t(b)
        start_s, end_s = self._swing_bounds(a, b, direction, change.decided)
        rom = (self._hist.at("angle", b - 1) - self._hist.at("angle", a)) * direction
        return [CoreEvent("eccentric_end", self._t(change.decided), LoweringResult(
            start_s, end_s, end_s - start_s, float(rom), (start_s, end_s) != (t_a, t_b)))]

    def _check_limits(self, angle: FloatArray, start: int) -> list[CoreEvent]:
        m = self.motion
        events: list[CoreEvent] = []
        if m.flexion_limit_deg is None and m.extension_limit_deg is None:
            return events
        hi = np.inf if m.flexion_limit_deg is None else m.flexion_limit_deg
        lo = -np.inf if m.extension_limit_deg is None else -m.extension_limit_deg
        state = np.where(angle > hi, 1, np.where(angle < lo, -1, 0))
        prev = np.concatenate(([self._limit_state], state[:-1]))
        for i in np.flatnonzero((state != 0) & (state != prev)):
            limit = hi if state[i] > 0 else lo
            events.append(CoreEvent("limit", self._t(start + int(i)),
                                    {"angle_deg": float(angle[i]), "limit_deg": float(limit)}))
        self._limit_state = int(state[-1])
        return events

    # ------------------------------------------------------------------ force
    def feed_force(
        self, name: str, index: npt.ArrayLike, force_n: npt.ArrayLike, valid: npt.ArrayLike | None = None
    ) -> list[CoreEvent]:
        """Consume a block of one load-cell stream; return the events it decides."""
        if name not in self._force:
            raise ValueError(f"no force stream named {name!r} in this pipeline")
        idx = np.asarray(index, dtype=np.int64)
        if idx.size == 0:
            return []
        chain = self._force[name]
        f = np.asarray(force_n, dtype=np.float64).reshape(-1)
        if chain.next_index is None:
            chain.index0 = int(idx[0])
        if valid is None and _consecutive(idx, chain.next_index) and np.isfinite(f).all():
            # the usual block: consecutive, all valid — nothing to expand, mask or hold
            chain.next_index = int(idx[-1]) + 1
            chain.last_input = float(f[-1])
            events = self._despike_and_detect(chain, f, None)
        else:
            ok = np.ones(idx.size, bool) if valid is None else np.asarray(valid, dtype=bool)
            first, (f, okf), present = _fill_gaps(idx, chain.next_index, f, ok.astype(np.float64))
            ok = present & (okf > 0.5) & np.isfinite(f)
            chain.next_index = first + len(ok)
            held = _hold_invalid(f, ok, chain.last_input)
            if ok.any():
                chain.last_input = float(f[np.flatnonzero(ok)[-1]])
            events = self._despike_and_detect(chain, held, ok)
        if name == self._force_name and self.primary is not None and self._axis is not None:
            events += self._advance_holds()
            events += self._flush_reps()
        return events

    def _despike_and_detect(self, chain: _ForceChain, held: FloatArray,
                            ok: npt.NDArray[np.bool_] | None) -> list[CoreEvent]:
        """Hampel filter (fixed delay: output j is input j - delay), then the detector.

        ``ok`` None: every input valid (and finite). The validity flags wait in ``ok_queue``
        for the filter's delay; while they are all valid the queue is only a count."""
        y, _ = chain.hampel.update_finite(held)
        skip = min(chain.to_skip, len(y))  # outputs before the first input: no sample
        chain.to_skip -= skip
        y = y[skip:]
        ok_out: npt.NDArray[np.bool_] | None = None
        if ok is None and chain.queue_all_ok:
            if skip:
                chain.ok_queue = np.ones(len(chain.ok_queue) + skip, bool)
        else:
            queue = np.concatenate([chain.ok_queue, np.ones(len(held), bool) if ok is None else ok])
            ok_out, chain.ok_queue = queue[: len(y)], queue[len(y):]
            chain.queue_all_ok = bool(chain.ok_queue.all())
        return self._process_force(chain, y, ok_out)

    def _process_force(self, chain: _ForceChain, f: FloatArray,
                       ok: npt.NDArray[np.bool_] | None) -> list[CoreEvent]:
        if len(f) == 0:
            return []
        if self.primary is not None:  # force vs angle and holds need the recent force
            hist: SampleHistory = chain.history
            hist.append(force=f)
        if self.on_samples is not None and chain.name == self._force_name:
            t0_s = chain.t0_s + (chain.index0 + chain.n_out) / chain.rate_hz
            self.on_samples("force_n", t0_s + np.arange(len(f)) / chain.rate_hz, f)
        chain.n_out += len(f)
        self._live["force_n"] = float(f[-1])
        events = chain.detector.update(f, ok)
        for e in events:
            if e.kind == "contraction":
                self._contractions.append((e.t_s, e.data))
        return events

    def _force_t_covered(self) -> float:
        """Sample time up to which the (first) force stream has been processed."""
        if self._force_name is None:
            return np.inf
        c = self._force[self._force_name]
        if c.n_out == 0:
            return -np.inf
        return c.t0_s + (c.index0 + c.n_out - 1) / c.rate_hz

    def _force_on_primary_grid(self, a: int, n: int) -> FloatArray:
        """Force at primary samples a .. a + n - 1 (times ``self._t(a) + i / rate``): the latest
        force sample at or before each (NaN before any)."""
        if self._force_name is None:
            return np.full(n, np.nan)
        c = self._force[self._force_name]
        hist: SampleHistory = c.history
        if hist.stop == 0:
            return np.full(n, np.nan)
        out = np.empty(n)
        latest_on_grid(self._t(a), self._rate, c.t0_s, c.rate_hz, c.index0,
                       hist.get("force", hist.start, hist.stop), hist.start, out)
        return out

    def _force_between(self, t_a: float, t_b: float) -> tuple[FloatArray, FloatArray]:
        """Force samples (times, values) with t_a <= t < t_b."""
        if self._force_name is None:
            return np.zeros(0), np.zeros(0)
        c = self._force[self._force_name]
        hist: SampleHistory = c.history
        a = int(np.ceil((t_a - c.t0_s) * c.rate_hz - 1e-9)) - c.index0
        b = int(np.ceil((t_b - c.t0_s) * c.rate_hz - 1e-9)) - c.index0
        a = max(a, hist.start)
        vals = hist.get("force", a, b)
        t = c.t0_s + (c.index0 + a + np.arange(len(vals))) / c.rate_hz
        return t, vals

    # ------------------------------------------------------------------ holds
    def _advance_holds(self, final: bool = False) -> list[CoreEvent]:
        if self._holds_det is None or self.primary is None:
            if self.primary is not None:
                self._hold_next = self._n  # no holds to measure: no history kept for them
            return []
        t_cov = np.inf if final else self._force_t_covered()
        stop = self._n
        if t_cov == -np.inf:
            return []
        if np.isfinite(t_cov):
            chain = self._imu[self.primary]
            last_ok = int(np.floor((t_cov - chain.t0_s) * chain.rate_hz + 1e-9)) - chain.index0
            stop = min(stop, last_ok + 1)
        if stop <= self._hold_next:
            return []
        a = self._hold_next
        angle = self._hist.get("angle", a, stop)
        force = self._force_on_primary_grid(a, len(angle))
        self._hold_next = stop
        events: list[CoreEvent] = []
        for ch in self._holds_det.update(angle, force):
            events += self._on_hold(ch)
        self._live["holding"] = self._holds_det.holding
        return events

    def _on_hold(self, ch: HoldChange) -> list[CoreEvent]:
        if ch.kind == "hold_start":
            self._hold_start_sample = ch.start
            return [CoreEvent("hold_start", self._t(ch.decided), {"start_s": self._t(ch.start)})]
        self._hold_start_sample = None
        result = self._measure_hold(ch)
        self._holds.append(result)
        return [CoreEvent("hold_end", self._t(ch.decided), result)]

    def _measure_hold(self, ch: HoldChange) -> HoldResult:
        m = self.motion
        angle = self._hist.get("angle", ch.start, ch.end)
        mean_angle = mean_of(angle) if len(angle) else None
        t0, t1 = self._t(ch.start), self._t(ch.end)
        _, f = self._force_between(t0, t1)
        onset = max([o for o in self._onsets if o <= ch.start], default=None)
        stab = over = None
        if onset is not None and mean_angle is not None:
            stab = metrics.stabilisation_time_s(
                self._hist.get("angle", onset, ch.end), 0, mean_angle, self._rate)
            approach = self._hist.get("angle", onset, ch.end)
            direction = 1 if (m.hold_target_deg or 0.0) >= approach[0] else -1
            over = metrics.overshoot_deg(approach, float(m.hold_target_deg or 0.0), direction)
        return HoldResult(
            start_s=t0,
            end_s=t1,
            duration_s=(ch.end - ch.start) / self._rate,
            mean_angle_deg=mean_angle,
            mean_force_n=mean_of(f) if len(f) else None,
            end_reason=ch.reason,
            stabilisation_s=stab,
            overshoot_deg=over,
            sway_rms_deg=self._sway(ch.start, ch.end),
        )

    # ------------------------------------------------------------------ reps
    def _flush_reps(self, final: bool = False) -> list[CoreEvent]:
        events: list[CoreEvent] = []
        t_cov = np.inf if final else self._force_t_covered()
        while self._pending_reps and self._t(self._pending_reps[0].end) <= t_cov:
            span = self._pending_reps.pop(0)
            rep = self._measure_rep(span)
            self._rep_spans.append(span)
            self._reps.append(rep)
            events.append(CoreEvent("rep", self._t(span.decided), rep))
        return events

    def _speeds(self, a: int, b: int) -> tuple[float, float, FloatArray]:
        w = np.abs(self._hist.get("omega", a, b))
        if len(w) == 0:
            return 0.0, 0.0, w
        return float(w.max()), mean_of(w), w

    def _sway(self, a: int, b: int) -> float | None:
        """RMS about its mean of the off-axis (frontal-plane) angle over samples [a, b): the tilt
        of the working axis itself out of the horizontal (for a hinge about the left-right axis,
        the lateral lean), asin(up · axis); heading-free at any flexion."""
        q = self._hist.get("quat", a, b)
        if len(q) < 2 or self._axis is None:
            return None
        ax = self._axis
        return float(axis_tilt_rms(q, float(ax[0]), float(ax[1]), float(ax[2])))

    def _swing_bounds(self, a: int, b: int, direction: int, decided: int) -> tuple[float, float]:
        """Start and end (s) of the swing the detector saw as samples [a, b), refined by a
        bell-shaped fit of its speed (metrics.fit_movement_bounds) when one fits.

        The fit window depends only on the swing and on the samples up to the one that decided
        the rep (and history kept by ``_trim``), so it is the same for any split into blocks."""
        t_a, t_b = self._t(a), self._t(b)
        length = b - a
        margin = samples(HISTORY_MARGIN_S, self._rate) - 1
        lo = max(a - min(length // 2, margin), 0)
        hi = min(b + length // 2, decided + 1)
        q = max(1, round(self._rate / metrics.BELL_FIT_RATE_HZ))
        n = (hi - lo) // q * q
        if n < 8 * q:
            return t_a, t_b
        # the clipped speed averaged over q samples at the runs' mid times, and its sum: one
        # C pass (_metrics.bell_fit_profile, the same bits as the numpy chain it replaced)
        t, speed = np.empty(n // q), np.empty(n // q)
        total = bell_fit_profile(self._hist.get("rate", lo, lo + n), float(direction), q,
                                 self._t(lo), self._rate, t, speed)
        fit = metrics.fit_movement_bounds(t, speed, total * q / self._rate, t_a, t_b)
        return (t_a, t_b) if fit is None else (fit[0], fit[1])

    def _measure_rep(self, s: RepSpan) -> RepResult:
        m = self.motion
        rate = self._rate
        away_ecc = (not self._exercise_known) or s.away_dir * m.eccentric_sign > 0
        if s.wind_up_end >= 0:
            # A throw: the wind-up (lengthening, whichever side) and the throw through the
            # start position are fitted each in its own direction.
            t_start, t_wind_up_end = self._swing_bounds(s.start, s.wind_up_end, -s.away_dir,
                                                        s.decided)
            t_through, t_away_end = self._swing_bounds(s.through_start, s.away_end, s.away_dir,
                                                       s.decided)
            if t_wind_up_end > t_through:
                t_wind_up_end = t_through = 0.5 * (t_wind_up_end + t_through)
        else:
            t_start, t_away_end = self._swing_bounds(s.start, s.away_end, s.away_dir, s.decided)
        t_back_start, t_end = self._swing_bounds(s.back_start, s.end, -s.away_dir, s.decided)
        if t_away_end > t_back_start:  # a turn without a pause: the bells meet
            t_away_end = t_back_start = 0.5 * (t_away_end + t_back_start)
        away_s = t_away_end - t_start
        far_s = t_back_start - t_away_end
        back_s = t_end - t_back_start
        rest_s = 0.0 if self._last_rep_end_s is None else max(0.0, t_start - self._last_rep_end_s)
        self._last_rep_end_s = t_end
        if s.wind_up_end >= 0:
            # E-P-C-P of a throw: wind-up, pause, throw, and the rest before the rep (the
            # return from the far side is the rep's, but no tempo phase)
            away_ecc = True
            tempo = Tempo(t_wind_up_end - t_start, t_through - t_wind_up_end,
                          t_away_end - t_through, rest_s)
            ecc, con = (s.start, s.wind_up_end), (s.through_start, s.away_end)
        elif away_ecc:
            tempo = Tempo(away_s, far_s, back_s, rest_s)
            ecc, con = (s.start, s.away_end), (s.back_start, s.end)
        else:
            tempo = Tempo(back_s, rest_s, away_s, far_s)
            ecc, con = (s.back_start, s.end), (s.start, s.away_end)
        angle = self._hist.get("angle", s.start, s.end)
        rom = float(angle.max() - angle.min()) if len(angle) else 0.0
        pe, me, we = self._speeds(*ecc)
        pc, mc, _ = self._speeds(*con)
        sparc = None
        if len(we) >= 4 and me > 0:  # me: the mean of we
            # The speed is low-passed at OMEGA_LOWPASS_HZ and SPARC looks at <= 10 Hz, so a
            # ~100 Hz copy gives the same spectrum below 10 Hz at a fraction of the FFT cost.
            q = max(1, int(rate // SPARC_RATE_HZ))
            sparc = metrics.sparc(we[::q], rate / q)
        far = self._hist.get("angle", s.away_end, s.back_start)
        settled = mean_of(far) if len(far) >= samples(metrics.STABILISATION_KEEP_S, rate) else None
        if m.hold_target_deg is not None:
            over: float | None = metrics.overshoot_deg(angle, m.hold_target_deg, s.away_dir)
        elif settled is not None:
            over = metrics.overshoot_deg(self._hist.get("angle", s.start, s.back_start), settled, s.away_dir)
        else:
            over = None
        stab = None
        if settled is not None:
            stab = metrics.stabilisation_time_s(
                self._hist.get("angle", s.start, s.back_start), 0, settled, rate)
        vertical = self._hist.get("vertical_rate", s.start, s.end)
        rot = float(peak_of(vertical)) if len(vertical) else None  # = rotation_speed_dps
        conc_speeds = [r.mean_concentric_speed_dps for r in self._reps] + [mc]
        loss = metrics.velocity_loss_pct(conc_speeds)[-1]
        fields: dict[str, Any] = {}
        if self._force_name is not None:
            fields = self._rep_force(s, ecc, con)
        return RepResult(
            start_s=t_start,
            end_s=t_end,
            rom_deg=rom,
            tempo=tempo,
            peak_eccentric_speed_dps=pe,
            mean_eccentric_speed_dps=me,
            peak_concentric_speed_dps=pc,
            mean_concentric_speed_dps=mc,
            eccentric_sparc=sparc,
            overshoot_deg=over,
            eccentric_first=bool(away_ecc),
            stabilisation_s=stab,
            sway_rms_deg=self._sway(s.start, s.end),
            rotation_speed_dps=rot,
            velocity_loss_pct=loss,
            **fields,
        )

    def _rep_force(self, s: RepSpan, ecc: tuple[int, int], con: tuple[int, int]) -> dict[str, Any]:
        t, f = self._force_between(self._t(s.start), self._t(s.end))
        if len(f) == 0:
            return {}
        # np.interp(t, self._t(s.start) + np.arange(n) / rate, angle), without the time array
        # or the binary searches (_lookup.interp_on_grid: the same bits)
        angle = self._hist.get("angle", s.start, s.end)
        ang = np.empty(len(t))
        interp_on_grid(t, self._t(s.start), self._rate, angle, ang)
        curves = {}
        for label, (a, b) in (("concentric", con), ("eccentric", ecc)):
            # t is ascending, so t_a <= t < t_b is a slice
            i, j = np.searchsorted(t, (self._t(a), self._t(b))).tolist()
            curves[label] = metrics.force_angle_curve(ang[i:j], f[i:j])
        i_pk = int(f.argmax())
        onset_t = self._t(s.start)
        near = [c.onset_s - onset_t for _, c in self._contractions
                if abs(c.onset_s - onset_t) <= ASYNCHRONY_WINDOW_S]
        return {
            "peak_force_n": float(f[i_pk]),
            "mean_force_n": mean_of(f),
            "angle_at_peak_force_deg": float(ang[i_pk]),
            "band_stiffness_n_per_deg": metrics.band_stiffness_n_per_deg(curves["concentric"]),
            "force_angle": {"bin_deg": metrics.FORCE_ANGLE_BIN_DEG,
                            "concentric": metrics.curve_to_json(curves["concentric"]),
                            "eccentric": metrics.curve_to_json(curves["eccentric"])},
            "onset_asynchrony_s": min(near, key=abs) if near else None,
        }

    # ------------------------------------------------------------------ housekeeping
    def _trim(self) -> None:
        # Trimming only ever drops samples nothing refers to, so doing it every TRIM_EVERY_S
        # rather than every (small) block changes no result, only the per-block cost.
        if self._n < self._next_trim_n:
            return
        self._next_trim_n = self._n + samples(TRIM_EVERY_S, self._rate)
        keep = [self._n - samples(HISTORY_MARGIN_S, self._rate)]
        old = self._tracker.oldest_needed
        if old is not None:
            keep.append(old)
        keep.append(self._hold_next)
        if self._hold_start_sample is not None:
            keep.append(self._hold_start_sample)
        keep += [s.start for s in self._pending_reps]
        if self._onsets:
            keep.append(self._onsets[-1])
        keep_from = min(keep) - samples(HISTORY_MARGIN_S, self._rate)
        self._hist.trim(keep_from)
        # A hold still to be measured starts inside the history kept and takes the last onset
        # at or before its start: the last one before keep_from and all after it may be needed
        # (however far the hold's force lags the IMU), nothing older.
        del self._onsets[:max(0, bisect.bisect_right(self._onsets, keep_from) - 1)]
        if self._force_name is not None:
            c = self._force[self._force_name]
            t_keep = self._t(keep_from)
            f_keep = int(np.floor((t_keep - c.t0_s) * c.rate_hz)) - c.index0 - 1
            c.history.trim(f_keep)

    def finish(self) -> AnalysisResult:
        """Close everything still open at the end of the data and return the results."""
        events: list[CoreEvent] = []
        if self.primary is not None and self._axis is None and self._pending_axis:
            events += self._decide_axis(self._pending_axis_n)
        for chain in self._force.values():
            delay = chain.hampel.delay_samples
            if chain.next_index is not None and delay:
                # push the last inputs out of the spike filter's window
                pad = np.full(delay, chain.last_input)
                self._despike_and_detect(chain, pad, np.ones(delay, bool))
                chain.ok_queue = np.zeros(0, bool)
            for e in chain.detector.finish():
                self._contractions.append((e.t_s, e.data))
        if self.primary is not None and self._axis is not None:
            for span in self._tracker.finish(self._n):
                self._pending_reps.append(span)
            self._advance_holds(final=True)
            if self._holds_det is not None:
                for ch in self._holds_det.finish():
                    self._on_hold(ch)
            self._flush_reps(final=True)
        set_curves = self._set_curves()
        return AnalysisResult(
            streams=dict(self.streams),
            duration_s=self._duration(),
            reps=self._reps_with_set_figures(set_curves),
            holds=list(self._holds),
            contractions=[c for _, c in self._contractions],
            movement_onsets_s=list(self._onset_times),
            summary=self._summary(set_curves),
        )

    def _duration(self) -> float:
        chains: list[_ImuChain | _ForceChain] = [*self._imu.values(), *self._force.values()]
        ends = [c.t0_s + (c.next_index - 1) / c.rate_hz for c in chains if c.next_index is not None]
        return float(max(ends, default=0.0))

    def _set_curves(self) -> dict[str, dict[float, float]]:
        """The set's mean force-angle curve per label ("concentric", "eccentric"); empty
        without force-angle curves."""
        curves = [r.force_angle for r in self._reps if r.force_angle]
        if not curves:
            return {}
        return {label: metrics.mean_curve([{a: f for a, f in c[label]} for c in curves])
                for label in ("concentric", "eccentric")}

    def _reps_with_set_figures(self, set_curves: dict[str, dict[float, float]]) -> list[RepResult]:
        if not set_curves:
            return list(self._reps)
        set_con = set_curves["concentric"]
        out = []
        for r in self._reps:
            if r.force_angle:
                rep_con = {a: f for a, f in r.force_angle["concentric"]}
                r = replace(r, sticking_region_deg=metrics.sticking_region(rep_con, set_con))
            out.append(r)
        return out

    def _summary(self, set_curves: dict[str, dict[float, float]]) -> dict[str, Any]:
        reps = self._reps
        out: dict[str, Any] = {"rep_count": len(reps), "hold_count": len(self._holds),
                               "contraction_count": len(self._contractions),
                               "primary_axis_sensor": None if self._axis is None else
                               [float(x) for x in self._axis]}
        if reps:
            loss = metrics.velocity_loss_pct([r.mean_concentric_speed_dps for r in reps])
            out["velocity_loss_pct"] = loss
            out["velocity_loss_stop_rep"] = metrics.velocity_loss_stops(loss)
        if set_curves:
            out["force_angle_set"] = {
                "bin_deg": metrics.FORCE_ANGLE_BIN_DEG,
                "concentric": metrics.curve_to_json(set_curves["concentric"]),
                "eccentric": metrics.curve_to_json(set_curves["eccentric"]),
            }
            out["band_stiffness_n_per_deg"] = metrics.band_stiffness_n_per_deg(set_curves["concentric"])
        peaks = [r.peak_force_n for r in reps if r.peak_force_n is not None]
        cons = [c for _, c in self._contractions]
        if len(peaks) < 2:
            peaks = [c.peak_force_n for c in cons]
        out["fatigue_index_pct"] = metrics.fatigue_index_pct(peaks)
        if len(cons) >= 2 * metrics.CRITICAL_FORCE_LAST_K:
            cf = metrics.critical_force([c.mean_force_n for c in cons],
                                        [c.end_s - c.onset_s for c in cons])
            if cf is not None:
                out["critical_force_n"], out["w_prime_n_s"] = cf
        if self._holds:
            out["longest_hold_s"] = max(h.duration_s for h in self._holds)
        return out
