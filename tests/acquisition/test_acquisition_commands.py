"""The export and readout commands, and replay sources, on recordings made from fake chips."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from acq_fakes import FakeAdc, FakeImu, Faults
from spinecoach import cli
from spinecoach.acquisition.replay import paced, replay_blocks
from spinecoach.acquisition.sampler import Sampler
from spinecoach.acquisition.source import ReplaySource, open_source
from spinecoach.commands.readout import Readout, trunk_flexion_from_accel_deg
from spinecoach.drivers.blocks import Gap, ImuBlock
from spinecoach.drivers.sim.bus import VirtualClock
from spinecoach.recording import interchange
from spinecoach.recording.interchange import read_csv
from spinecoach.recording.native import RecordingWriter, read_native, scan_native


def _recorded(path: Path, seconds: float = 3.0) -> Path:
    clock = VirtualClock()
    sampler = Sampler([FakeImu(clock, faults=Faults(outages=[(1.0, 0.5)]))], [FakeAdc(clock)], clock)
    sampler.start()
    with RecordingWriter(path, sampler.streams, {"exercise": "good_morning"}) as writer:
        for block in sampler.blocks(seconds):
            writer.write(block)
    return path


def test_export_native_to_csv_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec_path = _recorded(tmp_path / "s.screc")
    out = tmp_path / "s.csv"
    assert cli.main(["export", str(rec_path), "--csv", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    native, csv = read_native(rec_path), read_csv(out)
    assert csv.meta == native.meta
    for name, s in native.imu.items():
        c = csv.imu[name]
        np.testing.assert_array_equal(s.index, c.index)
        assert s.gaps == c.gaps and s.info.rate_hz == c.info.rate_hz
        np.testing.assert_allclose(s.gyro_dps, c.gyro_dps, atol=1e-6, rtol=0)
    np.testing.assert_allclose(native.force["force"].force_n, csv.force["force"].force_n, atol=1e-6)
    # CSV in, CSV out.
    again = tmp_path / "again.csv"
    assert cli.main(["export", str(out), "--csv", str(again)]) == 0
    assert again.read_text() == out.read_text()


def test_export_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("Time (s),Force (N)\n0,1\n0.1,x\n")
    assert cli.main(["export", str(bad), "--csv", str(tmp_path / "o.csv")]) == 65
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "line 3, column 2" in err
    assert cli.main(["export", str(tmp_path / "nope.screc"), "--csv", str(tmp_path / "o.csv")]) == 65


def test_export_full_disk_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    rec_path = _recorded(tmp_path / "s.screc", 1.0)
    out = tmp_path / "o.csv"
    out.write_text("old\n")

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(interchange.os, "fsync", full)
    assert cli.main(["export", str(rec_path), "--csv", str(out)]) == 73
    assert "No space left" in capsys.readouterr().err
    assert out.read_text() == "old\n"


def test_export_reports_ignored_columns_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.csv"
    src.write_text("Time (s),Force (N),Note\n0,1,a\n0.01,2,b\n0.02,3,c\n")
    assert cli.main(["export", str(src), "--csv", str(tmp_path / "o.csv")]) == 0
    err = capsys.readouterr().err
    assert err.count("ignored 1 unknown column") == 1


def test_readout_of_a_file_prints_four_lines_a_second(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    rec_path = _recorded(tmp_path / "s.screc", 3.0)
    assert cli.main(["readout", str(rec_path), "--fast"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if " s | " in ln]
    assert 10 <= len(lines) <= 12
    assert "(accel est.)" in lines[0] and "force" in lines[0] and "gaps 0" in lines[0]
    rec = read_native(rec_path)
    total = sum(g.count for s in [*rec.imu.values(), *rec.force.values()] for g in s.gaps)
    assert total > 500 and lines[-1].endswith(f"gaps {total} samples")


def test_accelerometer_flexion_estimate() -> None:
    for theta in (-20.0, 0.0, 35.0, 80.0):
        a = np.array([[math.cos(math.radians(theta)), 0.01, math.sin(math.radians(theta))]] * 4)
        assert trunk_flexion_from_accel_deg(a) == pytest.approx(theta, abs=1e-9)


def test_readout_skips_invalid_samples() -> None:
    import io

    out = io.StringIO()
    info = FakeImu(VirtualClock()).info
    idx = np.arange(300, dtype=np.int64)
    accel = np.tile([1.0, 0.0, 0.0], (300, 1))
    accel[100:] = [0.0, 0.0, 1.0]  # frozen garbage, flagged invalid
    valid = np.arange(300) < 100
    Readout(out).run([ImuBlock(info, idx, np.zeros((300, 3)), accel, valid)])
    first = out.getvalue().splitlines()[0]
    assert "+0.0°" in first


def test_paced_replay_waits_for_sample_time() -> None:
    clock = VirtualClock()
    sampler = Sampler([FakeImu(clock)], [], clock)
    blocks = list(sampler.blocks(1.0))
    wall = [0.0]

    def sleep(s: float) -> None:
        wall[0] += s

    list(paced(iter(blocks), wall_clock=lambda: wall[0], wall_sleep=sleep))
    span = float(blocks[-1].t_s[-1] - blocks[0].t_s[0])
    assert wall[0] == pytest.approx(span, abs=1e-9)


def test_replay_source_equals_the_recording(tmp_path: Path) -> None:
    rec = read_native(_recorded(tmp_path / "s.screc", 2.0))
    rec.force["force"].gaps.append(Gap("force", int(rec.force["force"].index[-1]) + 1, 7, "outage"))
    source = open_source(rec)
    assert isinstance(source, ReplaySource)
    blocks = list(source.blocks())
    assert sum(len(b) for b in blocks) == sum(len(s.index) for s in [*rec.imu.values(), *rec.force.values()])
    assert blocks[-1].gaps[-1].count == 7 and len(blocks[-1]) == 0
    assert [b.info.name for b in replay_blocks(rec)][:2]
    short = list(source.blocks(1.0))
    first = min(float(b.t_s[0]) for b in short if len(b))
    assert 0.95 < max(float(b.t_s[-1]) for b in short if len(b)) - first < 1.1


def test_replay_backend_reads_files_and_reports_torn_tails(tmp_path: Path) -> None:
    path = _recorded(tmp_path / "s.screc", 1.0)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    source = open_source(f"replay:{path}")
    assert source.notes and "tail" in source.notes[0]
    assert sum(len(b) for b in source.blocks()) > 0


# -- record, and sources on the simulated rig --------------------------------------------------
def test_record_a_simulated_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.screc"
    assert cli.main(["record", "--backend", "sim:isometric_max_pulls", "--seconds", "2",
                     "--faults", "121:0.01", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "done:" in printed and "trunk: 2000 samples" in printed
    scanned = scan_native(out)
    assert scanned.finalised
    rec = scanned.recording
    assert rec.meta["scenario"] == "isometric_max_pulls" and rec.meta["faults"] == "121:0.01"
    assert len(rec.imu["trunk"].index) == 2000 and rec.force["force"].raw is not None
    # Sample times are the scenario's times: the values match the rig's signals there.
    from spinecoach.drivers.sim.scenarios import build_scenario

    scenario = build_scenario("isometric_max_pulls")
    force = rec.force["force"]
    t = force.info.t0_s + force.index / force.info.rate_hz
    np.testing.assert_allclose(force.force_n, scenario.force_signal(ideal=True)(t), atol=5.0)
    imu = rec.imu["trunk"]
    t = imu.info.t0_s + imu.index / imu.info.rate_hz
    _, accel = scenario.imu_signal("trunk", ideal=True)(t)
    np.testing.assert_allclose(imu.accel_g.mean(axis=0), accel.mean(axis=0), atol=0.02)


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["record", "--backend", "replay:x.screc", "o.screc"], 64, "spinecoach export"),
        (["record", "--backend", "sim:nope", "o.screc"], 64, "no scenario 'nope'"),
        (["record", "--backend", "sim:sorensen_hold", "--seconds", "-1", "o.screc"], 64, "positive"),
        (["record", "--backend", "sim:sorensen_hold", "--faults", "bogus", "o.screc"], 64, "bogus"),
        (["readout", "--backend", "hardware", "--fast"], 69, "I2C"),
    ],
)
def test_command_errors_are_one_line(argv: list[str], status: int, message: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    if "hardware" in argv and Path("/dev/i2c-1").exists():
        pytest.skip("this machine has an I2C bus")
    assert cli.main(argv) == status
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_readout_without_a_file_shows_the_demo_with_a_banner(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if Path("/dev/i2c-1").exists():
        pytest.skip("this machine has an I2C bus: the readout would try the sensors")
    assert cli.main(["readout", "--fast", "--seconds", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("DEMO: replaying the bundled recording demo.screc")
    assert "not live sensors" in out[0]
    assert 7 <= sum(" s | " in line for line in out) <= 8
    assert out[-1].startswith("DEMO finished")


def test_readout_of_a_simulated_rig(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["readout", "--backend", "sim:back_extension_holds", "--fast",
                     "--seconds", "1.5"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if " s | " in ln]
    assert len(lines) == 6 and "force" in lines[0]


def test_ctrl_c_finalises_the_recording(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "c.screc"
    proc = subprocess.Popen(
        [sys.executable, "-m", "spinecoach", "record", "--backend", "sim:sorensen_hold",
         "--realtime", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("recording")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "stopped by the user" in stdout
    scanned = scan_native(out)
    assert scanned.finalised and scanned.torn_tail_bytes == 0
    assert 0.3 < scanned.recording.duration_s < 5.0


def test_hardware_source_leaves_out_a_silent_sensor_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from spinecoach.acquisition import source as source_module
    from spinecoach.drivers import bus as bus_module
    from spinecoach.drivers.sim.bus import SimBus
    from spinecoach.drivers.sim.mpu6050_chip import Mpu6050Chip
    from spinecoach.drivers.sim.nau7802_chip import Nau7802Chip
    from spinecoach.errors import SensorError

    # A Pi whose bus carries the trunk IMU and the load cell but no pelvis IMU. The drivers
    # wait on the real clock here; the chips only see the wire time, which is enough to start.
    monkeypatch.setattr(bus_module, "open_bus", lambda n: SimBus([Mpu6050Chip(0x68), Nau7802Chip()]))
    monkeypatch.setattr(source_module.MonotonicClock, "sleep", lambda self, s: None)
    source = source_module.open_hardware_source(1)
    assert [s.name for s in source.streams] == ["trunk", "force"]
    assert len(source.notes) == 1 and source.notes[0].startswith("pelvis IMU (mpu6050 at 0x69):")
    assert "\n" not in source.notes[0]
    source.close()
    monkeypatch.setattr(bus_module, "open_bus", lambda n: SimBus([]))
    with pytest.raises(SensorError, match="no sensor answered on /dev/i2c-1"):
        source_module.open_hardware_source(1)
