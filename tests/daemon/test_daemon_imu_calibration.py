"""The IMU calibration through the daemon: the accelerometer from one still pose per face of a
box (the simulated chip's own offset recovered), and the zero pose of a tilted mounting applied
to the angles at once; both stored and in force after a restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from daemon_helpers import SCENARIO, DaemonThread, LineClient, wait_for
from spinecoach.acquisition.sim_rig import IMU_ADDRESSES, build_sim_rig
from spinecoach.acquisition.source import SamplerSource
from spinecoach.backend import Backend
from spinecoach.core.imu_calibration import ImuCalibration
from spinecoach.daemon import measurement_pipeline
from spinecoach.drivers.sim.poses import still_poses, tilted_rig

#: The trunk IMU strapped on pitched forward by this much (°): upright reads this flexion.
MOUNT_PITCH_DEG = 8.0
KEY = "MPU-6050:trunk"


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "run" / "hub.sock"


def _rig_source(signal: Any) -> SamplerSource:
    rig = build_sim_rig(SCENARIO)
    rig.chips[IMU_ADDRESSES[0]].signal = signal
    return SamplerSource(rig.sampler(pace_realtime=True), "calibration rig", {}, bus=rig.bus)


def _box(backend: Backend) -> SamplerSource:
    """The scenario's trunk chip resting on the six faces of a box, one after the other."""
    return _rig_source(BOX.signal)


def _tilted(backend: Backend) -> SamplerSource:
    """The scenario's athlete (upright and still for 3 s) with the trunk IMU strapped on tilted."""
    rig = build_sim_rig(SCENARIO).scenario.rig
    return _rig_source(tilted_rig(rig, "trunk", (MOUNT_PITCH_DEG, 0.0, 0.0)).imu_signal("trunk"))


BOX = still_poses(build_sim_rig(SCENARIO).scenario.rig, "trunk", hold_s=1.5, turn_s=0.4,
                  start_s=0.5)


def _frame_after(client: LineClient, t_s: float) -> dict[str, Any]:
    return client.read_until(lambda m: m["type"] == "frame" and m["t_s"] >= t_s, timeout_s=10.0)


def _ack(client: LineClient) -> dict[str, Any]:
    return client.read_until(lambda m: m["type"] == "ack", timeout_s=5.0)


def test_box_faces_calibrate_the_accelerometer(sock_path: Path, state_dir: Path) -> None:
    daemon = DaemonThread(sock_path, backend="hardware", open_source=_box).start()
    try:
        client = LineClient(sock_path)
        answers = []
        for k, (_, end_s) in enumerate(BOX.still_s):
            _frame_after(client, end_s - 0.4)  # the last second then lies within the pose
            client.send("calibrate", step="imu_pose")
            answers.append(_ack(client))
            if k == 0:  # the same face again is refused, the run goes on
                client.send("calibrate", step="imu_pose")
                again = _ack(client)
                assert not again["ok"] and "captured already as pose 1" in again["message"]
        client.close()
        assert all(a["ok"] for a in answers), answers
        assert "pose 1 captured (+x up); still to capture: -x up, +y up, -y up, +z up, -z up" \
            in answers[0]["message"]
        assert "accelerometer calibrated from 6 poses and applied" in answers[-1]["message"]
        session_streams = daemon.daemon.session._streams  # the restarted session's table
        trunk = next(s for s in session_streams if s.name == "trunk")
    finally:
        daemon.stop()
    true_offset = build_sim_rig(SCENARIO).scenario.imu_signal("trunk").accel_bias_g
    stored = json.loads((state_dir / "calibration.hardware.json").read_text())
    offset = stored["accelerometers"][KEY]["offset_g"]
    # the chip's codes are 1/16384 g: the fit lands within a couple of mg of the true offset
    np.testing.assert_allclose(offset, true_offset, atol=0.002)
    assert ImuCalibration.from_stream(trunk).accel_offset_g == pytest.approx(offset)


def test_zero_pose_makes_the_tilted_upright_read_zero(sock_path: Path, state_dir: Path) -> None:
    daemon = DaemonThread(sock_path, backend="hardware", open_source=_tilted)
    daemon.daemon._pipeline_factory = measurement_pipeline  # the real pipeline: real angles
    daemon.start()
    try:
        client = LineClient(sock_path)
        client.send("select_exercise", name="banded_good_morning")
        assert _ack(client)["ok"]
        before = _frame_after(client, 2.0)["angle_deg"]
        assert before == pytest.approx(-MOUNT_PITCH_DEG, abs=1.0)  # the mounting's tilt
        client.send("calibrate", step="zero_pose")
        answer = _ack(client)
        assert answer["ok"] and "zero pose applied" in answer["message"], answer
        assert "mounting tilted 8." in answer["message"]
        after = _frame_after(client, 2.9)["angle_deg"]
        assert after == pytest.approx(0.0, abs=0.5)
        client.close()
    finally:
        daemon.stop()
    stored = json.loads((state_dir / "calibration.hardware.json").read_text())
    assert stored["alignments"][KEY]["zero_accel_g"] is not None

    # A restarted daemon starts with the zero pose in force.
    again = DaemonThread(sock_path, backend="hardware", open_source=_tilted)
    again.daemon._pipeline_factory = measurement_pipeline
    again.start()
    try:
        client = LineClient(sock_path)
        client.send("select_exercise", name="banded_good_morning")
        assert _ack(client)["ok"]
        assert _frame_after(client, 1.5)["angle_deg"] == pytest.approx(0.0, abs=0.5)
        assert wait_for(lambda: again.daemon.alignment) is not None
        client.close()
    finally:
        again.stop()
