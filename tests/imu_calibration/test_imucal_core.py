"""The IMU calibration: validation, application, JSON round trip, the accelerometer fit on still
poses (synthetic and the simulated chips) and the zero-pose alignment of a tilted mounting."""

from __future__ import annotations

import json

import numpy as np
import pytest
from spinecoach.core.angles import quaternion_to_matrix
from spinecoach.core.calibration import CalibrationError
from spinecoach.core.imu_calibration import (
    IDENTITY,
    ImuCalibration,
    calibrations_of,
    fit_accelerometer,
    still_pose,
    with_accelerometer,
    zero_pose_alignment,
)
from spinecoach.drivers.blocks import StreamInfo
from spinecoach.drivers.sim.poses import FACE_POSES, MountedMotion, still_poses, tilted_rig
from spinecoach.drivers.sim.scenarios import build_scenario

FACES = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)


def _about_y(deg: float) -> tuple[float, float, float, float]:
    half = np.radians(deg) / 2
    return (float(np.cos(half)), 0.0, float(np.sin(half)), 0.0)


def test_identity_changes_nothing_and_defaults_compare_equal() -> None:
    gyro = np.arange(12, dtype=float).reshape(4, 3)
    accel = gyro / 10
    g, a = IDENTITY.apply(gyro, accel)
    np.testing.assert_array_equal(g, gyro)
    np.testing.assert_array_equal(a, accel)
    assert ImuCalibration().is_identity
    assert not ImuCalibration(gyro_bias_dps=(0.1, 0, 0)).is_identity
    # the same rotation with the other sign, and a slightly unnormalised one, are one value
    assert ImuCalibration(mount_wxyz=(-1.0, 0.0, 0.0, 0.0)).is_identity
    assert ImuCalibration(mount_wxyz=(1.0004, 0.0, 0.0, 0.0)).is_identity


@pytest.mark.parametrize("kwargs, match", [
    ({"mount_wxyz": (0.5, 0.0, 0.0, 0.0)}, "unit quaternion"),
    ({"mount_wxyz": (1.0, 0.0, 0.0)}, "4 finite numbers"),
    ({"gyro_bias_dps": (25.0, 0.0, 0.0)}, "exceeds"),
    ({"accel_offset_g": (0.0, float("nan"), 0.0)}, "finite"),
    ({"accel_offset_g": (0.0, 0.4, 0.0)}, "exceeds"),
    ({"accel_scale": (1.0, 1.0, 0.5)}, "outside"),
    ({"accel_scale": "abc"}, "accel_scale must be 3 numbers"),
])
def test_implausible_calibrations_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ImuCalibration(**kwargs)


def test_apply_removes_the_errors_and_turns_into_the_body_frame() -> None:
    rng = np.random.default_rng(3)
    mount = ImuCalibration(mount_wxyz=_about_y(25.0)).mount_wxyz
    cal = ImuCalibration(mount, (0.5, -1.0, 0.2), (0.03, -0.02, 0.05), (1.02, 0.98, 1.01))
    body_gyro = rng.normal(size=(50, 3)) * 30
    body_accel = rng.normal(size=(50, 3))
    r = quaternion_to_matrix(np.asarray(mount))  # body -> sensor
    sensor_gyro = body_gyro @ r.T + cal.gyro_bias_dps
    sensor_accel = (body_accel @ r.T) * cal.accel_scale + cal.accel_offset_g
    gyro, accel = cal.apply(sensor_gyro, sensor_accel)
    np.testing.assert_allclose(gyro, body_gyro, atol=1e-12)
    np.testing.assert_allclose(accel, body_accel, atol=1e-12)


def test_json_round_trip_and_stream_fields() -> None:
    cal = ImuCalibration(_about_y(-7.0), (0.1, 0.2, 0.3), (0.01, -0.02, 0.005), (1.0, 1.01, 0.99))
    assert ImuCalibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    assert ImuCalibration.from_dict({}) == IDENTITY  # absent keys: identity
    with pytest.raises(ValueError, match="unknown IMU calibration keys"):
        ImuCalibration.from_dict({"offset": [0, 0, 0]})
    info = StreamInfo("trunk", "imu", 1000.0, **cal.stream_fields())
    assert ImuCalibration.from_stream(info) == cal
    # a stream table read back from JSON carries lists; the info turns them into tuples
    again = StreamInfo(**json.loads(json.dumps(info.__dict__)))
    assert again == info and hash(again) == hash(info)
    assert ImuCalibration.from_stream(StreamInfo("pelvis", "imu", 100.0)) == IDENTITY
    assert calibrations_of([info, StreamInfo("pelvis", "imu", 100.0),
                            StreamInfo("force", "force", 80.0)]) == {"trunk": cal}


def _poses(directions: np.ndarray, offset: np.ndarray, scale: np.ndarray, noise_g: float,
           seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    unit = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    return unit * scale + offset + rng.normal(scale=noise_g, size=unit.shape)


def test_fit_recovers_offset_and_scale_from_faces_and_tilted_poses() -> None:
    offset, scale = np.array([0.045, -0.03, 0.07]), np.array([1.02, 0.985, 1.01])
    rng = np.random.default_rng(1)
    extra = rng.normal(size=(6, 3))
    fit = fit_accelerometer(_poses(np.vstack([FACES, extra]), offset, scale, 3e-4))
    np.testing.assert_allclose(fit.offset_g, offset, atol=1e-3)
    np.testing.assert_allclose(fit.scale, scale, atol=1e-3)
    assert fit.rms_g < 1e-3 and len(fit.residuals_g) == 12
    # offset only (sphere of 1 g): the scale stays 1
    unit_scale = fit_accelerometer(_poses(FACES, offset, np.ones(3), 0.0), fit_scale=False)
    np.testing.assert_allclose(unit_scale.offset_g, offset, atol=1e-9)
    assert unit_scale.scale == (1.0, 1.0, 1.0)
    assert with_accelerometer(IDENTITY, fit).accel_offset_g == fit.offset_g


def test_fit_refuses_too_few_badly_spread_or_inconsistent_poses() -> None:
    offset, scale = np.array([0.02, 0.0, -0.01]), np.ones(3)
    with pytest.raises(CalibrationError, match="5 pose.*needs 6"):
        fit_accelerometer(_poses(FACES[:5], offset, scale, 0.0))
    upper = np.array([[1, 0, 1], [-1, 0, 1], [0, 1, 1], [0, -1, 1], [0, 0, 1], [1, 1, 1]], float)
    with pytest.raises(CalibrationError, match=r"none with -z up.*each face of a box"):
        fit_accelerometer(_poses(upper, offset, scale, 0.0))
    bad = _poses(np.vstack([FACES, [[1, 1, 0]]]), offset, scale, 0.0)
    bad[6] *= 1.08  # taken while the sensor was accelerating
    with pytest.raises(CalibrationError, match="pose 7 is .* mg off the fit"):
        fit_accelerometer(bad)


def test_still_pose_refuses_a_moving_sensor() -> None:
    rng = np.random.default_rng(2)
    gyro = rng.normal(scale=0.05, size=(500, 3))
    accel = np.tile([0.0, 0.0, 1.0], (500, 1)) + rng.normal(scale=0.005, size=(500, 3))
    pose = still_pose(gyro, accel)
    assert pose.accel_g == pytest.approx((0, 0, 1), abs=1e-3) and pose.samples == 500
    turning = gyro + np.linspace(0, 20, 500)[:, None]
    with pytest.raises(CalibrationError, match="not still"):
        still_pose(turning, accel)
    shaken = accel + np.sin(np.arange(500) / 5)[:, None] * 0.1
    with pytest.raises(CalibrationError, match="not still"):
        still_pose(gyro, shaken)
    with pytest.raises(CalibrationError, match="at least 10 samples"):
        still_pose(gyro[:3], accel[:3])


@pytest.mark.parametrize("name", ["back_extension_holds", "sorensen_hold", "good_morning_tempo"])
def test_fit_on_the_simulated_chip_finds_its_true_offset(name: str) -> None:
    sc = build_scenario(name)
    session = still_poses(sc.rig, "trunk")
    assert session.names == tuple(FACE_POSES)
    poses = [still_pose(*session.capture(k)) for k in range(len(session.names))]
    fit = fit_accelerometer([p.accel_g for p in poses])
    chip = sc.imu_signal("trunk")  # read only to check the fit, never to make it
    np.testing.assert_allclose(fit.offset_g, chip.accel_bias_g, atol=0.002)
    np.testing.assert_allclose(fit.scale, 1.0, atol=0.002)
    np.testing.assert_allclose(poses[0].gyro_dps, chip.gyro_bias_dps, atol=0.05)


def test_zero_pose_alignment_undoes_a_tilted_mounting() -> None:
    sc = build_scenario("good_morning_tempo")  # upright and still for the first seconds
    rig = tilted_rig(sc.rig, "trunk", (8.0, -5.0, 0.0))
    signal = rig.imu_signal("trunk")
    t = np.arange(500, 1500) / 1000.0
    gyro, accel = signal(t)
    box = still_poses(rig, "trunk")
    fit = fit_accelerometer([still_pose(*box.capture(k)).accel_g for k in range(6)])
    accel_only = with_accelerometer(IDENTITY, fit)
    cal = ImuCalibration(zero_pose_alignment(accel.mean(axis=0), accel_only),
                         accel_offset_g=fit.offset_g, accel_scale=fit.scale)
    _, body = cal.apply(gyro, accel)
    up = body.mean(axis=0)
    tilt_deg = np.degrees(np.arccos(up[0] / np.linalg.norm(up)))
    assert tilt_deg < 0.05  # upright: body +x straight up (sway included)
    motion = rig.imus["trunk"].motion
    assert isinstance(motion, MountedMotion)
    # the alignment found is the mounting's tilt: sensor x in body axes
    r = quaternion_to_matrix(np.asarray(cal.mount_wxyz))
    np.testing.assert_allclose(r @ [1, 0, 0], motion.mount_matrix() @ [1, 0, 0], atol=5e-3)
    with pytest.raises(CalibrationError, match="stand still upright"):
        zero_pose_alignment([0.0, 0.0, 0.1])


def test_pipeline_applies_an_explicit_or_a_carried_calibration_before_anything_else() -> None:
    from spinecoach.core.pipeline import Pipeline
    from spinecoach.core.results import MotionSettings

    sc = build_scenario("good_morning_tempo")
    rig = tilted_rig(sc.rig, "trunk", (6.0, 3.0, -2.0))
    t = np.arange(12000) / 1000.0
    gyro, accel = rig.imu_signal("trunk")(t)
    cal = ImuCalibration(zero_pose_alignment(accel[500:1500].mean(axis=0)),
                         tuple(gyro[500:1500].mean(axis=0)), (0.01, -0.02, 0.005))
    info = StreamInfo("trunk", "imu", 1000.0)
    motion = MotionSettings(primary_axis=(0.0, 1.0, 0.0), eccentric_sign=1)

    def run(streams: list, data: tuple, **kwargs) -> list:
        p = Pipeline(streams, motion, **kwargs)
        for k in range(0, len(t), 250):  # blocks, with the calibration applied per block
            p.feed_imu("trunk", np.arange(k, k + 250), data[0][k:k + 250], data[1][k:k + 250])
        return [(r.start_s, r.end_s, r.rom_deg) for r in p.finish().reps]

    pre_applied = run([info], cal.apply(gyro, accel))
    assert len(pre_applied) == 1  # the first rep of the set
    assert run([info], (gyro, accel), imu_calibration={"trunk": cal}) == pre_applied
    carried = StreamInfo("trunk", "imu", 1000.0, **cal.stream_fields())
    assert run([carried], (gyro, accel)) == pre_applied
    # an explicit identity overrides what the stream carries: raw samples, other reps
    assert run([carried], (gyro, accel), imu_calibration={"trunk": IDENTITY}) \
        == run([info], (gyro, accel)) != pre_applied
