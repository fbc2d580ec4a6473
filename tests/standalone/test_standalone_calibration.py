"""The stored calibration wherever the sensors are used (the standalone coach, `spinecoach
record`), and the calibration wizard's steps in the standalone coach, on the simulated rig."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from spinecoach.backend import Backend
from spinecoach.band_profile import BandCapture
from spinecoach.cli import main
from spinecoach.config import load_config
from spinecoach.core.metrics import force_angle_curve
from spinecoach.engine.reader import StoreReader
from spinecoach.hub.messages import Frame, Hello, State
from spinecoach.recording.load import load_recording
from spinecoach.rig_calibration import CalibrationFile
from spinecoach.tui.launch import default_catalogue, live_feed
from standalone_helpers import (
    FORCE_KEY,
    SCENARIO,
    SIM_N_PER_COUNT,
    TRUNK_KEY,
    StageRun,
    mean,
    mounting_about_y,
    write_calibration,
)

#: The stored calibration the tests start from: the load cell reads twice its own scale, the
#: trunk sensor sits 30° about its +y axis (so the upright rest reads about 30° of flexion).
DOUBLE_SCALE = 2 * SIM_N_PER_COUNT
TILT_DEG = 30.0


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state"
    monkeypatch.setenv("SPINECOACH_STATE_DIR", str(path))
    return path


def rest_values(run: StageRun, start_s: float, end_s: float) -> tuple[float, float]:
    """Mean force (N) and angle (°) of the frames between two sample times (athlete at rest)."""
    run.run_until(start_s)
    frames = run.run_until(end_s)
    return mean([f.force_n for f in frames]), mean([f.angle_deg for f in frames])


def test_the_standalone_session_measures_with_the_stored_calibration(state_dir: Path) -> None:
    plain = StageRun(state_dir)
    try:
        force_plain, angle_plain = rest_values(plain, 1.0, 2.5)
    finally:
        plain.close()
    write_calibration(state_dir, n_per_count=DOUBLE_SCALE, tilt_deg=TILT_DEG)
    calibrated = StageRun(state_dir)
    try:
        force, angle = rest_values(calibrated, 1.0, 2.5)
    finally:
        calibrated.close()
    assert force_plain > 100  # the band's preload
    assert force == pytest.approx(2 * force_plain, rel=0.02)
    assert angle - angle_plain == pytest.approx(TILT_DEG, abs=1.5)


def test_the_standalone_wizard_steps_work_as_through_the_daemon(state_dir: Path) -> None:
    path = write_calibration(state_dir, n_per_count=DOUBLE_SCALE, tilt_deg=TILT_DEG)
    run = StageRun(state_dir)
    try:
        hello = run.messages[0]
        assert isinstance(hello, Hello) and "band_profile" in hello.features
        doubled, tilted = rest_values(run, 0.5, 1.4)
        assert tilted == pytest.approx(TILT_DEG, abs=3.0)

        # Known weight: the band's preload named as what it is, so the scale comes back to the
        # load cell's own; the session restarts on it at once.
        known = run.send("calibrate", step="known_weight", mass_kg=doubled / 2 / 9.80665)
        assert known.ok and "N/count from 1 known weight" in known.message, known
        assert any(isinstance(m, State) and m.set_state == "done" for m in run.messages)
        force, _ = rest_values(run, 1.5, 2.0)
        assert force == pytest.approx(doubled / 2, rel=0.03)

        tare = run.send("tare")
        assert tare.ok and tare.message.startswith("load cell zeroed"), tare
        force, _ = rest_values(run, 2.1, 2.5)
        assert abs(force) < 3.0

        # Zero pose: the sensor really sits upright on the simulated trunk, so the stored 30°
        # mounting gives way to the measured one and the rest reads 0° again.
        zero = run.send("calibrate", step="zero_pose")
        assert zero.ok and zero.message.startswith("zero pose applied"), zero
        _, angle = rest_values(run, 2.6, 2.95)
        assert abs(angle) < 1.5

        # A box pose: the athlete's sway is no box at rest, refused as through the daemon.
        pose = run.send("calibrate", step="imu_pose")
        assert not pose.ok and "the sensor was not still" in pose.message, pose

        stored = CalibrationFile(path).load()
        assert stored.forces[FORCE_KEY].n_per_count == pytest.approx(SIM_N_PER_COUNT, rel=0.03)
        assert stored.forces[FORCE_KEY].offset_counts > 100_000
        assert stored.alignments[TRUNK_KEY].quaternion != tuple(mounting_about_y(TILT_DEG))

        assert run.send("start_set").ok
        run.run_until(3.1)  # the set begins with the next samples
        refused = run.send("tare")
        assert not refused.ok and "stop the set first" in refused.message
    finally:
        run.close()


def test_a_quick_lift_fills_every_band_profile_bin_of_its_range(state_dir: Path) -> None:
    """The scenario's first rep comes up ~85° in 1 s: at the 30 Hz frame rate that is ~3° a
    frame, more than a 2° bin, so frames alone leave gaps; the full-rate capture does not."""
    run = StageRun(state_dir)
    try:
        run.run_until(2.5)
        assert run.send("calibrate", step="band_profile", name="red band").ok
        frames = run.run_until(8.6)
        stored = run.send("calibrate", step="band_profile")
    finally:
        run.close()
    assert stored.ok and stored.message.startswith("band profile stored: red band: "), stored
    profile = run.calibrator.record.bands["banded_good_morning/red band"]
    edges = [edge for edge, _ in profile.concentric]
    assert edges[-1] - edges[0] >= 60
    assert edges == list(np.arange(edges[0], edges[-1] + 1, profile.bin_deg))
    # The standalone coach on the simulated rig lists the rig's profiles (not the sensors').
    listed = default_catalogue(load_config([]), backend_kind="sim").band_profiles()
    assert [p.key for p in listed] == [profile.key]
    assert default_catalogue(load_config([])).band_profiles() == []
    lifting = [f for f in frames if f.phase == "concentric"]
    by_frames = force_angle_curve([f.angle_deg for f in lifting], [f.force_n for f in lifting])
    assert len(by_frames) < len(edges) - 5  # the frames' curve has holes where this has none


def test_record_uses_and_records_the_stored_calibration(state_dir: Path, tmp_path: Path) -> None:
    args = ["--backend", f"sim:{SCENARIO}", "--seconds", "1.5", "--seed", "3"]
    assert main(["record", str(tmp_path / "plain.screc"), *args]) == 0
    write_calibration(state_dir, n_per_count=DOUBLE_SCALE, tilt_deg=TILT_DEG)
    assert main(["record", str(tmp_path / "calibrated.screc"), *args]) == 0
    plain = load_recording(tmp_path / "plain.screc")
    calibrated = load_recording(tmp_path / "calibrated.screc")
    force = calibrated.force["force"]
    assert force.info.force_n_per_count == pytest.approx(DOUBLE_SCALE)
    assert np.mean(force.force_n) == pytest.approx(2 * np.mean(plain.force["force"].force_n),
                                                   rel=0.02)
    trunk = calibrated.imu["trunk"].info
    assert trunk.mount_wxyz == pytest.approx(mounting_about_y(TILT_DEG))
    assert plain.imu["trunk"].info.mount_wxyz == (1.0, 0.0, 0.0, 0.0)


def test_a_headless_session_stores_its_sets_with_the_stored_calibration(state_dir: Path) -> None:
    write_calibration(state_dir, n_per_count=DOUBLE_SCALE, tilt_deg=TILT_DEG)
    assert main(["session", "--backend", f"sim:{SCENARIO}", "--headless"]) == 0
    with StoreReader(state_dir) as reader:
        stored = reader.recording(1)
    assert stored.force["force"].info.force_n_per_count == pytest.approx(DOUBLE_SCALE)
    assert stored.imu["trunk"].info.mount_wxyz == pytest.approx(mounting_about_y(TILT_DEG))
    assert np.mean(stored.force["force"].force_n[:160]) > 250  # at rest: twice the ~150 N preload


def readout_line(capsys: pytest.CaptureFixture[str]) -> tuple[float, float]:
    """Trunk angle (°) and force (N) of `spinecoach readout`'s last line."""
    assert main(["readout", "--backend", f"sim:{SCENARIO}", "--fast", "--seconds", "1.6"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    angle = re.search(r"trunk\s+([-+][0-9.]+)°", last)
    force = re.search(r"force\s+([-0-9.]+) N", last)
    assert angle is not None and force is not None, last
    return float(angle.group(1)), float(force.group(1))


def test_the_readout_shows_calibrated_values(state_dir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    angle_plain, force_plain = readout_line(capsys)
    write_calibration(state_dir, n_per_count=DOUBLE_SCALE, tilt_deg=TILT_DEG)
    angle, force = readout_line(capsys)
    assert force == pytest.approx(2 * force_plain, rel=0.03)
    assert angle - angle_plain == pytest.approx(TILT_DEG, abs=1.5)


def test_the_standalone_coach_feed_loads_the_stored_calibration(state_dir: Path) -> None:
    write_calibration(state_dir, n_per_count=DOUBLE_SCALE, tilt_deg=TILT_DEG)
    feed = live_feed(Backend.parse(f"sim:{SCENARIO}"))
    frames: list[Frame] = []
    feed.start()
    try:
        for _ in range(400):
            frames += [m for m in feed.poll() if isinstance(m, Frame) and m.angle_deg is not None]
            if len(frames) >= 15:
                break
            feed._stop.wait(0.05)
    finally:
        feed.close()
    assert feed.error is None and len(frames) >= 15
    assert mean([f.force_n for f in frames]) > 250  # twice the ~150 N preload
    assert mean([f.angle_deg for f in frames]) == pytest.approx(TILT_DEG, abs=3.0)


@pytest.mark.parametrize("command", ["record", "coach", "session", "readout"])
def test_an_unreadable_calibration_file_is_one_line_and_a_failure(
        command: str, state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_calibration(state_dir, n_per_count=DOUBLE_SCALE, tilt_deg=TILT_DEG)
    path.write_text('{"forces": {"NAU7802:force": {"n_per_count": "lots"}}', encoding="utf-8")
    argv = {"record": [command, str(tmp_path / "out.screc")],
            "session": [command, "--headless"],
            "readout": [command, "--fast"]}.get(command, [command])
    assert main([*argv, "--backend", f"sim:{SCENARIO}"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"calibration file {path} is unreadable" in err and "calibrate again" in err
    assert not (tmp_path / "out.screc").exists()


def test_the_pipeline_reports_full_rate_samples_only_while_someone_listens(
        state_dir: Path) -> None:
    run = StageRun(state_dir)
    try:
        run.run_until(0.5)
        session = run.stage.session
        assert session is not None
        pipeline = session._idle_pipeline
        assert getattr(pipeline, "on_samples", "missing") is None  # nothing spent on it
        capture = BandCapture("banded_good_morning")
        session.listen(capture)
        run.run_until(1.5)
        assert 950 <= capture.samples_kept <= 1050  # 1 s of the trunk IMU's 1 kHz
        session.listen(None)
        assert getattr(pipeline, "on_samples", "missing") is None
        run.run_until(2.0)
        assert capture.samples_kept <= 1050
    finally:
        run.close()
