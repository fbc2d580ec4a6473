"""Plausibility checks of recorded signals before they are measured (``analyze``).

Real files arrive with problems the format cannot forbid: a corrupted value of 1e300, NaN
runs, an accelerometer logged in m/s² under a ``(g)`` header, a gyroscope in rad/s under
``(deg/s)``, a load cell wired so that tension reads negative. Samples outside any sensor's
physical range are treated as missing (IMU samples are dropped, so the pipeline bridges the
hole; force samples are flagged invalid, so the last valid value is held); a unit
mistake is refused with one line saying what to convert; a reversed load cell is turned round,
with a note. The unit checks work on block means at about :data:`CHECK_RATE_HZ`, so a whole
file and a file read in chunks (:class:`UnitEvidence` accumulates them) decide alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.blocks import StreamInfo
from spinecoach.errors import DataFormatError
from spinecoach.recording.model import ForceStream, ImuStream, Recording

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Beyond any MEMS gyroscope's full scale (±4000 °/s) with margin: a corrupted value (°/s).
GYRO_LIMIT_DPS = 20000.0
#: Beyond any accelerometer's full scale used on a body (±400 g) with margin (g).
ACCEL_LIMIT_G = 1000.0
#: Beyond any load cell on a training rig (100 t): a corrupted value (N).
FORCE_LIMIT_N = 1.0e6
#: Rate of the block means the unit checks use (Hz).
CHECK_RATE_HZ = 20.0
#: Sample rates (Hz) outside which a stream's time column is not in seconds (a 1 kHz IMU
#: stamped in milliseconds reads as 1 Hz).
MIN_RATE_HZ = 5.0
MAX_RATE_HZ = 20000.0
#: Samples on a stream's extreme value (in runs of SATURATED_RUN) that show a saturated
#: sensor, and the extremes
#: below which a flat top is not taken for saturation (°/s, N).
SATURATED_MIN_SAMPLES = 5
SATURATED_RUN = 3
SATURATION_MIN_DPS = 100.0
SATURATION_MIN_N = 50.0
#: Median accelerometer magnitude expected in g (gravity plus movement): outside this range
#: the column is not in g.
ACCEL_MEDIAN_RANGE_G = (0.5, 2.0)
STANDARD_GRAVITY = 9.80665
#: Window over which the accelerometer's turn and the gyroscope's rotation are compared (s),
#: and the turn in a window (°) that counts as movement rather than noise.
TILT_WINDOW_S = 1.0
MIN_WINDOW_TILT_DEG = 10.0
#: The accelerometer's direction must turn through at least this much (°) before the
#: gyroscope's integrated rotation is compared with it.
MIN_TILT_PATH_DEG = 90.0
#: Gyroscope rotation below this fraction of the accelerometer's tilt path: the gyroscope is
#: not in °/s (rad/s gives 1/57).
MIN_GYRO_TO_TILT = 0.25
#: A load cell that goes below zero by more than this many times it goes above, and by at
#: least FORCE_FLIP_MIN_N (N), reads tension as negative.
FORCE_FLIP_RATIO = 4.0
FORCE_FLIP_MIN_N = 50.0


def block_means(x: FloatArray, ok: BoolArray, rate_hz: float) -> FloatArray:
    """Means of the valid rows of ``x`` over consecutive blocks of ~1/CHECK_RATE_HZ s (rows
    with no valid sample dropped)."""
    n_block = max(1, int(round(rate_hz / CHECK_RATE_HZ)))
    n = (len(x) // n_block) * n_block
    if n == 0:
        return np.zeros((0, x.shape[1]))
    w = ok[:n].reshape(-1, n_block).astype(np.float64)
    xs = np.where(ok[:n, None], x[:n], 0.0).reshape(-1, n_block, x.shape[1])
    count = w.sum(axis=1)
    keep = count > 0
    return (xs.sum(axis=1)[keep] / count[keep, None])


@dataclass
class UnitEvidence:
    """Block means of one IMU stream (gyro °/s, accel g), collected in one or many pieces."""

    name: str
    rate_hz: float
    gyro: list[FloatArray] = field(default_factory=list)
    accel: list[FloatArray] = field(default_factory=list)

    def add(self, gyro_dps: FloatArray, accel_g: FloatArray, ok: BoolArray) -> None:
        self.gyro.append(block_means(gyro_dps, ok, self.rate_hz))
        self.accel.append(block_means(accel_g, ok, self.rate_hz))

    def check(self) -> None:
        """Raise DataFormatError when the accelerometer is not in g or the gyroscope not in °/s."""
        if not self.accel:
            return
        accel = np.concatenate(self.accel)
        gyro = np.concatenate(self.gyro)
        if len(accel) < 2:
            return
        magnitude = float(np.median(np.linalg.norm(accel, axis=1)))
        lo, hi = ACCEL_MEDIAN_RANGE_G
        if not lo <= magnitude <= hi:
            hint = (f"it looks like m/s²: divide by {STANDARD_GRAVITY}"
                    if 0.5 * STANDARD_GRAVITY <= magnitude <= 2 * STANDARD_GRAVITY
                    else "convert it to g")
            raise DataFormatError(
                f"IMU {self.name!r}: the accelerometer's median magnitude is {magnitude:.3g}, "
                f"expected about 1 (g, gravity); {hint} and run analyze again"
            )
        # Over each window, the rotation the gyroscope integrates bounds the turn of the
        # accelerometer's direction; windows with a clear turn (beyond noise) are compared.
        lag = max(1, int(round(TILT_WINDOW_S * CHECK_RATE_HZ)))
        if len(accel) <= lag:
            return
        unit = accel / np.maximum(np.linalg.norm(accel, axis=1, keepdims=True), 1e-9)
        cos = np.clip(np.sum(unit[lag:] * unit[:-lag], axis=1), -1.0, 1.0)
        tilt_deg = np.degrees(np.arccos(cos))
        block_s = max(1, int(round(self.rate_hz / CHECK_RATE_HZ))) / self.rate_hz
        path = np.concatenate(([0.0], np.cumsum(np.linalg.norm(gyro[1:], axis=1) * block_s)))
        rotation_deg = path[lag:] - path[:-lag]
        turned = tilt_deg > MIN_WINDOW_TILT_DEG
        tilt_path_deg = float(tilt_deg[turned].sum()) / lag
        gyro_path_deg = float(rotation_deg[turned].sum()) / lag
        if tilt_path_deg >= MIN_TILT_PATH_DEG and gyro_path_deg < MIN_GYRO_TO_TILT * tilt_path_deg:
            hint = (" (it looks like rad/s: multiply by 57.2958)"
                    if gyro_path_deg * 180.0 / math.pi > 0.5 * tilt_path_deg else "")
            raise DataFormatError(
                f"IMU {self.name!r}: the accelerometer turns through {tilt_path_deg:.0f}° while "
                f"the gyroscope integrates to only {gyro_path_deg:.0f}°; the gyroscope columns "
                f"must be in deg/s{hint}"
            )


def plausible_imu(gyro_dps: FloatArray, accel_g: FloatArray) -> BoolArray:
    """Samples whose six values are finite and within the physical limits."""
    return np.asarray(np.isfinite(gyro_dps).all(axis=1) & np.isfinite(accel_g).all(axis=1)
                      & (np.abs(gyro_dps) <= GYRO_LIMIT_DPS).all(axis=1)
                      & (np.abs(accel_g) <= ACCEL_LIMIT_G).all(axis=1), dtype=bool)


def plausible_force(force_n: FloatArray) -> BoolArray:
    return np.isfinite(force_n) & (np.abs(force_n) <= FORCE_LIMIT_N)


def force_reads_negative(force_n: FloatArray) -> bool:
    """True when the load cell reads mainly below zero (tension negative).

    A tared load cell reads about 0 unloaded and positive under tension, whatever the duty
    cycle; its 0.5 % and 99.5 % percentiles measure how far it goes each way from zero.
    """
    if len(force_n) < 10:
        return False
    lo, hi = np.percentile(force_n, [0.5, 99.5])
    down, up = max(0.0, -float(lo)), max(0.0, float(hi))
    return down >= FORCE_FLIP_MIN_N and down > FORCE_FLIP_RATIO * up


def saturated_count(x: FloatArray) -> tuple[float, int]:
    """The largest magnitude of ``x`` and how many samples sit on it in runs of at least
    SATURATED_RUN consecutive samples (a sensor at full scale repeats its extreme code; a
    real peak touches its top once, and a repeated take of the same data touches it once per
    take)."""
    if len(x) == 0:
        return 0.0, 0
    top = float(np.max(np.abs(x)))
    at = np.asarray(np.abs(x) >= top * (1.0 - 1e-9), dtype=bool)
    if at.ndim > 1:
        at = np.asarray(at.any(axis=1), dtype=bool)
    n = SATURATED_RUN
    if len(at) < n:
        return top, 0
    start = np.ones(len(at) - n + 1, dtype=bool)
    for k in range(n):
        start &= at[k:len(at) - n + 1 + k]
    in_run = np.zeros(len(at), dtype=bool)
    for k in range(n):
        in_run[k:len(at) - n + 1 + k] |= start
    return top, int(np.count_nonzero(in_run))


@dataclass
class _Saturation:
    """Running extreme magnitude of a stream and how many samples sat on it."""

    top: float = 0.0
    count: int = 0

    def add(self, x: FloatArray) -> None:
        top, count = saturated_count(x)
        if top > self.top * (1.0 + 1e-9):
            self.top, self.count = top, count
        elif top >= self.top * (1.0 - 1e-9):
            self.count += count

    def note(self, notes: list[str], what: str, min_level: float, unit: str, effect: str) -> None:
        if self.top >= min_level and self.count >= SATURATED_MIN_SAMPLES:
            notes.append(f"{what} saturates at ±{self.top:g} {unit} ({self.count} samples): "
                         f"{effect}")


def _note_invalid(notes: list[str], name: str, kind: str, count: int, limit: str) -> None:
    if count:
        notes.append(f"{kind} {name!r}: {count} sample(s) not finite or beyond {limit} "
                     "were treated as missing")


@dataclass
class ImuChecks:
    """The checks of one IMU stream, fed in one or many pieces (:meth:`add`), decided by
    :meth:`finish`."""

    name: str
    rate_hz: float
    invalid: int = 0
    saturation: _Saturation = field(default_factory=_Saturation)
    evidence: UnitEvidence | None = None

    def add(self, gyro_dps: FloatArray, accel_g: FloatArray, valid: BoolArray) -> BoolArray:
        """Account for a piece; returns which of its samples are plausible."""
        ok = plausible_imu(gyro_dps, accel_g)
        self.invalid += int(np.count_nonzero(valid & ~ok))
        if self.evidence is None:
            self.evidence = UnitEvidence(self.name, self.rate_hz)
        self.evidence.add(gyro_dps, accel_g, valid & ok)
        self.saturation.add(gyro_dps[valid & ok])
        return ok

    def finish(self, notes: list[str]) -> None:
        """Append the remarks; DataFormatError for a unit mistake."""
        _note_invalid(notes, self.name, "IMU", self.invalid,
                      f"±{GYRO_LIMIT_DPS:g} °/s or ±{ACCEL_LIMIT_G:g} g")
        if self.evidence is not None:
            self.evidence.check()
        self.saturation.note(notes, f"IMU {self.name!r}: the gyroscope", SATURATION_MIN_DPS,
                             "°/s", "rotation beyond it is lost, so angles and speeds read "
                             "low there; set a larger full-scale range")


@dataclass
class ForceChecks:
    """The checks of one load-cell stream, fed in one or many pieces; ``keep_every`` keeps
    every n-th valid value for the sign decision (bounded memory on long files)."""

    name: str
    keep_every: int = 1
    invalid: int = 0
    saturation: _Saturation = field(default_factory=_Saturation)
    kept: list[FloatArray] = field(default_factory=list)
    seen: int = 0

    def add(self, force_n: FloatArray, valid: BoolArray) -> BoolArray:
        ok = plausible_force(force_n)
        self.invalid += int(np.count_nonzero(valid & ~ok))
        good = force_n[valid & ok]
        self.saturation.add(good)
        first = (-self.seen) % self.keep_every
        self.kept.append(good[first::self.keep_every].copy())
        self.seen += len(good)
        return ok

    def finish(self, notes: list[str]) -> bool:
        """Append the remarks; True when the sign must be turned round."""
        _note_invalid(notes, self.name, "load cell", self.invalid, f"±{FORCE_LIMIT_N:g} N")
        flip = force_reads_negative(np.concatenate(self.kept) if self.kept else np.zeros(0))
        if flip:
            notes.append(f"load cell {self.name!r} reads tension as negative; its sign was "
                         "turned round (check the load cell's wiring or its calibration)")
        self.saturation.note(notes, f"load cell {self.name!r}", SATURATION_MIN_N, "N",
                             "peak force, RFD and impulse read low; use a larger range")
        return flip


def check_rates(streams: Sequence[StreamInfo]) -> None:
    """DataFormatError for a stream whose rate shows a time column not in seconds."""
    for info in streams:
        if not MIN_RATE_HZ <= info.rate_hz <= MAX_RATE_HZ:
            unit = "milliseconds" if info.rate_hz < MIN_RATE_HZ else "minutes or hours"
            factor = "divide it by 1000" if info.rate_hz < MIN_RATE_HZ else "convert it"
            raise DataFormatError(
                f"stream {info.name!r} runs at {info.rate_hz:.4g} Hz by its times; expected "
                f"{MIN_RATE_HZ:g} Hz to {MAX_RATE_HZ:g} Hz: if the time column is in {unit}, "
                f"{factor} to seconds"
            )


def check_recording(recording: Recording, notes: list[str]) -> Recording:
    """``recording`` with implausible samples treated as missing and a reversed load cell
    turned round (remarks appended to ``notes``); DataFormatError for a unit mistake."""
    check_rates(recording.streams)
    imu: dict[str, ImuStream] = {}
    for name, s in recording.imu.items():
        checks = ImuChecks(name, s.info.rate_hz)
        ok = checks.add(s.gyro_dps, s.accel_g, s.valid)
        checks.finish(notes)
        if not ok.all():
            # dropped rather than flagged: the pipeline bridges a hole in the angle
            s = ImuStream(s.info, s.index[ok], s.gyro_dps[ok], s.accel_g[ok], s.valid[ok],
                          None if s.raw is None else s.raw[ok], s.gaps)
        imu[name] = s
    force: dict[str, ForceStream] = {}
    for name, f in recording.force.items():
        fchecks = ForceChecks(name)
        valid = f.valid & fchecks.add(f.force_n, f.valid)
        values = -f.force_n if fchecks.finish(notes) else f.force_n
        force[name] = ForceStream(f.info, f.index, values, valid, f.raw, f.gaps)
    return Recording(imu, force, recording.meta)
