"""Calibration through the daemon: known weights on a simulated load cell whose true sensitivity
differs from the driver's nominal one, the zero pose while still and while moving, the stored
calibration surviving a restart, and every step refused while a set runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from daemon_helpers import SCENARIO, DaemonThread, LineClient, wait_for
from spinecoach.acquisition.sim_rig import LOAD_CELL_ADDRESS, SIM_GAIN, build_sim_rig
from spinecoach.acquisition.source import SamplerSource
from spinecoach.backend import Backend
from spinecoach.rig_calibration import (
    STANDARD_GRAVITY_M_S2,
    Alignment,
    CalibrationFile,
    CalibrationFileError,
    CalibrationRecord,
    ForceCalibration,
)

#: The simulated bridge's true sensitivity in this test (counts per N at gain 1); the driver
#: still assumes the rig's nominal 17.11, so only a calibration finds this one.
TRUE_COUNTS_PER_N = 15.0
TRUE_N_PER_COUNT = 1.0 / (TRUE_COUNTS_PER_N * SIM_GAIN)
#: Hung masses (kg) and from when (scenario s): unloaded first, for the tare.
FIRST_MASS_KG, FIRST_FROM_S = 20.0, 2.0
SECOND_MASS_KG, SECOND_FROM_S = 10.0, 5.0


def hung_masses_n(t_s: Any) -> Any:
    t = np.asarray(t_s, dtype=np.float64)
    return np.select([t < FIRST_FROM_S, t < SECOND_FROM_S],
                     [0.0, FIRST_MASS_KG * STANDARD_GRAVITY_M_S2],
                     SECOND_MASS_KG * STANDARD_GRAVITY_M_S2)


def weights_rig(backend: Backend) -> SamplerSource:
    """The scenario's rig with known masses on a load cell of :data:`TRUE_COUNTS_PER_N`, run as
    hardware (nothing autostarts)."""
    rig = build_sim_rig(SCENARIO)
    chip = rig.chips[LOAD_CELL_ADDRESS]
    chip.signal, chip.counts_per_n = hung_masses_n, TRUE_COUNTS_PER_N
    return SamplerSource(rig.sampler(pace_realtime=True), "weights", {}, bus=rig.bus)


def rig_as_hardware(backend: Backend) -> SamplerSource:
    from spinecoach.acquisition.source import open_sim_source

    return open_sim_source(SCENARIO, realtime=True)


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "run" / "hub.sock"


def force_stream(daemon: DaemonThread) -> Any:
    return next(s for s in daemon.daemon._source.streams if s.kind == "force")


def frame_after(client: LineClient, t_s: float) -> dict[str, Any]:
    return client.read_until(lambda m: m["type"] == "frame" and m["t_s"] >= t_s, timeout_s=10.0)


def ack(client: LineClient) -> dict[str, Any]:
    return client.read_until(lambda m: m["type"] == "ack")


def test_known_weights_find_the_true_scale_and_survive_a_restart(sock_path: Path,
                                                                 state_dir: Path) -> None:
    daemon = DaemonThread(sock_path, backend="hardware", open_source=weights_rig).start()
    try:
        client = LineClient(sock_path)
        frame_after(client, 1.3)
        client.send("tare")
        assert ack(client)["ok"]
        frame_after(client, FIRST_FROM_S + 1.3)
        client.send("calibrate", step="known_weight", mass_kg=FIRST_MASS_KG)
        first = ack(client)
        assert first["ok"], first
        assert "1 known weight" in first["message"]
        n_per_count = float(first["message"].split("scale ")[1].split()[0])
        assert n_per_count == pytest.approx(TRUE_N_PER_COUNT, rel=1e-3)
        # In force at the sampler; the hung 20 kg now reads right in the frames.
        wait_for(lambda: force_stream(daemon).force_n_per_count == pytest.approx(n_per_count))
        loaded = frame_after(client, FIRST_FROM_S + 2.2)
        assert loaded["force_n"] == pytest.approx(FIRST_MASS_KG * STANDARD_GRAVITY_M_S2, rel=5e-3)
        # A second weight joins the same least-squares fit: two residuals, both small.
        frame_after(client, SECOND_FROM_S + 1.3)
        client.send("calibrate", step="known_weight", mass_kg=SECOND_MASS_KG)
        second = ack(client)
        assert second["ok"] and "2 known weight" in second["message"], second
        residuals_n = [float(r) for r in second["message"].split("residuals ")[1].split(" N")[0]
                       .split(", ")]
        assert len(residuals_n) == 2 and max(map(abs, residuals_n)) < 0.5
        client.close()
    finally:
        daemon.stop()
    stored = json.loads((state_dir / "calibration.hardware.json").read_text())
    key = "NAU7802:force"
    assert stored["forces"][key]["n_per_count"] == pytest.approx(TRUE_N_PER_COUNT, rel=1e-3)

    # A new daemon on the same state directory starts with the stored model in force.
    again = DaemonThread(sock_path, backend="hardware", open_source=weights_rig).start()
    try:
        wait_for(lambda: force_stream(again).force_n_per_count
                 == pytest.approx(stored["forces"][key]["n_per_count"]))
        assert force_stream(again).force_offset_counts == pytest.approx(
            stored["forces"][key]["offset_counts"])
    finally:
        again.stop()


def test_zero_pose_is_taken_while_still_and_refused_while_moving(sock_path: Path,
                                                                 state_dir: Path) -> None:
    # The scenario's athlete stands upright for 3 s, then bends at tempo.
    daemon = DaemonThread(sock_path, backend="hardware", open_source=rig_as_hardware).start()
    try:
        client = LineClient(sock_path)
        frame_after(client, 2.0)  # the rig's chips start at ~0.35 s: over a second of samples
        client.send("calibrate", step="zero_pose")
        still = ack(client)
        assert still["ok"], still
        alignment = daemon.daemon.alignment
        assert alignment is not None
        # Upright with the sensor's +x up: the alignment is near identity (the sim's mounting
        # tilt is a few degrees at most).
        assert abs(alignment.quaternion[0]) > np.cos(np.radians(10.0) / 2)
        frame_after(client, 4.5)  # a second and a half into the first descent
        client.send("calibrate", step="zero_pose")
        moving = ack(client)
        assert not moving["ok"] and "not still" in moving["message"], moving
        assert daemon.daemon.alignment == alignment  # the still one is kept
        client.close()
    finally:
        daemon.stop()
    stored = json.loads((state_dir / "calibration.hardware.json").read_text())
    assert list(stored["alignments"]) == ["MPU-6050:trunk"]


def test_calibration_is_refused_while_a_set_runs(sock_path: Path) -> None:
    daemon = DaemonThread(sock_path).start()  # a scenario runs its set at once
    try:
        client = LineClient(sock_path)
        client.read_until(lambda m: m["type"] == "state" and m["set_state"] == "running")
        client.send("calibrate", step="known_weight", mass_kg=10.0)
        weight = ack(client)
        client.send("calibrate", step="zero_pose")
        pose = ack(client)
        for answer in (weight, pose):
            assert not answer["ok"] and "stop the set first" in answer["message"], answer
        client.close()
    finally:
        daemon.stop()


def test_calibration_file_round_trip_and_unreadable_file(tmp_path: Path) -> None:
    file = CalibrationFile(tmp_path / "deep" / "calibration.json")
    assert file.load() == CalibrationRecord()
    alignment = Alignment((1.0, 0.0, 0.01, 0.0), (0.1, -0.2, 0.3))
    record = CalibrationRecord({"NAU7802:force": ForceCalibration(5.2e-4, 1234.5)},
                               {"MPU-6050:trunk": alignment})
    file.save(record)
    assert file.load() == record
    assert [p.name for p in file.path.parent.iterdir()] == ["calibration.json"]  # no temp left
    file.path.write_text("{not json")
    with pytest.raises(CalibrationFileError, match="delete it and calibrate again"):
        file.load()
