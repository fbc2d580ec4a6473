"""The gyro bias's SD: measured by the box poses (the sensor at true rest), carried by the
calibration, its stream description, recordings and the calibration file, and used by the
pipeline to start the orientation filter with the bias as known; never for a zero pose's bias."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from spinecoach.core.imu_calibration import (
    IDENTITY,
    ImuCalibration,
    StillPose,
    box_gyro_bias,
    fit_accelerometer,
    still_pose,
)
from spinecoach.core.orientation import OrientationFilter
from spinecoach.core.pipeline import MIN_SEED_BIAS_SD_DPS, Pipeline
from spinecoach.core.results import MotionSettings
from spinecoach.drivers.blocks import ImuBlock, StreamInfo
from spinecoach.drivers.sim.poses import still_poses
from spinecoach.drivers.sim.scenarios import build_scenario
from spinecoach.recording.interchange import read_csv, write_csv
from spinecoach.recording.model import ImuStream, Recording
from spinecoach.recording.native import encode_header, read_native, write_native
from spinecoach.rig_calibration import (
    AccelCalibration,
    AccelPoseRun,
    Alignment,
    CalibrationFile,
    CalibrationRecord,
    SampleWindow,
)

BOX = ImuCalibration(gyro_bias_dps=(0.4, -0.2, 0.1), accel_offset_g=(0.01, 0.0, -0.02),
                     accel_scale=(1.01, 0.99, 1.0), gyro_bias_sd_dps=0.003)


def _pose(gyro_dps: tuple[float, float, float], sd_dps: float = 0.1,
          samples: int = 1000) -> StillPose:
    return StillPose((0.0, 0.0, 1.0), gyro_dps, samples, (sd_dps, sd_dps, sd_dps))


def test_box_bias_sd_is_the_larger_standard_error_of_the_mean() -> None:
    # equal pose means: only the samples' scatter, 0.1 °/s over 6 × 1000 samples
    bias, sd = box_gyro_bias([_pose((0.5, 0.0, -0.5))] * 6)
    assert bias == pytest.approx((0.5, 0.0, -0.5))
    assert sd == pytest.approx(0.1 / np.sqrt(6000))
    # pose means that disagree (e.g. the gyro's sensitivity to gravity): their scatter counts
    alternating = [_pose((0.1 * (k % 2), 0.0, 0.0)) for k in range(6)]
    bias, sd = box_gyro_bias(alternating)
    assert bias[0] == pytest.approx(0.05)
    assert sd == pytest.approx(np.std([0.0, 0.1] * 3, ddof=1) / np.sqrt(6))
    with pytest.raises(ValueError, match="at least 2 still poses"):
        box_gyro_bias([_pose((0.0, 0.0, 0.0))])


def test_box_bias_of_the_simulated_chip_is_within_its_sd() -> None:
    session = still_poses(build_scenario("back_extension_holds").rig, "trunk")
    poses = [still_pose(*session.capture(k)) for k in range(len(session.names))]
    bias, sd = box_gyro_bias(poses)
    # the chip's true bias over the captured samples (constant part plus its slow walk)
    times = np.concatenate([np.arange(np.ceil(a * session.rate_hz), np.floor(b * session.rate_hz))
                            / session.rate_hz for a, b in session.still_s])
    truth = session.signal.bias_dps(times).mean(axis=0)
    # measured: 0.0021 °/s, errors within 1.1 SD
    assert 0.0005 < sd < 0.01
    assert np.abs(np.asarray(bias) - truth).max() < 3 * sd


def test_the_sd_field_is_checked_and_kept_out_of_json_when_unknown() -> None:
    assert IDENTITY.gyro_bias_sd_dps is None
    assert "gyro_bias_sd_dps" not in BOX.__class__(gyro_bias_dps=(0.1, 0, 0)).to_dict()
    assert BOX.to_dict()["gyro_bias_sd_dps"] == 0.003
    assert ImuCalibration.from_dict(json.loads(json.dumps(BOX.to_dict()))) == BOX
    assert ImuCalibration.from_dict({"gyro_bias_sd_dps": None}) == IDENTITY
    # a known SD of a zero bias is information (the bias is known to be 0): not the identity
    assert not ImuCalibration(gyro_bias_sd_dps=0.0).is_identity
    for bad in (-0.01, float("nan"), 25.0, "x"):
        with pytest.raises(ValueError, match="gyro_bias_sd_dps"):
            ImuCalibration(gyro_bias_sd_dps=bad)  # type: ignore[arg-type]
    info = StreamInfo("trunk", "imu", 1000.0, **BOX.stream_fields())
    assert info.gyro_bias_sd_dps == 0.003 and ImuCalibration.from_stream(info) == BOX


def _recording(info: StreamInfo) -> Recording:
    n = 200
    rng = np.random.default_rng(5)
    gyro = rng.normal(scale=0.1, size=(n, 3))
    accel = np.tile([1.0, 0.0, 0.0], (n, 1)) + rng.normal(scale=0.001, size=(n, 3))
    return Recording(imu={"trunk": ImuStream(info, np.arange(n), gyro, accel,
                                             np.ones(n, bool))})


def test_recordings_carry_the_sd_and_write_streams_without_it_as_before(tmp_path: Path) -> None:
    info = StreamInfo("trunk", "imu", 1000.0, chip="MPU-6050", **BOX.stream_fields())
    native = read_native(write_native(_recording(info), tmp_path / "set.screc"))
    assert native.imu["trunk"].info == info
    csv = read_csv(write_csv(_recording(info), tmp_path / "set.csv"))
    assert ImuCalibration.from_stream(csv.imu["trunk"].info) == BOX
    sidecar = json.loads((tmp_path / "set.csv.json").read_text())
    assert sidecar["streams"]["trunk"]["imu_calibration"]["gyro_bias_sd_dps"] == 0.003
    # without an SD (uncalibrated, or a zero pose's calibration) the header has no such key
    no_sd = ImuCalibration(gyro_bias_dps=(0.1, 0.0, 0.0))
    for plain in (StreamInfo("trunk", "imu", 1000.0),
                  StreamInfo("trunk", "imu", 1000.0, **no_sd.stream_fields())):
        assert b"gyro_bias_sd_dps" not in encode_header([plain], {})
        assert read_native(write_native(_recording(plain), tmp_path / "p.screc")
                           ).imu["trunk"].info == plain
    write_csv(_recording(StreamInfo("trunk", "imu", 1000.0, **no_sd.stream_fields())),
              tmp_path / "p.csv")
    assert "gyro_bias_sd_dps" not in (tmp_path / "p.csv.json").read_text()


def _box_run() -> tuple[AccelPoseRun, object]:
    session = still_poses(build_scenario("back_extension_holds").rig, "trunk")
    info = StreamInfo("trunk", "imu", session.rate_hz, chip="MPU-6050")
    run = AccelPoseRun()
    outcome = None
    for k in range(len(session.names)):
        gyro, accel = session.capture(k)
        window = SampleWindow()
        window.add(ImuBlock(info, np.arange(len(gyro)), gyro, accel, np.ones(len(gyro), bool)))
        outcome = run.add(window)
    return run, outcome


def test_box_poses_give_the_sd_and_the_file_keeps_it(tmp_path: Path) -> None:
    run, outcome = _box_run()
    assert outcome.fit is not None  # type: ignore[attr-defined]
    bias, sd = box_gyro_bias(run.poses)
    assert outcome.gyro_bias_dps == bias and outcome.gyro_bias_sd_dps == sd  # type: ignore[attr-defined]
    fit = fit_accelerometer([p.accel_g for p in run.poses])
    record = CalibrationRecord(accelerometers={
        "MPU-6050:trunk": AccelCalibration(fit.offset_g, fit.scale, bias, sd)})
    file = CalibrationFile(tmp_path / "calibration.json")
    file.save(record)
    again = file.load()
    assert again.accelerometers == record.accelerometers
    box_only = again.imu_calibration("MPU-6050:trunk")
    assert box_only.gyro_bias_sd_dps == sd and box_only.gyro_bias_dps == bias
    # the zero pose's bias (the athlete's sway in it) replaces the box's, and its SD goes too
    again.alignments["MPU-6050:trunk"] = Alignment((1.0, 0.0, 0.0, 0.0), (0.3, 0.0, 0.0))
    with_zero_pose = again.imu_calibration("MPU-6050:trunk")
    assert with_zero_pose.gyro_bias_dps == (0.3, 0.0, 0.0)
    assert with_zero_pose.gyro_bias_sd_dps is None
    zero_pose_only = CalibrationRecord(alignments={"MPU-6050:trunk": Alignment(
        (1.0, 0.0, 0.0, 0.0), (0.3, 0.0, 0.0))}).imu_calibration("MPU-6050:trunk")
    assert zero_pose_only.gyro_bias_sd_dps is None and not zero_pose_only.is_identity


def test_a_calibration_file_from_before_the_sd_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({
        "forces": {},
        "alignments": {"MPU-6050:trunk": {"quaternion": [1, 0, 0, 0],
                                          "gyro_bias_dps": [0.1, 0.2, 0.3],
                                          "zero_accel_g": None}},
        "accelerometers": {"MPU-6050:trunk": {"offset_g": [0.01, 0, 0], "scale": [1, 1, 1],
                                              "gyro_bias_dps": [0.1, 0.1, 0.1]}},
    }))
    record = CalibrationFile(path).load()
    assert record.accelerometers["MPU-6050:trunk"].gyro_bias_sd_dps is None
    assert record.imu_calibration("MPU-6050:trunk").gyro_bias_sd_dps is None


def _orientations(calibration: ImuCalibration, gyro: np.ndarray, accel: np.ndarray) -> np.ndarray:
    quats: list[np.ndarray] = []
    p = Pipeline([StreamInfo("trunk", "imu", 1000.0)], MotionSettings(primary_axis=(0, 1, 0)),
                 imu_calibration={"trunk": calibration},
                 on_orientation=lambda _name, _t, q: quats.append(q.copy()))
    p.feed_imu("trunk", np.arange(len(gyro)), gyro, accel)
    p.finish()
    return np.concatenate(quats)


def _filtered(orientation: OrientationFilter, calibration: ImuCalibration, gyro: np.ndarray,
              accel: np.ndarray) -> np.ndarray:
    """``orientation`` run as the pipeline runs it: calibrated samples, after one correction
    step held still at the first sample (the pipeline's priming)."""
    gyro, accel = calibration.apply(gyro, accel)
    n = int(np.ceil(1000.0 / orientation.settings.correction_rate_hz)) + 1
    orientation.update(np.zeros((n, 3)), np.tile(accel[0], (n, 1)))
    return orientation.update(gyro, accel)


@pytest.fixture(scope="module")
def good_morning() -> tuple[np.ndarray, np.ndarray]:
    sc = build_scenario("good_morning_tempo")
    t = np.arange(8000) / 1000.0
    return sc.imu_signal("trunk")(t)


@pytest.mark.parametrize("sd_dps", [0.003, 0.0])
def test_the_pipeline_seeds_a_bias_whose_sd_is_known(good_morning, sd_dps: float) -> None:
    gyro, accel = good_morning
    known = ImuCalibration(gyro_bias_dps=(0.1, -0.2, 0.05), gyro_bias_sd_dps=sd_dps)
    seeded = OrientationFilter(1000.0)
    # the calibration subtracts the bias: what is left for the filter is 0 ± the SD
    seeded.seed_bias_dps(np.zeros(3), max(sd_dps, MIN_SEED_BIAS_SD_DPS))
    np.testing.assert_array_equal(_orientations(known, gyro, accel),
                                  _filtered(seeded, known, gyro, accel))


def test_a_zero_pose_bias_is_not_seeded(good_morning) -> None:
    gyro, accel = good_morning
    zero_pose = ImuCalibration(gyro_bias_dps=(0.1, -0.2, 0.05))  # no SD: sway in it
    plain = _filtered(OrientationFilter(1000.0), zero_pose, gyro, accel)
    np.testing.assert_array_equal(_orientations(zero_pose, gyro, accel), plain)
    # and seeding would have changed the attitude (the test can tell the two apart)
    seeded = _orientations(ImuCalibration(gyro_bias_dps=(0.1, -0.2, 0.05),
                                          gyro_bias_sd_dps=0.003), gyro, accel)
    assert np.abs(seeded - plain).max() > 1e-4
