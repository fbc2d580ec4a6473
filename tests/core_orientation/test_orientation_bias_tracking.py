"""OrientationFilter's motion bias update: a trunk held still but swaying (postural sway, never
rest for a real, noisy sensor) with a gyro bias that walks, as a MEMS bias does within a minute.

Rest updates are switched off so only the motion update measures the bias (the synthetic
sensor has no noise, so its sway would otherwise count as rest)."""

from __future__ import annotations

import numpy as np
from spinecoach.core.angles import heading_free_error_deg
from spinecoach.core.orientation import OrientationFilter, OrientationSettings
from test_orient_movement_rejection import hinge

RATE_HZ = 200.0
MOTION_ONLY = OrientationSettings(gyro_rate_is_period_mean=True, gyro_delay_s=0.0, rest_bias_estimation=False)
#: What a box calibration gives: the bias at the start, known to 0.002 °/s.
SEED_SD_DPS = 0.002


def sway_deg(t_s: np.ndarray) -> np.ndarray:
    """Postural sway about the flexion axis: 0.25° RMS at 0.23 and 0.61 Hz (~1 °/s)."""
    return 0.3 * np.sin(2 * np.pi * 0.23 * t_s) + 0.2 * np.sin(2 * np.pi * 0.61 * t_s + 1.0)


def test_bias_estimate_follows_a_walking_bias_while_holding_under_sway() -> None:
    # Trunk lifted to horizontal and held 90 s (a Sørensen hold) while the flexion-axis bias
    # walks from 0 to 0.04 °/s.
    motion = hinge(RATE_HZ, [(1.0, 90.0, 2.0), (90.0, 90.0, 0.0)], sway_deg)
    t_s = np.arange(motion.gyro_dps.shape[0]) / RATE_HZ
    walk_dps = 0.04 * t_s / t_s[-1]
    gyro = motion.gyro_dps.copy()
    gyro[:, 1] += walk_dps
    filt = OrientationFilter(RATE_HZ, MOTION_ONLY)
    filt.seed_bias_dps((0.0, 0.0, 0.0), SEED_SD_DPS)
    err = heading_free_error_deg(filt.update(gyro, motion.accel_g), motion.q_true)
    # Measured 0.005 °/s behind the walk (with the paper's 0.1 °/s motion SD throughout, a
    # 100 s average: 0.032 °/s behind); a bias error tilts by itself × the 2 s accelerometer
    # time constant, so the last 10 s are within 0.01° (0.064° with the paper's setting).
    assert abs(filt.bias_dps[1] - walk_dps[-1]) < 0.01
    assert err[-round(10 * RATE_HZ):].max() < 0.02


def test_motion_updates_keep_the_gyroscope_trusted_for_a_movement_after_a_long_hold() -> None:
    # 60 s held horizontal under sway, then a brisk lift to 10° in 1.3 s: the movement
    # rejection needs the bias filter's horizontal SD under 0.1 °/s at the movement's start.
    # With the paper's motion SD (0.1 °/s per axis, 0.14 °/s horizontal) the motion update
    # never holds it there, so from the seed's 0.002 °/s it grows past the gate in ~50 s and
    # the lift goes through the accelerometer's low-pass: measured 0.71° off. Tracking at
    # 0.03 °/s (0.042 °/s horizontal) the gyroscope carries it: measured 0.07°.
    motion = hinge(RATE_HZ, [(1.0, 90.0, 2.0), (60.0, 10.0, 1.3), (3.0, 10.0, 0.0)], sway_deg)
    filt = OrientationFilter(RATE_HZ, MOTION_ONLY)
    filt.seed_bias_dps((0.0, 0.0, 0.0), SEED_SD_DPS)
    err = heading_free_error_deg(filt.update(motion.gyro_dps, motion.accel_g), motion.q_true)
    assert err[round(62.0 * RATE_HZ):].max() < 0.1


def test_tracking_survives_a_turn_after_a_long_hold() -> None:
    # 150 s held horizontal: the bias's vertical part goes unmeasured and its variance grows
    # (to ~0.13 °/s SD); standing upright turns it into the horizontal. Falling back to the
    # paper's weight there (acquisition settles at 0.14 °/s, above the rejection's gate) the
    # filter never vouched for the bias again and the flexion 40 s later went through the
    # low-pass: measured 0.82° off. Tracking on, it is carried by the gyroscope: 0.10°.
    rate_hz = 100.0
    motion = hinge(rate_hz, [(1.0, 90.0, 2.0), (150.0, 0.0, 2.0), (40.0, 80.0, 1.3),
                             (3.0, 80.0, 0.0)], sway_deg)
    filt = OrientationFilter(rate_hz, MOTION_ONLY)
    filt.seed_bias_dps((0.0, 0.0, 0.0), SEED_SD_DPS)
    err = heading_free_error_deg(filt.update(motion.gyro_dps, motion.accel_g), motion.q_true)
    assert err[round(195.0 * rate_hz):].max() < 0.2
