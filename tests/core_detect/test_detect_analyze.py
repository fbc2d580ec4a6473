"""`spinecoach analyze` and device/analysis.py: JSON schema, summary, orientation CSV, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from core_detect_synth import cosine_moves, hinge_set, imu_from_angle
from spinecoach.analysis import EXERCISES, analyze_recording, motion_for, summary_text
from spinecoach.cli import main
from spinecoach.drivers.blocks import StreamInfo
from spinecoach.errors import UsageError
from spinecoach.recording.model import ForceStream, ImuStream, Recording

JUMPS = Path("/work/shared/realdata/jumps-fz")


def hinge_recording(rate=200.0, force_rate=80.0, n_reps=3) -> Recording:
    t, angle, omega, _ = cosine_moves(hinge_set(n_reps), rate)
    gyro, accel = imu_from_angle(angle, omega)
    n = len(t)
    imu = ImuStream(StreamInfo("trunk", "imu", rate), np.arange(n), gyro, accel, np.ones(n, bool))
    tf = np.arange(int(t[-1] * force_rate)) / force_rate
    f = 150.0 + 5.0 * np.interp(tf, t, angle)
    force = ForceStream(StreamInfo("force", "force", force_rate), np.arange(len(tf)), f,
                        np.ones(len(tf), bool))
    return Recording({"trunk": imu}, {"force": force})


def write_csv(rec: Recording, path: Path) -> None:
    """Interchange CSV with the IMU and force on separate rows (mixed rates)."""
    imu, force = rec.imu["trunk"], rec.force["force"]
    rows = []
    for i in range(len(imu.index)):
        g, a = imu.gyro_dps[i], imu.accel_g[i]
        rows.append((i / imu.info.rate_hz, f"{g[0]:.6f},{g[1]:.6f},{g[2]:.6f},{a[0]:.7f},{a[1]:.7f},{a[2]:.7f},"))
    for j in range(len(force.index)):
        rows.append((j / force.info.rate_hz, f",,,,,,{force.force_n[j]:.4f}"))
    rows.sort(key=lambda r: r[0])
    head = ("Time (s),Gyroscope X (deg/s),Gyroscope Y (deg/s),Gyroscope Z (deg/s),"
            "Accelerometer X (g),Accelerometer Y (g),Accelerometer Z (g),Force (N)")
    path.write_text(head + "\n" + "\n".join(f"{t:.6f},{r}" for t, r in rows) + "\n")


def test_analyze_json_has_the_documented_schema():
    doc = analyze_recording(hinge_recording(), "hip-hinge", source="x")
    assert doc["streams"] == {"trunk": {"kind": "imu", "rate_hz": 200.0, "samples": len(
        hinge_recording().imu["trunk"].index)}, "force": {"kind": "force", "rate_hz": 80.0,
        "samples": len(hinge_recording().force["force"].index)}}
    assert len(doc["reps"]) == 3
    rep = doc["reps"][0]
    for key in ("start_s", "end_s", "rom_deg", "peak_force_n", "force_angle"):
        assert key in rep
    assert set(rep["tempo"]) == {"eccentric_s", "pause_lengthened_s", "concentric_s",
                                 "pause_shortened_s"}
    json.dumps(doc, allow_nan=False)
    text = summary_text(doc)
    assert "reps: 3" in text and "200 Hz" in text


def test_every_exercise_entry_is_usable():
    for name in EXERCISES:
        assert motion_for(name).primary_axis is not None
    assert motion_for(None) is None
    with pytest.raises(UsageError):
        motion_for("handstand")


def test_cli_on_a_jump_csv_json_and_text(capsys):
    assert main(["analyze", str(JUMPS / "single-sj.csv"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["streams"]["force"]["rate_hz"] == pytest.approx(1000.0)
    c = doc["contractions"][0]
    assert set(c["rfd_n_per_s"]) == {"0-50", "0-100", "0-150", "0-200"}
    assert set(c["impulse_n_s"]) >= {"0-100", "0-200", "0-300"}
    assert 1.8 < c["onset_s"] < 1.9 and c["peak_force_n"] > 1500
    assert doc["reps"] == [] and doc["holds"] == []
    assert main(["analyze", str(JUMPS / "single-sj.csv")]) == 0
    assert "contractions:" in capsys.readouterr().out


def test_cli_orientation_csv_and_reps_without_exercise(tmp_path, capsys):
    rec = hinge_recording(rate=100.0, force_rate=50.0)
    src = tmp_path / "hinge.csv"
    write_csv(rec, src)
    out = tmp_path / "orientation.csv"
    assert main(["analyze", str(src), "--json", "--orientation-csv", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["reps"]) == 3
    lines = out.read_text().splitlines()
    assert lines[0] == "Time (s),Quaternion W,Quaternion X,Quaternion Y,Quaternion Z,Inclination (deg)"
    assert len(lines) == 1 + len(rec.imu["trunk"].index)
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    _t, angle, _, _ = cosine_moves(hinge_set(3), 100.0)
    # inclination of the spine axis = the flexion angle of this synthetic movement
    assert np.max(np.abs(table[:, 5] - angle)) < 2.0
    assert np.allclose(np.linalg.norm(table[:, 1:5], axis=1), 1.0, atol=1e-5)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "missing.csv")]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.csv" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("Time (s),Force (N)\n0.0,abc\n")
    assert main(["analyze", str(bad)]) != 0
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["analyze", str(JUMPS / "single-sj.csv"), "--exercise", "nope"]) == 64
