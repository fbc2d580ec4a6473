"""6-axis orientation: gyroscope + accelerometer -> quaternion, with gyro-bias estimation.

:class:`OrientationFilter` follows the kernel pattern of the whole core: frozen
:class:`OrientationSettings` (units in names) -> explicit private state -> ``update(block)`` ->
quaternions plus flags (``rest``, ``bias_dps``). The arithmetic is the 6D part of VQF (Laidig &
Seel, Information Fusion 91, 2023), see ``_orientation.pyx``; this module checks the inputs and
precomputes every coefficient so the per-sample loop is plain C.

Output quaternions [w, x, y, z] rotate sensor-frame vectors into an earth frame with z up; the
heading (rotation about z) is arbitrary and drifts slowly, as it must without a magnetometer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt
from spinecoach.core import _orientation
from spinecoach.core.filters import butterworth_lowpass_sos, time_constant_cutoff_hz
from spinecoach.errors import DataFormatError

#: The bias random walk assumed between measurements: its SD grows by this much over
#: ``bias_forgetting_time_s`` (sets the Kalman process noise, as in the VQF paper).
BIAS_DRIFT_SD_DPS = 0.1

_DEG = math.pi / 180.0


@dataclass(frozen=True)
class OrientationSettings:
    """Tuning of :class:`OrientationFilter`. Defaults suit body-worn IMUs from 25 Hz to 1 kHz.

    accel_time_constant_s
        Time constant of the 2nd-order Butterworth low-pass applied to the accelerometer in the
        inertial frame (the VQF paper's tau_acc). Longer rejects more movement acceleration but
        lets gyro errors (scale, bias) act for longer. The paper's default is 3 s; 2 s measured
        best on BROAD trial 07 (fast rotation; 1.5-3 s are within 0.03° of it).
    accel_reject_g
        An accelerometer sample whose norm is more than this away from 1 g (an impact, a drop)
        is left out; the gyroscope carries the attitude through. Hard rejection of ordinary
        movement acceleration hurts (it biases the mean), so the default only catches impacts.
    movement_start_dps, movement_end_dps, movement_max_reject_s
        Rejection of movement acceleration: while the bias-corrected rate is above
        ``movement_start_dps`` (until it falls below ``movement_end_dps``) the accelerometer is
        left out of the low-pass and the gyroscope carries the attitude; for at most
        ``movement_max_reject_s`` per movement, after which the accelerometer is used again
        until the movement ends (0 s switches it off). See ``_orientation.pyx`` for why.
    movement_reject_bias_sd_dps, movement_reject_always
        The gyroscope alone is only as good as its bias, so a movement is carried by it only
        when the bias filter's SD of the bias's earth-horizontal part (the part that tilts the
        inclination) is at most ``movement_reject_bias_sd_dps`` (0.1 °/s: at most 0.3° over a
        3 s movement at one SD; a still IMU gets there in about 4 s of rest, a bias seeded
        with :meth:`OrientationFilter.seed_bias_dps` at its default SD at once, and the SD grows
        by the bias random walk while nothing measures it), or always with
        ``movement_reject_always``.
    gyro_delay_s
        Group delay of the gyroscope's internal low-pass. The output is predicted forward by it
        (less half a sample period, the strapdown step's own lead) with the current rate so it
        refers to the sample time. MEMS gyros delay by 1-5 ms depending on their filter setting
        (MPU-6050 datasheet, register 26: 1.9 ms at 188 Hz bandwidth, 2.8 ms at 98 Hz, 4.8 ms
        at 42 Hz). The default 4.1 ms is the delay measured between BROAD's IMU and its optical
        reference (the RMSE's minimum). The pipeline uses it only for streams that do not know
        their chip's delay: a stream whose ``StreamInfo.gyro_delay_s`` is set (the MPU-6050
        driver sets it from its filter setting) gets its own. Set 0 for none. A wrong value
        costs rate × error (0.26° at 100 °/s per 2.6 ms).
    gyro_rate_is_period_mean
        A gyro sample is the rate at its sample time (after the chip's low-pass: a MEMS chip, the
        simulated rig), so the strapdown step, which turns by it over the period before the
        sample, runs half a period ahead while the rate changes, and the prediction takes that
        half period off. Set True for samples that are each period's mean rate (an integrating
        sensor, or test data integrated as constant over each period), for which the step is
        exact.
    correction_rate_hz
        Rate of the slow path (accelerometer low-pass, inclination correction, bias Kalman
        filter), which runs on block means; about 50 Hz loses nothing against the 0.1 Hz
        low-pass and keeps the per-sample cost small.
    gap_reset_s
        A run of invalid samples at least this long (an acquisition gap: the rotation during it
        is lost) restarts the low-passes so the next correction re-levels at once.
    rest_*
        Rest detection: the gyroscope within ``rest_gyro_threshold_dps`` and the accelerometer
        within ``rest_accel_threshold_g`` of their own low-passes (time constant
        ``rest_filter_time_constant_s``) for ``rest_min_duration_s``.
    bias_*
        Gyro-bias Kalman filter: initial SD, forgetting time, the SD in motion and at rest, the
        weight of the (unobservable) vertical component's pull to zero, and the limit to which
        the estimate is clipped (VQF paper defaults), and the SD while tracking.
    bias_tracking_sd_dps
        The motion update's weight is set (as in the paper) by the SD the estimate settles at,
        which also sets how fast it follows: the steady Kalman gain makes a time constant of
        ``bias_forgetting_time_s`` × (sd / 0.1 °/s)², 100 s for the paper's 0.1 °/s. That
        suits acquiring an unknown bias through movement, but a MEMS gyro's bias walks
        (MPU-6000 class: ~0.004 °/s/√s, 0.03-0.05 °/s within a minute), which a 100 s average
        misses, and a steady bias error ε tilts the inclination by ε × ``accel_time_constant_s``.
        Its horizontal SD also settles at 0.14 °/s (two axes at 0.1), above
        ``movement_reject_bias_sd_dps``, so motion alone never kept the gyroscope trusted. Once
        the bias is known (horizontal SD within ``movement_reject_bias_sd_dps``: seeded, or
        learnt at rest) the motion update weighs as for this SD: 0.03 °/s follows the walk with
        a 9 s time constant and keeps the horizontal SD at 0.042 °/s, under the gate. It keeps
        doing so until the horizontal SD exceeds what acquisition settles at (0.14 °/s), e.g.
        after a turn brings the unmeasured vertical part's grown variance into the horizontal.
        Measured: BROAD trial 07 0.471° -> 0.428°.
    motion_bias_quiet_s
        After a movement whose accelerometer was left out, the low-pass still holds the
        velocity gained below the thresholds for a while; the correction it causes is not a
        bias, so the motion update waits this long after the last left-out sample.
    motion_bias_estimation, rest_bias_estimation
        Switch the two bias measurements (both on by default).
    """

    accel_time_constant_s: float = 2.0
    accel_reject_g: float = 2.0
    movement_start_dps: float = 5.0
    movement_end_dps: float = 2.5
    movement_max_reject_s: float = 3.0
    movement_reject_always: bool = False
    movement_reject_bias_sd_dps: float = 0.1
    gyro_delay_s: float = 0.0041
    gyro_rate_is_period_mean: bool = False
    correction_rate_hz: float = 50.0
    gap_reset_s: float = 0.1
    rest_filter_time_constant_s: float = 0.5
    rest_gyro_threshold_dps: float = 2.0
    rest_accel_threshold_g: float = 0.05
    rest_min_duration_s: float = 1.5
    bias_initial_sd_dps: float = 0.5
    bias_forgetting_time_s: float = 100.0
    bias_limit_dps: float = 2.0
    bias_motion_sd_dps: float = 0.1
    bias_tracking_sd_dps: float = 0.03
    bias_vertical_forgetting_factor: float = 1e-4
    bias_rest_sd_dps: float = 0.03
    motion_bias_quiet_s: float = 0.5
    motion_bias_estimation: bool = True
    rest_bias_estimation: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("bool", bool):
                continue
            lowest_ok = value >= 0 if f.name in _MAY_BE_ZERO else value > 0
            if not (isinstance(value, (int, float)) and math.isfinite(value) and lowest_ok):
                kind = "non-negative" if f.name in _MAY_BE_ZERO else "positive"
                raise ValueError(
                    f"OrientationSettings.{f.name} must be a {kind} finite number, got {value!r}"
                )


_MAY_BE_ZERO = frozenset({"gyro_delay_s", "movement_max_reject_s", "motion_bias_quiet_s"})


def _as_samples(name: str, array: npt.ArrayLike) -> npt.NDArray[np.float64]:
    out = np.ascontiguousarray(array, dtype=np.float64)
    if out.ndim != 2 or out.shape[1] != 3:
        raise ValueError(f"{name} must have shape (n, 3), got {out.shape}")
    return out


def _canonical(
    gyro_dps: npt.ArrayLike, accel_g: npt.ArrayLike, valid: npt.ArrayLike | None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_] | None]:
    """Contiguous float64 (n, 3) arrays and bool (n,) flags, or ValueError naming the problem."""
    gyro = _as_samples("gyro_dps", gyro_dps)
    accel = _as_samples("accel_g", accel_g)
    n = gyro.shape[0]
    if accel.shape[0] != n:
        raise ValueError(f"gyro_dps has {n} samples but accel_g has {accel.shape[0]}")
    if valid is None:
        return gyro, accel, None
    flags = np.ascontiguousarray(valid)
    if flags.shape != (n,):
        raise ValueError(f"valid must have shape ({n},), got {flags.shape}")
    return gyro, accel, np.ascontiguousarray(flags, dtype=bool)


class OrientationFilter:
    """Streaming 6-axis orientation filter for one IMU at a fixed sample rate.

    ``update`` accepts blocks of any size; the result never depends on how a recording is cut
    into blocks. Samples flagged invalid hold the state (no update) and repeat the current
    estimate in the output.
    """

    def __init__(self, rate_hz: float, settings: OrientationSettings = OrientationSettings()) -> None:
        if not (isinstance(rate_hz, (int, float)) and math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be a positive number, got {rate_hz!r}")
        self._rate_hz = float(rate_hz)
        self._settings = settings
        self._coeffs = _coefficients(self._rate_hz, settings)
        self._state = np.zeros(_orientation.STATE_SIZE, dtype=np.float64)
        _orientation.init_state(self._state, self._coeffs)
        self._kernel = _orientation.Kernel(self._coeffs, self._state)

    @property
    def rate_hz(self) -> float:
        """Sample rate the filter was built for (Hz)."""
        return self._rate_hz

    @property
    def settings(self) -> OrientationSettings:
        return self._settings

    def update(
        self,
        gyro_dps: npt.ArrayLike,
        accel_g: npt.ArrayLike,
        valid: npt.ArrayLike | None = None,
    ) -> npt.NDArray[np.float64]:
        """Process a block: gyro (°/s) and accel (g), each (n, 3); returns (n, 4) quaternions.

        Raises ValueError for mismatched shapes and DataFormatError (a ValueError) for a
        non-finite value in a sample marked valid.
        """
        out = self._kernel.update(gyro_dps, accel_g, valid)
        if out is None:
            # Not already contiguous float64 of matching shapes: convert (or refuse), then run.
            out = self._kernel.update(*_canonical(gyro_dps, accel_g, valid))
        if isinstance(out, int):
            raise DataFormatError(
                f"IMU sample {out} of the block has a non-finite value; "
                "mark such samples invalid (valid=False) or drop them"
            )
        return out

    @property
    def bias_dps(self) -> npt.NDArray[np.float64]:
        """Current gyro-bias estimate (°/s), shape (3,)."""
        return np.asarray(_orientation.bias(self._state), dtype=np.float64) / _DEG

    def seed_bias_dps(self, bias_dps: npt.ArrayLike, sd_dps: float = 0.05) -> None:
        """Start the bias estimate from a separate capture (calibration.gyro_bias_at_rest).

        ``sd_dps`` is how far the capture may be off; the filter keeps refining from there.
        With ``sd_dps`` small enough, movements are carried by the gyroscope alone from the
        start (see the settings' ``movement_reject_bias_sd_dps``).
        """
        bias = np.asarray(bias_dps, dtype=np.float64)
        if bias.shape != (3,) or not np.isfinite(bias).all():
            raise ValueError(f"bias_dps must be 3 finite values in °/s, got {bias_dps!r}")
        if not (math.isfinite(sd_dps) and sd_dps > 0):
            raise ValueError(f"sd_dps must be positive, got {sd_dps!r}")
        limit = self._settings.bias_limit_dps
        if np.any(np.abs(bias) > limit):
            raise ValueError(f"bias_dps {bias.tolist()} exceeds bias_limit_dps ({limit:g} °/s)")
        self._kernel.set_bias(*(bias * _DEG), (sd_dps * _DEG) ** 2)

    @property
    def rest(self) -> bool:
        """True when rest was detected at the last processed sample."""
        return bool(_orientation.rest(self._state))

    @property
    def quaternion(self) -> npt.NDArray[np.float64]:
        """The current estimate [w, x, y, z] (what the next held sample would output)."""
        return np.asarray(self._kernel.hold(), dtype=np.float64)

    def copy(self) -> OrientationFilter:
        """An independent filter with a deep copy of the current state."""
        twin = object.__new__(OrientationFilter)
        twin._rate_hz = self._rate_hz
        twin._settings = self._settings
        twin._coeffs = self._coeffs.copy()
        twin._state = self._state.copy()
        twin._kernel = _orientation.Kernel(twin._coeffs, twin._state)
        return twin


def _lowpass_coefficients(time_constant_s: float, rate_hz: float) -> tuple[float, ...]:
    """b0, b1, b2, a1, a2 of the 2nd-order Butterworth with the VQF time-constant convention."""
    cutoff_hz = time_constant_cutoff_hz(time_constant_s)
    # At very low rates the cutoff can pass Nyquist: then the signal needs no smoothing at all.
    cutoff_hz = min(cutoff_hz, 0.45 * rate_hz)
    b0, b1, b2, _a0, a1, a2 = butterworth_lowpass_sos(2, cutoff_hz, rate_hz)[0]
    return (float(b0), float(b1), float(b2), float(a1), float(a2))


def _coefficients(rate_hz: float, s: OrientationSettings) -> npt.NDArray[np.float64]:
    ts_s = 1.0 / rate_hz
    slow_n = max(1, round(rate_hz / s.correction_rate_hz))
    slow_rate_hz = rate_hz / slow_n
    bias_v = (BIAS_DRIFT_SD_DPS * _DEG) ** 2 * (slow_n * ts_s) / s.bias_forgetting_time_s

    def steady_weight(sd_dps: float) -> float:
        # Measurement variance W for which the scalar Kalman filter with process noise V
        # settles at variance p: p = (p + V)·W / (p + V + W)  =>  W = p²/V + p.
        p = (sd_dps * _DEG) ** 2
        return p * p / bias_v + p

    w_motion = steady_weight(s.bias_motion_sd_dps)
    coeffs = np.zeros(_orientation.COEFFS_SIZE, dtype=np.float64)
    _orientation.fill_coeffs(
        coeffs,
        {
            "ts_s": ts_s,
            "slow_n": float(slow_n),
            "acc_ba": _lowpass_coefficients(s.accel_time_constant_s, slow_rate_hz),
            "acc_init_n": float(max(1, round(s.accel_time_constant_s * slow_rate_hz))),
            "rest_ba": _lowpass_coefficients(s.rest_filter_time_constant_s, rate_hz),
            "rest_init_n": float(max(1, round(s.rest_filter_time_constant_s * rate_hz))),
            "rest_gyro_th": s.rest_gyro_threshold_dps * _DEG,
            "rest_acc_th": s.rest_accel_threshold_g,
            "rest_min_n": float(max(1, round(s.rest_min_duration_s * rate_hz))),
            "bias_limit": s.bias_limit_dps * _DEG,
            "bias_p0": (s.bias_initial_sd_dps * _DEG) ** 2,
            "bias_v": bias_v,
            "w_motion": w_motion,
            "w_track": steady_weight(s.bias_tracking_sd_dps),
            # Acquisition's own horizontal steady state (two axes at bias_motion_sd_dps).
            "track_exit_var": 2.0 * (s.bias_motion_sd_dps * _DEG) ** 2,
            "w_vertical": w_motion / s.bias_vertical_forgetting_factor,
            "w_rest": steady_weight(s.bias_rest_sd_dps),
            "motion_bias_on": s.motion_bias_estimation,
            "rest_bias_on": s.rest_bias_estimation,
            "accel_reject": s.accel_reject_g,
            # The strapdown step runs half a sample ahead of instantaneous samples (see
            # _orientation.pyx); for period means it is exact.
            "predict_s": s.gyro_delay_s - (0.0 if s.gyro_rate_is_period_mean else 0.5 / rate_hz),
            "gap_reset_n": float(max(1, round(s.gap_reset_s * rate_hz))),
            "move_on": s.movement_start_dps * _DEG,
            "move_off": min(s.movement_end_dps, s.movement_start_dps) * _DEG,
            "move_max_n": float(round(s.movement_max_reject_s * rate_hz)),
            "move_always": s.movement_reject_always,
            "move_bias_sd": s.movement_reject_bias_sd_dps * _DEG,
            "quiet_n": float(round(s.motion_bias_quiet_s * rate_hz)),
        },
    )
    return coeffs
