"""Calibration: tare refusal, least-squares scale, zero tracking, gyro bias, mounting alignment."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import quat_from_rotvec, quat_mul
from hypothesis import given
from hypothesis import strategies as st
from spinecoach.core.angles import primary_angle_deg, quaternion_conjugate, quaternion_to_matrix
from spinecoach.core.calibration import (
    CalibrationError,
    GyroBiasSettings,
    ZeroTracker,
    fit_scale,
    gyro_bias_at_rest,
    mounting_alignment,
    tare,
)
from spinecoach.errors import SpinecoachError

RATE_HZ = 320.0
N_PER_COUNT = 0.01  # 100 counts per newton
RNG = np.random.default_rng(1)


def counts_for(force_n: np.ndarray, offset_counts: float = 84_000.0) -> np.ndarray:
    return offset_counts + np.asarray(force_n) / N_PER_COUNT


def test_tare_averages_the_quietest_window() -> None:
    force = np.concatenate([RNG.normal(0, 20, 200), RNG.normal(1.5, 0.5, 640)])  # swinging, then still
    result = tare(counts_for(force), RATE_HZ, N_PER_COUNT)
    assert result.window_start >= 200
    assert result.offset_counts == pytest.approx(84_000.0 + 1.5 / N_PER_COUNT, abs=10)
    assert result.sd_n == pytest.approx(0.5, rel=0.15)


def test_tare_refuses_an_unsteady_rig() -> None:
    with pytest.raises(CalibrationError, match="not steady"):
        tare(counts_for(RNG.normal(0, 10, 640)), RATE_HZ, N_PER_COUNT)


def test_tare_refuses_a_loaded_rig_and_says_what_to_do() -> None:
    loaded = counts_for(RNG.normal(150.0, 0.5, 640))
    with pytest.raises(CalibrationError, match="unload it") as info:
        tare(loaded, RATE_HZ, N_PER_COUNT, previous_offset_counts=84_000.0)
    assert isinstance(info.value, SpinecoachError) and isinstance(info.value, ValueError)
    ok = tare(counts_for(RNG.normal(4.0, 0.5, 640)), RATE_HZ, N_PER_COUNT, previous_offset_counts=84_000.0)
    assert ok.offset_counts == pytest.approx(84_400.0, abs=10)


def test_tare_needs_a_full_window() -> None:
    with pytest.raises(CalibrationError, match="record for longer"):
        tare(counts_for(np.zeros(100)), RATE_HZ, N_PER_COUNT)


def test_scale_with_tare_and_one_load() -> None:
    fit = fit_scale([84_000.0 + 20_000.0], [200.0], offset_counts=84_000.0)
    assert fit.n_per_count == pytest.approx(0.01)
    assert fit.residuals_n == pytest.approx((0.0,), abs=1e-9)
    assert fit.force_n([94_000.0])[0] == pytest.approx(100.0)


def test_scale_least_squares_over_several_loads_reports_residuals() -> None:
    loads = np.array([0.0, 98.1, 196.1, 294.2, 392.3])
    noise = np.array([3.0, -5.0, 4.0, -2.0, 0.0])
    counts = 50_000.0 + loads / 0.0125 + noise
    fit = fit_scale(counts, loads)
    assert fit.n_per_count == pytest.approx(0.0125, rel=1e-3)
    assert fit.offset_counts == pytest.approx(50_000.0, abs=5.0)
    assert len(fit.residuals_n) == 5
    assert 0.0 < fit.rms_residual_n < 0.1
    np.testing.assert_allclose(fit.residuals_n, fit.force_n(counts) - loads)


def test_scale_refuses_degenerate_points() -> None:
    with pytest.raises(CalibrationError, match="two different known loads"):
        fit_scale([1000.0], [50.0])
    with pytest.raises(CalibrationError, match="differs from the zero"):
        fit_scale([1000.0], [50.0], offset_counts=1000.0)
    with pytest.raises(ValueError, match="one value per point"):
        fit_scale([1.0, 2.0], [1.0])


def test_zero_tracking_follows_drift_only_when_unloaded_and_still_for_five_seconds() -> None:
    rate = 100.0
    t = np.arange(int(60 * rate)) / rate
    drift = 0.1 * t  # 0.1 N/s thermal drift
    force = drift + RNG.normal(0, 0.3, t.size)
    force[1000:1300] += 200.0  # a pull at 10..13 s
    tracker = ZeroTracker(rate)
    corrected, tracking = tracker.update(force)
    assert not tracking[:499].any() and tracking[499]  # tracking from the 500th quiet sample (5 s)
    assert tracking[600:1000].all()
    # Loaded, then settling (the stillness low-pass forgets the pull within about 2 s), then
    # 5 s of quiet again before tracking resumes.
    assert not tracking[1000:1800].any()
    assert tracking[2100:].all()
    # The pull is measured against the zero from before it, not absorbed into it.
    assert np.mean(corrected[1050:1300]) == pytest.approx(200.0, abs=2.0)
    assert abs(np.mean(corrected[-500:])) < 1.5
    assert tracker.zero_n == pytest.approx(drift[-1], abs=1.5)


def test_zero_tracking_never_moves_under_a_steady_load() -> None:
    tracker = ZeroTracker(100.0)
    corrected, tracking = tracker.update(150.0 + RNG.normal(0, 0.2, 3000))
    assert not tracking.any() and tracker.zero_n == 0.0
    assert np.mean(corrected) == pytest.approx(150.0, abs=0.05)


_FORCE = np.concatenate([RNG.normal(0, 0.3, 900), np.full(200, 120.0), 0.05 * np.arange(1200) / 100])


@given(st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=20))
def test_zero_tracking_blocks_equal_whole(sizes: list[int]) -> None:
    whole, whole_flags = ZeroTracker(100.0).update(_FORCE)
    tracker = ZeroTracker(100.0)
    parts, start, k = [], 0, 0
    while start < _FORCE.size:
        stop = min(_FORCE.size, start + sizes[k % len(sizes)])
        parts.append(tracker.update(_FORCE[start:stop]))
        start, k = stop, k + 1
    assert np.concatenate([p[0] for p in parts]).tobytes() == whole.tobytes()
    assert np.array_equal(np.concatenate([p[1] for p in parts]), whole_flags)


def test_gyro_bias_at_rest_and_refusal_when_moving() -> None:
    still = np.array([0.4, -0.7, 0.15]) + RNG.normal(0, 0.05, (1000, 3))
    moving = 30.0 * np.sin(np.arange(1000) / 20.0)[:, None] * np.ones(3)
    bias = gyro_bias_at_rest(np.concatenate([moving[:300], still]), 200.0)
    np.testing.assert_allclose(bias.bias_dps, [0.4, -0.7, 0.15], atol=0.01)
    with pytest.raises(CalibrationError, match="not still"):
        gyro_bias_at_rest(moving, 200.0)
    with pytest.raises(CalibrationError, match="not still"):
        gyro_bias_at_rest(np.full((1000, 3), 20.0), 200.0, GyroBiasSettings(max_bias_dps=5.0))


def _rot(rotvec_deg) -> np.ndarray:
    return quat_from_rotvec(np.radians(np.atleast_2d(rotvec_deg)))[0]


def _pose(body_to_earth: np.ndarray, mount: np.ndarray) -> np.ndarray:
    """Sensor orientation for a body orientation and a mounting (sensor->body = mount)."""
    return quat_mul(body_to_earth, mount)


UPRIGHT_BODY = _rot([0.0, -90.0, 0.0])  # body +x (spine) up


def test_alignment_from_two_poses_recovers_an_arbitrary_mounting() -> None:
    mount = _rot([25.0, -40.0, 70.0])  # maps sensor vectors into the body frame
    heading = _rot([0.0, 0.0, 33.0])
    zero = _pose(quat_mul(heading, UPRIGHT_BODY), mount)
    flexed_body = quat_mul(quat_mul(heading, UPRIGHT_BODY), _rot([0.0, 30.0, 0.0]))
    q_align = mounting_alignment(zero, _pose(flexed_body, mount))
    # q_align maps body vectors into the sensor frame: it is the inverse of the mounting.
    np.testing.assert_allclose(
        quaternion_to_matrix(q_align), quaternion_to_matrix(quaternion_conjugate(mount)), atol=1e-9
    )
    # Flexion of the aligned body then reads as the common convention (+ about body y).
    for flex in (10.0, 45.0, 80.0):
        body = quat_mul(quat_mul(heading, UPRIGHT_BODY), _rot([0.0, flex, 0.0]))
        aligned = quat_mul(_pose(body, mount), q_align)
        angle = primary_angle_deg(np.array([aligned]), np.array([0, 1.0, 0]), zero_q=quat_mul(zero, q_align))
        assert angle[0] == pytest.approx(flex, abs=1e-6)


def test_alignment_from_zero_pose_alone_fixes_the_tilt() -> None:
    mount = _rot([0.0, 20.0, 0.0])  # sensor tilted 20° on the back
    zero = _pose(UPRIGHT_BODY, mount)
    q_align = mounting_alignment(zero)
    aligned = quat_mul(zero, q_align)
    up = quaternion_to_matrix(aligned).T @ np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(up, [1.0, 0.0, 0.0], atol=1e-9)


def test_alignment_refuses_a_second_pose_too_close() -> None:
    zero = _pose(UPRIGHT_BODY, _rot([0.0, 0.0, 0.0]))
    nearly = _pose(quat_mul(UPRIGHT_BODY, _rot([0.0, 3.0, 0.0])), _rot([0.0, 0.0, 0.0]))
    with pytest.raises(CalibrationError, match="bend forward"):
        mounting_alignment(zero, nearly)
