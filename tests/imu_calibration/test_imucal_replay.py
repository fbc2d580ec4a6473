"""Live and replay measure the same angles: a session run with an IMU calibration stores the
calibration with its set, the native file and the interchange CSV carry it, and every replay
path (``history --replay-set``'s ``verify_set``, ``analyze``) applies it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from spinecoach.analysis import analyze_recording
from spinecoach.config import load_config
from spinecoach.core.imu_calibration import (
    IDENTITY,
    ImuCalibration,
    fit_accelerometer,
    still_pose,
    with_accelerometer,
    zero_pose_alignment,
)
from spinecoach.drivers.blocks import StreamInfo
from spinecoach.drivers.sim.poses import still_poses, tilted_rig
from spinecoach.drivers.sim.scenarios import build_scenario
from spinecoach.engine.library import load_library
from spinecoach.engine.reader import StoreReader
from spinecoach.engine.session import verify_set
from spinecoach.engine.store import Store, db_path
from spinecoach.errors import DataFormatError
from spinecoach.hub.messages import Command, Frame
from spinecoach.hub.session import HubSession, SessionChoice, calibrated_streams
from spinecoach.recording.interchange import read_csv, write_csv
from spinecoach.recording.model import ForceStream, ImuStream, Recording
from spinecoach.recording.native import read_native, write_native

SECONDS = 14.0
MOUNT_DEG = (7.0, -4.0, 0.0)


@pytest.fixture(scope="module")
def tilted_session() -> tuple[Recording, ImuCalibration]:
    """14 s of a banded good morning with the trunk IMU strapped on tilted, and the calibration
    a physiotherapist would make: six box faces, then the zero pose (first second, upright)."""
    sc = build_scenario("good_morning_tempo")
    rig = tilted_rig(sc.rig, "trunk", MOUNT_DEG)
    box = still_poses(rig, "trunk")
    fit = fit_accelerometer([still_pose(*box.capture(k)).accel_g for k in range(6)])
    t = np.arange(int(SECONDS * 1000)) / 1000.0
    gyro, accel = rig.imu_signal("trunk")(t)
    upright = slice(500, 1500)
    accel_only = with_accelerometer(IDENTITY, fit)
    calibration = ImuCalibration(
        zero_pose_alignment(accel[upright].mean(axis=0), accel_only),
        tuple(gyro[upright].mean(axis=0)), fit.offset_g, fit.scale)
    tf = np.arange(int(SECONDS * 320)) / 320.0
    trunk = StreamInfo("trunk", "imu", 1000.0, chip="MPU-6050")
    force = StreamInfo("force", "force", 320.0, chip="NAU7802")
    recording = Recording(
        imu={"trunk": ImuStream(trunk, np.arange(len(t)), gyro, accel, np.ones(len(t), bool))},
        force={"force": ForceStream(force, np.arange(len(tf)), rig.force_signal()(tf),
                                    np.ones(len(tf), bool))},
        meta={"exercise": "banded_good_morning"})
    return recording, calibration


def _angles(session: HubSession, recording: Recording) -> list[float | None]:
    session.start()
    assert session.handle(Command("start_set"))[0].ok
    frames = [m for b in recording.blocks(0.02) for m in session.process(b)
              if isinstance(m, Frame)]
    session.finish()
    return [f.angle_deg for f in frames]


def _session(streams: list[StreamInfo], store: Store | None = None,
             calibration: dict[str, ImuCalibration] | None = None) -> HubSession:
    return HubSession(streams, "hardware", SessionChoice("Sam", "banded_good_morning"),
                      library=load_library(), store=store, imu_calibration=calibration)


def test_the_stored_set_replays_to_the_live_figures(tilted_session, tmp_path: Path) -> None:
    recording, calibration = tilted_session
    store = Store(db_path(tmp_path))
    live = _angles(_session(recording.streams, store, {"trunk": calibration}), recording)
    assert store.close()
    reader = StoreReader(tmp_path)
    (row,) = reader.sets()
    stored = reader.recording(row.id).streams
    assert ImuCalibration.from_stream(stored[0]) == calibration
    # history --replay-set: the engine on the stored raw samples gives the stored figures
    assert verify_set(reader, row, load_config([])) == []
    # standing upright for the first 3 s: 0° with the calibration, the mounting tilt without
    upright = [a for a in live[5:80] if a is not None]
    assert max(abs(a) for a in upright) < 1.0
    raw = _angles(_session(recording.streams), recording)
    assert np.median([a for a in raw[5:80] if a is not None]) == pytest.approx(
        -MOUNT_DEG[0], abs=1.5)


def test_native_file_and_csv_carry_the_calibration(tilted_session, tmp_path: Path) -> None:
    recording, calibration = tilted_session
    calibrated = Recording(
        imu={"trunk": ImuStream(calibrated_streams([recording.imu["trunk"].info],
                                                   {"trunk": calibration})[0],
                                *(getattr(recording.imu["trunk"], f) for f in
                                  ("index", "gyro_dps", "accel_g", "valid")))},
        force=recording.force, meta=recording.meta)
    live = _angles(_session(recording.streams, None, {"trunk": calibration}), recording)
    native = read_native(write_native(calibrated, tmp_path / "set.screc"))
    assert ImuCalibration.from_stream(native.imu["trunk"].info) == calibration
    assert _angles(_session(native.streams), native) == live  # replay: no calibration passed
    csv = read_csv(write_csv(calibrated, tmp_path / "set.csv"))
    assert ImuCalibration.from_stream(csv.imu["trunk"].info) == calibration
    doc = analyze_recording(native, "banded_good_morning")
    assert doc["streams"]["trunk"]["imu_calibration"] == calibration.to_dict()
    from_csv = analyze_recording(csv, "banded_good_morning")["reps"]
    assert len(from_csv) == len(doc["reps"]) >= 2
    for a, b in zip(from_csv, doc["reps"]):  # the CSV keeps 7 decimals of every value
        assert a["start_s"] == pytest.approx(b["start_s"], abs=1e-3)
        assert a["rom_deg"] == pytest.approx(b["rom_deg"], abs=1e-3)
    uncalibrated = analyze_recording(recording, "banded_good_morning")
    assert "imu_calibration" not in uncalibrated["streams"]["trunk"]
    # older files (no calibration fields) read as the identity, and a broken one is refused
    sidecar = tmp_path / "set.csv.json"
    sidecar.write_text(sidecar.read_text().replace('"accel_scale"', '"accel_scal"'))
    with pytest.raises(DataFormatError, match="imu_calibration: unknown IMU calibration keys"):
        read_csv(tmp_path / "set.csv")
