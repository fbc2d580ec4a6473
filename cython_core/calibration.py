"""Calibration: load-cell tare and scale, automatic zero tracking, gyro bias, mounting alignment.

METRICS.md rules: tare only on an explicit command with the rig unloaded (refused otherwise),
scale from one or more known loads by least squares, zero tracking only while unloaded and still
for at least 5 s. Every refusal is a :class:`CalibrationError` whose message says what to do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from spinecoach.core import _calibration
from spinecoach.core.angles import quaternion_from_matrix, up_in_sensor
from spinecoach.errors import SpinecoachError


class CalibrationError(SpinecoachError, ValueError):
    """A calibration that cannot be trusted (rig loaded, sensor moving, degenerate points)."""

    exit_status = 65


def _finite_1d(name: str, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one channel, shape (n,), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} has non-finite values; drop invalid samples first")
    return arr


def _window_samples(window_s: float, rate_hz: float, available: int, what: str) -> int:
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate_hz must be a positive number, got {rate_hz!r}")
    n = max(2, round(window_s * rate_hz))
    if available < n:
        raise CalibrationError(
            f"{what} needs {window_s:g} s of samples ({n} at {rate_hz:g} Hz) but got {available}; "
            "record for longer and retry"
        )
    return n


def _quietest_window(values: npt.NDArray[np.float64], n: int) -> tuple[int, float, float]:
    """Start, mean and SD of the length-n window with the lowest SD (cumulative sums)."""
    shifted = values - values[0]  # keeps the running sums well conditioned for raw ADC codes
    c1 = np.concatenate([[0.0], np.cumsum(shifted)])
    c2 = np.concatenate([[0.0], np.cumsum(shifted * shifted)])
    sums = c1[n:] - c1[:-n]
    var = np.maximum((c2[n:] - c2[:-n]) / n - (sums / n) ** 2, 0.0)
    start = int(np.argmin(var))
    return start, float(sums[start] / n + values[0]), float(math.sqrt(var[start] * n / (n - 1)))


# --- load cell -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TareSettings:
    """Tare: the quietest ``window_s`` of the capture is averaged.

    Refused when that window's SD exceeds ``max_sd_n`` (someone pulls or the chain swings) or
    when its level is more than ``max_load_n`` above the previous zero (the rig is loaded).
    """

    window_s: float = 1.0
    max_sd_n: float = 3.0
    max_load_n: float = 20.0


@dataclass(frozen=True)
class TareResult:
    """The zero in ADC counts, and the SD (N) and start index of the window it came from."""

    offset_counts: float
    sd_n: float
    window_start: int


def tare(
    counts: npt.ArrayLike,
    rate_hz: float,
    n_per_count: float,
    previous_offset_counts: float | None = None,
    settings: TareSettings = TareSettings(),
) -> TareResult:
    """Zero of a load cell from raw counts captured with the rig unloaded.

    ``n_per_count`` is the current scale (a nominal one before the first calibration) so the
    checks can speak newtons; ``previous_offset_counts`` is the last zero, which makes the level
    check possible (without it only the SD is checked).
    """
    values = _finite_1d("counts", counts)
    if not (math.isfinite(n_per_count) and n_per_count != 0.0):
        raise ValueError(f"n_per_count must be a finite non-zero scale, got {n_per_count!r}")
    n = _window_samples(settings.window_s, rate_hz, values.size, "tare")
    start, mean, sd_counts = _quietest_window(values, n)
    sd_n = sd_counts * abs(n_per_count)
    if sd_n > settings.max_sd_n:
        raise CalibrationError(
            f"the force is not steady (SD {sd_n:.1f} N > {settings.max_sd_n:g} N): unload the rig, "
            "let the band or chain hang still and tare again"
        )
    if previous_offset_counts is not None:
        load_n = (mean - previous_offset_counts) * n_per_count
        if abs(load_n) > settings.max_load_n:
            raise CalibrationError(
                f"the rig reads {load_n:.0f} N away from its last zero (limit "
                f"{settings.max_load_n:g} N): unload it before taring, or recalibrate the scale"
            )
    return TareResult(mean, sd_n, start)


@dataclass(frozen=True)
class ScaleFit:
    """Linear load-cell model force_n = n_per_count · (counts − offset_counts).

    ``residuals_n`` are model minus known load at each calibration point; ``rms_residual_n``
    summarises them (0 when the fit has no spare points).
    """

    n_per_count: float
    offset_counts: float
    residuals_n: tuple[float, ...]
    rms_residual_n: float

    def force_n(self, counts: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return self.n_per_count * (np.asarray(counts, dtype=np.float64) - self.offset_counts)


def fit_scale(
    counts: Sequence[float] | npt.ArrayLike,
    loads_n: Sequence[float] | npt.ArrayLike,
    offset_counts: float | None = None,
) -> ScaleFit:
    """Least-squares scale from mean counts measured under known loads (N).

    With ``offset_counts`` (the tare) the line goes through that zero and one known load is
    enough; without it the offset is fitted too and at least two different loads are needed.
    """
    c = np.asarray(counts, dtype=np.float64).ravel()
    f = np.asarray(loads_n, dtype=np.float64).ravel()
    if c.shape != f.shape or c.size == 0:
        raise ValueError(f"counts and loads_n need one value per point, got {c.size} and {f.size}")
    if not (np.isfinite(c).all() and np.isfinite(f).all()):
        raise ValueError("calibration points must be finite numbers")
    if offset_counts is not None:
        d = c - offset_counts
        if not np.any(f != 0.0) or float(d @ d) == 0.0:
            raise CalibrationError(
                "no calibration point differs from the zero: hang a known load and measure again"
            )
        k = float(d @ f / (d @ d))
        offset = float(offset_counts)
        spare = c.size - 1
    else:
        if np.ptp(f) == 0.0 or np.ptp(c) == 0.0 or c.size < 2:
            raise CalibrationError(
                "a scale needs two different known loads (or a tare and one load): "
                "measure another load and retry"
            )
        design = np.stack([c, np.ones_like(c)], axis=1)
        (k, intercept), *_ = np.linalg.lstsq(design, f, rcond=None)
        k = float(k)
        offset = float(-intercept / k)
        spare = c.size - 2
    if k == 0.0 or not math.isfinite(k):
        raise CalibrationError("the load cell does not respond to the loads: check its wiring")
    residuals = k * (c - offset) - f
    rms = float(math.sqrt(np.sum(residuals**2) / spare)) if spare > 0 else 0.0
    return ScaleFit(k, offset, tuple(float(r) for r in residuals), rms)


@dataclass(frozen=True)
class ZeroTrackingSettings:
    """Automatic zero tracking (METRICS.md: only while unloaded and still for >= 5 s).

    Quiet = within ``unloaded_band_n`` of the zero and within ``still_band_n`` of a low-pass
    (time constant ``still_time_constant_s``). After ``min_quiet_s`` of quiet the zero follows
    the force with time constant ``track_time_constant_s``.
    """

    unloaded_band_n: float = 10.0
    still_band_n: float = 3.0
    still_time_constant_s: float = 0.5
    min_quiet_s: float = 5.0
    track_time_constant_s: float = 10.0


class ZeroTracker:
    """Streaming zero tracking for one load cell: ``update(force_n) -> (corrected_n, tracking)``."""

    def __init__(self, rate_hz: float, settings: ZeroTrackingSettings = ZeroTrackingSettings()) -> None:
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be a positive number, got {rate_hz!r}")
        self.rate_hz = float(rate_hz)
        self.settings = settings
        self._state = np.zeros(_calibration.STATE_SIZE, dtype=np.float64)
        s = settings
        self._args = (
            s.unloaded_band_n,
            s.still_band_n,
            1.0 - math.exp(-1.0 / (s.still_time_constant_s * rate_hz)),
            float(max(1, round(s.min_quiet_s * rate_hz))),
            1.0 - math.exp(-1.0 / (s.track_time_constant_s * rate_hz)),
        )

    @property
    def zero_n(self) -> float:
        """The zero currently subtracted (N)."""
        return float(self._state[_calibration.ZERO])

    def update(self, force_n: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        values = _finite_1d("force_n", force_n)
        out = np.empty_like(values)
        tracking = np.zeros(values.size, dtype=np.uint8)
        _calibration.track_zero(values, out, tracking, self._state, *self._args)
        return out, tracking.view(bool)

    def copy(self) -> ZeroTracker:
        twin = ZeroTracker(self.rate_hz, self.settings)
        twin._state = self._state.copy()
        return twin


# --- IMU ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GyroBiasSettings:
    """Gyro bias capture: mean of the quietest ``window_s``; refused when any axis' SD exceeds
    ``max_sd_dps`` or the mean exceeds ``max_bias_dps`` (the sensor was turning)."""

    window_s: float = 2.0
    max_sd_dps: float = 0.5
    max_bias_dps: float = 5.0


@dataclass(frozen=True)
class GyroBias:
    bias_dps: tuple[float, float, float]
    sd_dps: tuple[float, float, float]


def gyro_bias_at_rest(
    gyro_dps: npt.ArrayLike, rate_hz: float, settings: GyroBiasSettings = GyroBiasSettings()
) -> GyroBias:
    """Gyro bias (°/s) from a capture with the IMU lying still."""
    gyro = np.asarray(gyro_dps, dtype=np.float64)
    if gyro.ndim != 2 or gyro.shape[1] != 3:
        raise ValueError(f"gyro_dps must have shape (n, 3), got {gyro.shape}")
    if not np.isfinite(gyro).all():
        raise ValueError("gyro_dps has non-finite values; drop invalid samples first")
    n = _window_samples(settings.window_s, rate_hz, gyro.shape[0], "gyro bias capture")
    # The quietest window by total variance over the three axes.
    total = np.concatenate([[0.0], np.cumsum(np.sum(gyro**2, axis=1))])
    sums = np.concatenate([np.zeros((1, 3)), np.cumsum(gyro, axis=0)])
    window_sum = sums[n:] - sums[:-n]
    var = (total[n:] - total[:-n]) / n - np.sum((window_sum / n) ** 2, axis=1)
    start = int(np.argmin(var))
    window = gyro[start : start + n]
    mean = window.mean(axis=0)
    sd = window.std(axis=0, ddof=1)
    if np.any(sd > settings.max_sd_dps) or np.any(np.abs(mean) > settings.max_bias_dps):
        raise CalibrationError(
            f"the IMU was not still (SD {sd.max():.2f} °/s, mean {np.abs(mean).max():.2f} °/s): "
            f"let it lie still for {settings.window_s:g} s and capture the bias again"
        )
    return GyroBias(
        (float(mean[0]), float(mean[1]), float(mean[2])), (float(sd[0]), float(sd[1]), float(sd[2]))
    )


def mounting_alignment(
    zero_q: npt.ArrayLike,
    flexed_q: npt.ArrayLike | None = None,
    up_axis: Sequence[float] = (1.0, 0.0, 0.0),
    flexion_axis: Sequence[float] = (0.0, 1.0, 0.0),
    min_flexion_deg: float = 10.0,
) -> npt.NDArray[np.float64]:
    """Quaternion q_align rotating body-frame vectors into the sensor frame.

    ``zero_q``: the filter's orientation while the athlete holds the zero pose (upright), where
    the body's ``up_axis`` (trunk convention: +x along the spine) points up. Alone it fixes the
    tilt of the mounting; the rotation about the vertical stays as mounted (smallest rotation).
    ``flexed_q``: optionally a second pose after a forward bend of at least ``min_flexion_deg``
    about the body's ``flexion_axis`` (+y, to the athlete's left), which fixes that rotation too.
    ``q ⊗ q_align`` is then the body's orientation, and angles about body axes follow the
    common conventions whatever way the sensor sits on the back.
    """
    up_b = _unit(up_axis, "up_axis")
    u0 = up_in_sensor(zero_q)[0]
    if flexed_q is None:
        return _smallest_rotation(up_b, u0)
    flex_b = _unit(flexion_axis, "flexion_axis")
    if abs(float(up_b @ flex_b)) > 1e-6:
        raise ValueError("up_axis and flexion_axis must be perpendicular")
    u1 = up_in_sensor(flexed_q)[0]
    # A positive rotation about the flexion axis turns "up" the other way in the sensor frame,
    # so u1 × u0 points along +flexion axis.
    axis = np.cross(u1, u0)
    axis -= u0 * float(axis @ u0)
    if np.linalg.norm(axis) < math.sin(math.radians(min_flexion_deg)):
        raise CalibrationError(
            f"the second pose is less than {min_flexion_deg:g}° from the zero pose: bend forward "
            "further (or tilt the sensor about the working axis) and capture it again"
        )
    axis /= np.linalg.norm(axis)
    sensor = np.stack([u0, axis, np.cross(u0, axis)], axis=1)
    body = np.stack([up_b, flex_b, np.cross(up_b, flex_b)], axis=1)
    return quaternion_from_matrix(sensor @ body.T)


def _unit(v: Sequence[float], name: str) -> npt.NDArray[np.float64]:
    arr = np.asarray(v, dtype=np.float64)
    norm = float(np.linalg.norm(arr)) if arr.shape == (3,) else 0.0
    if not (math.isfinite(norm) and norm > 0):
        raise ValueError(f"{name} must be a finite non-zero 3-vector, got {v!r}")
    return arr / norm


def _smallest_rotation(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Unit quaternion of the smallest rotation taking unit vector a to unit vector b."""
    d = float(np.clip(a @ b, -1.0, 1.0))
    if d < -1.0 + 1e-12:
        # Opposite vectors: a half turn about any axis perpendicular to a.
        helper = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        perp = np.cross(a, helper)
        return np.concatenate([[0.0], perp / np.linalg.norm(perp)])
    q = np.concatenate([[1.0 + d], np.cross(a, b)])
    return q / np.linalg.norm(q)
