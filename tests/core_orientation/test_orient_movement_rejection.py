"""OrientationFilter's rejection of movement acceleration: a hinge whose accelerometer sees the
tangential and centripetal acceleration of a sensor 0.45 m from the pivot."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from conftest import Motion, smooth_rates_dps, synthetic_motion
from hypothesis import given, settings
from hypothesis import strategies as st
from spinecoach.core.angles import heading_free_error_deg
from spinecoach.core.orientation import OrientationFilter, OrientationSettings

G0_MPS2 = 9.80665
LEVER_M = 0.45
#: Upright: sensor +x (up the spine) vertical, i.e. -90° about +y from the earth frame.
UPRIGHT = (math.cos(-math.pi / 4), 0.0, math.sin(-math.pi / 4), 0.0)
#: Without rest the bias stays unknown and the rejection off (plain VQF) unless told otherwise.
NO_DELAY = OrientationSettings(gyro_rate_is_period_mean=True, gyro_delay_s=0.0)
REJECTING = OrientationSettings(gyro_rate_is_period_mean=True, gyro_delay_s=0.0, movement_reject_always=True)
PLAIN = OrientationSettings(gyro_rate_is_period_mean=True, gyro_delay_s=0.0, movement_max_reject_s=0.0)


def hinge(rate_hz: float, moves: list[tuple[float, float, float]],
          sway_deg: Callable[[np.ndarray], np.ndarray] | None = None) -> Motion:
    """Trunk flexion about sensor +y through minimum-jerk moves (pause_s, to_deg, duration_s),
    1 s still at the end; the sensor sits LEVER_M up the spine from the hip (the pivot).
    ``sway_deg(t_s)``, when given, is added to the flexion angle (postural sway)."""
    angle, theta = [], 0.0
    for pause_s, to_deg, duration_s in moves + [(1.0, 0.0, 0.0)]:
        angle.append(np.full(round(pause_s * rate_hz), theta))
        tau = np.arange(1, round(duration_s * rate_hz) + 1) / (duration_s * rate_hz)
        angle.append(theta + (to_deg - theta) * (10 * tau**3 - 15 * tau**4 + 6 * tau**5))
        theta = to_deg if duration_s > 0 else theta
    theta_deg = np.concatenate(angle)
    if sway_deg is not None:
        theta_deg = theta_deg + sway_deg(np.arange(theta_deg.size) / rate_hz)
    theta_rad = np.radians(theta_deg)
    # The rate that takes each sample's angle to the next (constant over the period), so the
    # integrated attitude is the scripted angle exactly.
    omega = np.diff(theta_rad, prepend=theta_rad[0]) * rate_hz
    alpha = np.gradient(omega, 1.0 / rate_hz)
    rates = np.zeros((theta_rad.size, 3))
    rates[:, 1] = np.degrees(omega)
    motion = synthetic_motion(rate_hz, rates, UPRIGHT)
    # Acceleration of the sensor point in sensor axes: alpha x r + omega x (omega x r) with
    # r = (LEVER_M, 0, 0) and the rotation about +y: tangential along -z, centripetal along -x.
    linear = np.stack([-(omega**2) * LEVER_M, np.zeros_like(omega), -alpha * LEVER_M], axis=1)
    return Motion(rate_hz, motion.gyro_dps, motion.accel_g + linear / G0_MPS2, motion.q_true)


def test_the_gyroscope_carries_a_brisk_hinge_exactly() -> None:
    rate_hz = 200.0
    motion = hinge(rate_hz, [(3.0, 85.0, 1.3), (4.0, 30.0, 0.8), (4.0, 0.0, 1.5)])
    errors = {}
    for name, s in (("plain", PLAIN), ("rejecting", REJECTING)):
        q = OrientationFilter(rate_hz, s).update(motion.gyro_dps, motion.accel_g)
        errors[name] = heading_free_error_deg(q, motion.q_true)
    # Movement acceleration through the 2 s low-pass tilts plain VQF by up to 0.84° ...
    assert errors["plain"].max() > 0.5
    # ... while the gyroscope alone (with a known bias) carries the movements: what is left
    # (measured 0.09°) is the velocity the sensor has gained below 5 °/s and lost below
    # 2.5 °/s, which the low-pass still sees.
    assert errors["rejecting"].max() < 0.12


def test_a_seeded_bias_switches_the_rejection_on() -> None:
    rate_hz = 200.0
    motion = hinge(rate_hz, [(3.0, 85.0, 1.3), (2.0, 0.0, 1.3)])
    seeded = OrientationFilter(rate_hz, NO_DELAY)
    seeded.seed_bias_dps((0.0, 0.0, 0.0), sd_dps=0.02)
    err = heading_free_error_deg(seeded.update(motion.gyro_dps, motion.accel_g), motion.q_true)
    assert err.max() < 0.12  # measured 0.10°
    plain = OrientationFilter(rate_hz, PLAIN).update(motion.gyro_dps, motion.accel_g)
    assert heading_free_error_deg(plain, motion.q_true).max() > 0.5  # measured 1.08°


def test_a_bias_learnt_at_rest_switches_the_rejection_on() -> None:
    """A gyro bias of 0.5 °/s: 4 s still are enough for the bias filter to vouch for its
    estimate (horizontal SD under 0.1 °/s), 3 s are not."""
    rate_hz = 200.0
    errors = {}
    for still_s in (3.0, 4.0):
        motion = hinge(rate_hz, [(still_s, 85.0, 1.3), (2.0, 0.0, 1.3)])
        gyro = motion.gyro_dps + np.array([0.5, -0.3, 0.2])
        q = OrientationFilter(rate_hz, NO_DELAY).update(gyro, motion.accel_g)
        errors[still_s] = heading_free_error_deg(q, motion.q_true)[round(still_s * rate_hz):]
    assert errors[3.0].max() > 0.8  # measured 1.07°: plain VQF
    assert errors[4.0].max() < 0.2  # measured 0.14°


def test_long_movement_is_corrected_after_the_time_bound() -> None:
    """A gyro bias the filter does not know (seeded wrong) during 40 s of tumbling: left out
    without bound, the accelerometer never corrects the drift; bounded, it does after 3 s."""
    rate_hz = 100.0
    rates = smooth_rates_dps(rate_hz, 40.0, seed=12, peak_dps=200.0) + 30.0  # never slow
    motion = synthetic_motion(rate_hz, rates, bias_dps=(0.6, -0.6, 0.4))
    errors = {}
    for name, max_s in (("bounded", 3.0), ("unbounded", 1e6)):
        s = OrientationSettings(gyro_rate_is_period_mean=True, gyro_delay_s=0.0, movement_max_reject_s=max_s,
                                motion_bias_estimation=False)
        filt = OrientationFilter(rate_hz, s)
        filt.seed_bias_dps((0.0, 0.0, 0.0))
        errors[name] = heading_free_error_deg(filt.update(motion.gyro_dps, motion.accel_g),
                                              motion.q_true)
    assert errors["unbounded"][-1000:].max() > 5.0
    assert errors["bounded"][-1000:].max() < 2.0


def test_rejection_off_is_plain_vqf() -> None:
    rate_hz = 100.0
    motion = hinge(rate_hz, [(2.0, 60.0, 1.0), (1.0, 0.0, 1.0)])
    off = OrientationSettings(gyro_rate_is_period_mean=True, gyro_delay_s=0.0, movement_reject_always=True,
                              movement_max_reject_s=0.0)
    a = OrientationFilter(rate_hz, off).update(motion.gyro_dps, motion.accel_g)
    b = OrientationFilter(rate_hz, OrientationSettings(gyro_rate_is_period_mean=True, gyro_delay_s=0.0,
                                                       movement_reject_bias_sd_dps=1e-9))
    b = b.update(motion.gyro_dps, motion.accel_g)
    assert a.tobytes() == b.tobytes()


_HINGES = hinge(100.0, [(1.0, 80.0, 1.2), (0.5, 10.0, 4.0), (2.0, 90.0, 0.6), (0.2, 0.0, 0.7)])
_VALID = np.ones(_HINGES.gyro_dps.shape[0], dtype=bool)
_VALID[[40, 150, 151, 600]] = False
_VALID[300:320] = False  # a gap that restarts the low-passes mid-movement
_WHOLE = OrientationFilter(100.0, REJECTING).update(_HINGES.gyro_dps, _HINGES.accel_g, _VALID)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=30))
def test_rejecting_filter_in_blocks_equals_one_block(sizes: list[int]) -> None:
    filt = OrientationFilter(100.0, REJECTING)
    n = _HINGES.gyro_dps.shape[0]
    parts, start, k = [], 0, 0
    while start < n:
        stop = min(n, start + sizes[k % len(sizes)])
        parts.append(filt.update(_HINGES.gyro_dps[start:stop], _HINGES.accel_g[start:stop],
                                 _VALID[start:stop]))
        start, k = stop, k + 1
    assert np.concatenate(parts).tobytes() == _WHOLE.tobytes()
