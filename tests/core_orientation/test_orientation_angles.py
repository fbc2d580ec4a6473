"""Angles from quaternions: inclination, primary angle (sign convention), excursion axis, lumbar."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import quat_from_rotvec, quat_mul
from spinecoach.core.angles import (
    heading_free_error_deg,
    inclination_deg,
    largest_excursion_axis,
    lumbar_angle_deg,
    primary_angle_deg,
    quaternion_multiply,
)

#: Trunk sensor upright: sensor +x (along the spine) points up. R_y(-90°) maps x to earth z.
UPRIGHT = quat_from_rotvec(np.array([[0.0, -np.pi / 2, 0.0]]))[0]


def _about(axis: tuple[float, float, float], angles_deg: np.ndarray) -> np.ndarray:
    return quat_from_rotvec(np.radians(angles_deg)[:, None] * np.asarray(axis, dtype=float))


def _heading(angle_deg: float) -> np.ndarray:
    return quat_from_rotvec(np.array([[0.0, 0.0, np.radians(angle_deg)]]))[0]


def test_trunk_flexion_about_sensor_y_reads_positive_and_exact() -> None:
    flexion = np.array([0.0, 10.0, 45.0, 90.0, 120.0, -20.0])
    q = np.array([quat_mul(UPRIGHT, d) for d in _about((0, 1, 0), flexion)])
    np.testing.assert_allclose(primary_angle_deg(q, np.array([0.0, 1.0, 0.0])), flexion, atol=1e-9)


def test_primary_angle_ignores_heading_and_uses_the_zero_pose() -> None:
    flexion = np.linspace(0.0, 60.0, 7)
    turned = quat_mul(_heading(137.0), UPRIGHT)
    q = np.array([quat_mul(turned, d) for d in _about((0, 1, 0), flexion)])
    angle = primary_angle_deg(q, np.array([0.0, 1.0, 0.0]), zero_q=UPRIGHT)
    np.testing.assert_allclose(angle, flexion, atol=1e-9)
    # Relative to a flexed zero pose the angle shifts by that pose's flexion.
    zero = quat_mul(UPRIGHT, _about((0, 1, 0), np.array([20.0]))[0])
    np.testing.assert_allclose(primary_angle_deg(q, np.array([0, 1.0, 0]), zero), flexion - 20.0, atol=1e-9)


def test_primary_angle_unwraps_past_half_a_turn() -> None:
    flexion = np.arange(0.0, 400.0, 5.0)
    q = np.array([quat_mul(UPRIGHT, d) for d in _about((0, 1, 0), flexion)])
    np.testing.assert_allclose(primary_angle_deg(q, np.array([0.0, 1.0, 0.0])), flexion, atol=1e-9)


def test_off_axis_tilt_does_not_leak_into_the_primary_angle() -> None:
    # Side bending about the sensor z axis (the posterior axis) does not rotate about y.
    q = np.array([quat_mul(UPRIGHT, d) for d in _about((0, 0, 1), np.array([0.0, 15.0, 30.0]))])
    np.testing.assert_allclose(primary_angle_deg(q, np.array([0.0, 1.0, 0.0])), 0.0, atol=1e-9)


def test_vertical_working_axis_at_zero_pose_is_refused() -> None:
    with pytest.raises(ValueError, match="vertical at the zero pose"):
        primary_angle_deg(np.array([UPRIGHT]), np.array([1.0, 0.0, 0.0]))


def test_inclination_of_axes() -> None:
    tilt = np.array([0.0, 30.0, 90.0, 180.0])
    q = _about((1, 0, 0), tilt)
    np.testing.assert_allclose(inclination_deg(q), tilt, atol=1e-9)
    np.testing.assert_allclose(inclination_deg(q, (1.0, 0.0, 0.0)), 90.0, atol=1e-9)
    np.testing.assert_allclose(inclination_deg(UPRIGHT, (1.0, 0.0, 0.0)), [0.0], atol=1e-9)


def test_heading_free_error_ignores_heading_and_sees_tilt() -> None:
    q = _about((1, 0, 0), np.array([0.0, 10.0, 50.0]))
    turned = quaternion_multiply(_heading(70.0), q)
    np.testing.assert_allclose(heading_free_error_deg(turned, q), 0.0, atol=1e-6)
    tilted = quaternion_multiply(quat_from_rotvec(np.array([[np.radians(3.0), 0, 0]]))[0], q)
    np.testing.assert_allclose(heading_free_error_deg(tilted, q), 3.0, atol=1e-9)


def test_largest_excursion_axis_of_a_hinge_with_noise_and_bias() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(3000) / 100.0
    gyro = np.zeros((t.size, 3))
    gyro[:, 1] = 60.0 * np.sin(2 * np.pi * 0.4 * t)
    gyro[:, 0] = 8.0 * np.sin(2 * np.pi * 1.3 * t)
    gyro += rng.normal(0.0, 1.0, gyro.shape) + np.array([0.5, -0.4, 0.3])
    axis = largest_excursion_axis(gyro)
    assert axis @ np.array([0.0, 1.0, 0.0]) > 0.99
    tilted = gyro @ np.array([[1.0, 0, 0], [0, 0.8, 0.6], [0, -0.6, 0.8]])
    np.testing.assert_allclose(largest_excursion_axis(tilted), [0.0, 0.8, 0.6], atol=0.02)


def test_largest_excursion_axis_needs_samples() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        largest_excursion_axis(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        largest_excursion_axis(np.zeros(5))


def test_lumbar_angle_is_trunk_minus_pelvis() -> None:
    np.testing.assert_allclose(lumbar_angle_deg([40.0, 50.0], [10.0, 5.0]), [30.0, 45.0])
    with pytest.raises(ValueError, match="same shape"):
        lumbar_angle_deg([1.0, 2.0], [1.0])
