"""OrientationFilter: accuracy (synthetic known answers, BROAD trial 07), streaming, API."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import Broad, smooth_rates_dps, synthetic_motion
from hypothesis import given
from hypothesis import strategies as st
from spinecoach.core.angles import heading_free_error_deg, inclination_deg
from spinecoach.core.orientation import OrientationFilter, OrientationSettings
from spinecoach.errors import DataFormatError

#: Synthetic gyroscopes have no internal low-pass, so no group delay to compensate.
NO_DELAY = OrientationSettings(gyro_rate_is_period_mean=True, gyro_delay_s=0.0)


def test_rotation_about_x_at_known_rate_tilts_z_axis_by_known_angle() -> None:
    rate_hz = 200.0
    still = np.zeros((600, 3))
    turn = np.tile([90.0, 0.0, 0.0], (200, 1))  # 90 °/s for 1 s: +90° about x
    hold = np.zeros((100, 3))
    motion = synthetic_motion(rate_hz, np.concatenate([still, turn, hold]))
    filt = OrientationFilter(rate_hz, NO_DELAY)
    q = filt.update(motion.gyro_dps, motion.accel_g)
    incl = inclination_deg(q)
    assert incl[599] == pytest.approx(0.0, abs=1e-6)
    assert incl[699] == pytest.approx(45.0, abs=0.05)
    assert incl[-1] == pytest.approx(90.0, abs=0.05)
    # The x axis stays horizontal while turning about it; a right-hand turn lifts +y to up.
    assert np.abs(inclination_deg(q[600:], (1.0, 0.0, 0.0)) - 90.0).max() < 0.05
    assert inclination_deg(q[-1], (0.0, 1.0, 0.0))[0] == pytest.approx(0.0, abs=0.05)


def test_tumbling_motion_from_a_tilted_start_is_tracked() -> None:
    rate_hz = 100.0
    rates = smooth_rates_dps(rate_hz, 60.0, seed=3, peak_dps=400.0)
    rates[:300] = 0.0  # 3 s still at the start
    q0 = np.array([0.9, 0.3, -0.2, 0.25])
    motion = synthetic_motion(rate_hz, rates, tuple(q0 / np.linalg.norm(q0)))
    q = OrientationFilter(rate_hz, NO_DELAY).update(motion.gyro_dps, motion.accel_g)
    err = heading_free_error_deg(q, motion.q_true)
    # The filter levels on the first accelerometer sample, then the low-pass starts as a
    # running mean: the inclination is right from the first output on.
    assert err.max() < 0.05


def test_gyro_bias_is_estimated_at_rest_and_kept_through_motion() -> None:
    rate_hz = 100.0
    bias = (0.8, -0.5, 0.3)
    rates = smooth_rates_dps(rate_hz, 90.0, seed=5, peak_dps=200.0)
    rates[:1000] = 0.0
    motion = synthetic_motion(rate_hz, rates, bias_dps=bias)
    filt = OrientationFilter(rate_hz, NO_DELAY)
    filt.update(motion.gyro_dps[:1000], motion.accel_g[:1000])
    assert filt.rest
    np.testing.assert_allclose(filt.bias_dps, bias, atol=0.02)
    q = filt.update(motion.gyro_dps[1000:], motion.accel_g[1000:])
    assert not filt.rest
    np.testing.assert_allclose(filt.bias_dps, bias, atol=0.1)
    assert heading_free_error_deg(q, motion.q_true[1000:]).max() < 0.5


def test_seeded_bias_is_used_from_the_first_sample() -> None:
    rate_hz = 100.0
    bias = (1.2, -0.6, 0.9)
    motion = synthetic_motion(rate_hz, smooth_rates_dps(rate_hz, 20.0, seed=6, peak_dps=300.0), bias_dps=bias)
    filt = OrientationFilter(rate_hz, NO_DELAY)
    filt.seed_bias_dps(bias, sd_dps=0.01)
    np.testing.assert_allclose(filt.bias_dps, bias, atol=1e-12)
    q = filt.update(motion.gyro_dps, motion.accel_g)
    assert heading_free_error_deg(q, motion.q_true).max() < 0.05
    np.testing.assert_allclose(filt.bias_dps, bias, atol=0.05)
    with pytest.raises(ValueError, match="bias_limit_dps"):
        filt.seed_bias_dps((5.0, 0.0, 0.0))


def test_motion_bias_estimation_learns_bias_without_rest() -> None:
    rate_hz = 100.0
    bias = (1.0, -0.7, 0.0)
    rates = smooth_rates_dps(rate_hz, 240.0, seed=9, peak_dps=150.0)
    motion = synthetic_motion(rate_hz, rates, bias_dps=bias)
    without = OrientationFilter(rate_hz, OrientationSettings(motion_bias_estimation=False, gyro_delay_s=0.0))
    with_est = OrientationFilter(rate_hz, NO_DELAY)
    err_without = heading_free_error_deg(without.update(motion.gyro_dps, motion.accel_g), motion.q_true)
    err_with = heading_free_error_deg(with_est.update(motion.gyro_dps, motion.accel_g), motion.q_true)
    assert np.linalg.norm(with_est.bias_dps - bias) < 0.25
    assert math.sqrt(np.mean(err_with[-6000:] ** 2)) < 0.5 * math.sqrt(np.mean(err_without[-6000:] ** 2))


def test_gyro_group_delay_is_compensated() -> None:
    rate_hz = 1000.0
    rates = smooth_rates_dps(rate_hz, 10.0, seed=4, peak_dps=500.0)
    rates[:1000] *= np.linspace(0.0, 1.0, 1000)[:, None]  # start at rest: nothing lost at the start
    motion = synthetic_motion(rate_hz, rates)
    # The chip's internal low-pass delays both sensors by 3 ms (3 samples).
    gyro = np.concatenate([np.zeros((3, 3)), motion.gyro_dps[:-3]])
    accel = np.concatenate([np.tile(motion.accel_g[0], (3, 1)), motion.accel_g[:-3]])
    plain = OrientationFilter(rate_hz, NO_DELAY).update(gyro, accel)
    compensated = OrientationFilter(rate_hz, OrientationSettings(gyro_rate_is_period_mean=True, gyro_delay_s=0.003)).update(gyro, accel)
    err_plain = heading_free_error_deg(plain, motion.q_true)[2000:]
    err_comp = heading_free_error_deg(compensated, motion.q_true)[2000:]
    assert np.sqrt(np.mean(err_comp**2)) < 0.1 * np.sqrt(np.mean(err_plain**2))


def test_broad_trial_07_inclination_rmse_at_most_one_degree(broad: Broad) -> None:
    q = OrientationFilter(broad.rate_hz).update(broad.gyro_dps, broad.accel_g)
    err = heading_free_error_deg(q[broad.evaluate], broad.q_ref[broad.evaluate])
    rmse_deg = math.sqrt(float(np.mean(err**2)))
    assert rmse_deg <= 1.0, f"BROAD 07 inclination RMSE {rmse_deg:.3f}° > 1.0°"


_STREAM = synthetic_motion(
    100.0, smooth_rates_dps(100.0, 30.0, seed=11, peak_dps=300.0), bias_dps=(0.4, 0.1, -0.2)
)
_VALID = np.ones(_STREAM.gyro_dps.shape[0], dtype=bool)
_VALID[[5, 700, 701, 702, 1500, 2999]] = False
_VALID[2000:2030] = False  # a gap long enough to restart the low-passes


def _whole() -> tuple[np.ndarray, OrientationFilter]:
    filt = OrientationFilter(100.0)
    return filt.update(_STREAM.gyro_dps, _STREAM.accel_g, _VALID), filt


_WHOLE_Q, _WHOLE_FILTER = _whole()


@given(st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=40))
def test_blocks_of_any_size_give_bit_identical_output(sizes: list[int]) -> None:
    filt = OrientationFilter(100.0)
    n = _STREAM.gyro_dps.shape[0]
    parts, start, k = [], 0, 0
    while start < n:
        stop = min(n, start + sizes[k % len(sizes)])
        parts.append(filt.update(_STREAM.gyro_dps[start:stop], _STREAM.accel_g[start:stop], _VALID[start:stop]))
        start, k = stop, k + 1
    assert np.concatenate(parts).tobytes() == _WHOLE_Q.tobytes()
    assert filt.bias_dps.tobytes() == _WHOLE_FILTER.bias_dps.tobytes()
    assert filt.rest == _WHOLE_FILTER.rest


def test_invalid_samples_hold_the_state() -> None:
    filt = OrientationFilter(100.0)
    q1 = filt.update(_STREAM.gyro_dps[:500], _STREAM.accel_g[:500])
    garbage = np.full((5, 3), np.nan)
    held = filt.update(garbage, garbage, np.zeros(5, dtype=bool))
    assert np.all(held == q1[-1])
    assert filt.quaternion.tobytes() == q1[-1].tobytes()


def test_short_hole_is_bridged_with_the_next_rate() -> None:
    rate_hz = 100.0
    rates = np.tile([40.0, -25.0, 60.0], (400, 1))  # constant rate: bridging is exact
    motion = synthetic_motion(rate_hz, rates)
    valid = np.ones(400, dtype=bool)
    valid[200:205] = False  # shorter than gap_reset_s (10 samples at 100 Hz)
    whole = OrientationFilter(rate_hz, NO_DELAY).update(motion.gyro_dps, motion.accel_g)
    holed = OrientationFilter(rate_hz, NO_DELAY).update(motion.gyro_dps, motion.accel_g, valid)
    assert np.all(holed[200:205] == holed[199])
    assert heading_free_error_deg(holed[205:], whole[205:]).max() < 1e-3
    assert heading_free_error_deg(holed[205:], motion.q_true[205:]).max() < 0.01


def test_long_gap_relevels_at_once() -> None:
    rate_hz = 100.0
    motion = synthetic_motion(rate_hz, smooth_rates_dps(rate_hz, 40.0, seed=8, peak_dps=200.0))
    valid = np.ones(motion.gyro_dps.shape[0], dtype=bool)
    valid[2000:2050] = False  # half a second lost while turning
    errors = {}
    for name, gap_reset_s in (("restart", 0.1), ("no restart", 10.0)):
        filt = OrientationFilter(rate_hz, OrientationSettings(gyro_rate_is_period_mean=True, gyro_delay_s=0.0, gap_reset_s=gap_reset_s))
        q = filt.update(motion.gyro_dps, motion.accel_g, valid)
        errors[name] = heading_free_error_deg(q, motion.q_true)
    # Bridging half a second with one rate leaves tilt that takes seconds to decay ...
    assert errors["no restart"][2050:2060].min() > 1.0
    assert errors["no restart"][2150:2200].max() > 1.0
    # ... while a restart re-levels on the first sample after the gap.
    assert errors["restart"][2050:2300].max() < 0.1


def test_copy_is_independent() -> None:
    filt = OrientationFilter(100.0)
    filt.update(_STREAM.gyro_dps[:800], _STREAM.accel_g[:800])
    twin = filt.copy()
    a = filt.update(_STREAM.gyro_dps[800:900], _STREAM.accel_g[800:900])
    b = twin.update(_STREAM.gyro_dps[800:900], _STREAM.accel_g[800:900])
    assert a.tobytes() == b.tobytes()
    twin.update(np.ones((10, 3)) * 100.0, np.ones((10, 3)))
    assert not np.array_equal(filt.quaternion, twin.quaternion)
    assert np.array_equal(filt.quaternion, a[-1])


def test_empty_block_returns_empty() -> None:
    assert OrientationFilter(50.0).update(np.zeros((0, 3)), np.zeros((0, 3))).shape == (0, 4)


@pytest.mark.parametrize(
    ("gyro", "accel", "valid", "message"),
    [
        (np.zeros((5, 2)), np.zeros((5, 3)), None, "gyro_dps must have shape"),
        (np.zeros((5, 3)), np.zeros(5), None, "accel_g must have shape"),
        (np.zeros((5, 3)), np.zeros((4, 3)), None, "has 5 samples but accel_g has 4"),
        (np.zeros((5, 3)), np.zeros((5, 3)), np.ones(4, bool), r"valid must have shape \(5,\)"),
    ],
)
def test_bad_shapes_are_refused(gyro, accel, valid, message) -> None:
    with pytest.raises(ValueError, match=message):
        OrientationFilter(100.0).update(gyro, accel, valid)


def test_non_finite_valid_sample_is_refused_with_its_index() -> None:
    gyro = np.zeros((5, 3))
    gyro[3, 1] = np.inf
    with pytest.raises(DataFormatError, match="sample 3"):
        OrientationFilter(100.0).update(gyro, np.tile([0.0, 0.0, 1.0], (5, 1)))


@pytest.mark.parametrize("rate", [0.0, -5.0, math.nan])
def test_bad_rate_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="rate_hz"):
        OrientationFilter(rate)


def test_bad_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="accel_time_constant_s"):
        OrientationSettings(accel_time_constant_s=0.0)


@pytest.mark.parametrize("rate_hz", [25.0, 1000.0])
def test_low_and_high_rates_track_motion(rate_hz: float) -> None:
    rates = smooth_rates_dps(rate_hz, 20.0, seed=2, peak_dps=200.0)
    motion = synthetic_motion(rate_hz, rates)
    q = OrientationFilter(rate_hz, NO_DELAY).update(motion.gyro_dps, motion.accel_g)
    assert heading_free_error_deg(q, motion.q_true)[int(3 * rate_hz):].max() < 0.05


@pytest.mark.soak
def test_soak_one_hour_of_tumbling_with_dropped_samples_stays_accurate() -> None:
    rate_hz = 200.0
    filt = OrientationFilter(rate_hz, NO_DELAY)
    q_last = (1.0, 0.0, 0.0, 0.0)
    worst = 0.0
    rng = np.random.default_rng(21)
    for minute in range(60):
        rates = smooth_rates_dps(rate_hz, 60.0, seed=100 + minute, peak_dps=250.0)
        motion = synthetic_motion(rate_hz, rates, q_last, bias_dps=(0.3, -0.2, 0.1))
        valid = rng.random(rates.shape[0]) > 0.001  # isolated dropped samples
        q = filt.update(motion.gyro_dps, motion.accel_g, valid)
        assert np.isfinite(q).all()
        np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-12)
        if minute:
            worst = max(worst, float(heading_free_error_deg(q[valid], motion.q_true[valid]).max()))
        q_last = tuple(motion.q_true[-1])
    assert worst < 0.2
    np.testing.assert_allclose(filt.bias_dps[:2], (0.3, -0.2), atol=0.05)
