"""Interchange CSV import/export (DESIGN.md "Interchange CSV")."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from spinecoach.drivers.blocks import Gap, StreamInfo
from spinecoach.errors import DataFormatError, StorageError
from spinecoach.recording import interchange
from spinecoach.recording.interchange import (
    IMU_COLUMNS,
    UnknownColumnsWarning,
    estimate_rate_hz,
    read_csv,
    write_csv,
)
from spinecoach.recording.model import ForceStream, ImuStream, Recording

#: Copies of the shared real recordings, with their licences (tests/fixtures/realdata/README.md).
REALDATA = Path(__file__).resolve().parents[1] / "fixtures" / "realdata"
HEADER = "Time (s)," + ",".join(IMU_COLUMNS) + ",Force (N)"


def _write(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _imu_rows(t: np.ndarray, force: bool = False) -> str:
    rows = [f"{x:.6f},1,2,3,0.1,0.2,0.9" + (",100" if force else "") for x in t]
    return "\n".join(rows) + "\n"


# -- real recordings ---------------------------------------------------------------------------
@pytest.mark.skipif(not REALDATA.exists(), reason="shared real recordings not present")
def test_broad_imu_imports_at_its_rate() -> None:
    rec = read_csv(REALDATA / "broad-07-fast-rotation" / "imu.csv")
    assert list(rec.imu) == ["trunk"] and not rec.force
    s = rec.imu["trunk"]
    assert s.info.rate_hz == pytest.approx(285.714, abs=1e-3)
    assert len(s.index) == 52518
    assert len(s.index) + sum(g.count for g in s.gaps) == int(s.index[-1]) + 1
    np.testing.assert_allclose(s.gyro_dps[0], [0.4273, 0.061, -0.3052])
    np.testing.assert_allclose(s.accel_g[1], [0.001971, 0.006114, 0.995644])
    assert rec.duration_s == pytest.approx(183.8095, abs=1e-6)


@pytest.mark.skipif(not REALDATA.exists(), reason="shared real recordings not present")
@pytest.mark.parametrize("name", ["single-cmj.csv", "single-dj.csv", "single-sj.csv"])
def test_jump_force_imports_at_1khz(name: str) -> None:
    rec = read_csv(REALDATA / "jumps-fz" / name)
    s = rec.force["force"]
    assert s.info.rate_hz == pytest.approx(1000.0, rel=1e-9)
    assert len(s.index) == 5000 and not s.gaps
    assert s.force_n[0] == pytest.approx(float((REALDATA / "jumps-fz" / name).read_text()
                                               .splitlines()[1].split(",")[1]))


# -- sample clock recovery --------------------------------------------------------------------
@pytest.mark.parametrize("rate_hz", [25.0, 100.0, 285.714285714, 320.0, 833.0, 1000.0])
def test_rates_with_jitter_and_holes(tmp_path: Path, rate_hz: float) -> None:
    rng = np.random.default_rng(int(rate_hz))
    n = 3000
    index = np.arange(n)
    keep = np.ones(n, dtype=bool)
    keep[[100, 101, 102, 2000]] = False  # holes of three and one samples
    t = 1.5 + index / rate_hz + rng.uniform(-0.2, 0.2, n) / rate_hz  # ±20 % jitter
    path = _write(tmp_path, HEADER.rsplit(",", 1)[0] + "\n" + _imu_rows(t[keep]))
    s = read_csv(path).imu["trunk"]
    assert s.info.rate_hz == pytest.approx(rate_hz, rel=1e-3)
    np.testing.assert_array_equal(s.index, index[keep])
    assert s.gaps == [Gap("trunk", 100, 3, "source"), Gap("trunk", 2000, 1, "source")]
    assert len(s.index) + sum(g.count for g in s.gaps) == n
    assert s.info.t0_s == pytest.approx(t[0])


def test_rate_printed_with_few_digits_does_not_drift() -> None:
    # 300 Hz printed with 6 decimals: intervals alternate 0.003333/0.003334.
    t = np.round(np.arange(60_000) / 300.0, 6)
    assert estimate_rate_hz(t) == pytest.approx(300.0, rel=1e-7)


def test_streams_at_different_rates_and_second_imu(tmp_path: Path) -> None:
    imu_t = np.arange(1000) / 1000.0
    force_t = np.arange(320) / 320.0
    pelvis_t = np.arange(500) / 500.0
    header = HEADER + "," + ",".join(c + " [pelvis]" for c in IMU_COLUMNS)
    cells: dict[float, list[str]] = {}
    for t in np.unique(np.concatenate([imu_t, force_t, pelvis_t])):
        cells[float(t)] = [""] * 13
    for t in imu_t:
        cells[float(t)][0:6] = ["1", "2", "3", "0", "0", "1"]
    for t in force_t:
        cells[float(t)][6] = "250.5"
    for t in pelvis_t:
        cells[float(t)][7:13] = ["-1", "-2", "-3", "0", "1", "0"]
    body = "\n".join(f"{t:.9f}," + ",".join(c) for t, c in sorted(cells.items()))
    rec = read_csv(_write(tmp_path, header + "\n" + body + "\n"))
    assert set(rec.imu) == {"trunk", "pelvis"} and set(rec.force) == {"force"}
    assert rec.imu["trunk"].info.rate_hz == pytest.approx(1000)
    assert rec.imu["pelvis"].info.rate_hz == pytest.approx(500)
    assert rec.force["force"].info.rate_hz == pytest.approx(320)
    assert len(rec.force["force"].index) == 320 and not rec.force["force"].gaps
    np.testing.assert_array_equal(rec.imu["pelvis"].gyro_dps[0], [-1, -2, -3])
    assert rec.force["force"].force_n.tolist() == [250.5] * 320


# -- unknown columns, sidecar ---------------------------------------------------------------
def test_unknown_columns_ignored_and_reported_once(tmp_path: Path) -> None:
    t = np.arange(50) / 100.0
    rows = "\n".join(f"{x:.6f},5.0,hello,{x * 2:.3f}" for x in t)
    path = _write(tmp_path, "Time (s),Force (N),Comment,Magnetometer X (uT)\n" + rows + "\n")
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_csv(path, notes=notes)
    relevant = [w for w in caught if issubclass(w.category, UnknownColumnsWarning)]
    assert len(relevant) == 1
    assert "'Comment'" in str(relevant[0].message) and "Magnetometer X" in str(relevant[0].message)
    assert len(notes) == 1
    assert len(rec.force["force"].index) == 50


def test_sidecar_metadata_into_meta(tmp_path: Path) -> None:
    path = _write(tmp_path, "Time (s),Force (N)\n0,1\n0.01,2\n0.02,3\n")
    meta = {"exercise": "good_morning", "placement": "T12", "side": "left", "notes": "test"}
    Path(str(path) + ".json").write_text(json.dumps(meta))
    assert read_csv(path).meta == meta


def test_bad_sidecar_is_one_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "Time (s),Force (N)\n0,1\n0.01,2\n")
    Path(str(path) + ".json").write_text('{"exercise": ')
    with pytest.raises(DataFormatError, match=r"s\.csv\.json: line 1, column"):
        read_csv(path)


# -- malformed files: one error naming line and column ----------------------------------------
@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"line 1: empty file"),
        ("Force (N)\n1\n", r"line 1: expected a 'Time \(s\)' column"),
        ("Time (s),Comment\n0,a\n", r"line 1: expected at least one stream"),
        ("Time (s),Force (kg)\n0,1\n", r"line 1, column 2: 'Force \(kg\)' is in 'kg'; expected Force in 'N'"),
        ("Time (s),Gyroscope X (deg/s),Force (N)\n0,1,2\n", r"line 1: the IMU group lacks 'Gyroscope Y"),
        ("Time (s),Force (N),Force (N)\n", r"line 1, column 3: duplicate column"),
        ("Time (s),Force (N)\n0,1\n0.01,abc\n0.02,3\n", r"line 3, column 2: expected a finite number .*'abc'"),
        ("Time (s),Force (N)\n0,1\n0.01,nan\n0.02,3\n", r"line 3, column 2: expected a finite number"),
        ("Time (s),Force (N)\n0,1\n0.01,2,7\n0.02,3\n", r"line 3: expected 2 comma-separated cells .* found 3"),
        ("Time (s),Force (N)\n0,1\n\n0.02,3\n", r"line 3: expected 2 comma-separated cells"),
        ("Time (s),Force (N)\n0,1\n0.02,2\n0.01,3\n", r"line 4, column 1: time goes backwards"),
        ("Time (s),Force (N)\n0,1\n,2\n0.02,3\n", r"line 3, column 1: expected a time"),
        ("Time (s),Force (N)\n0,1\n0.0101,2\n0.0102,3\n0.02,3\n0.03,3\n", r"line 4: .*same sample period"),
        ("Time (s),Force (N)\n0,1\n", r"stream 'force' has one sample"),
    ],
)
def test_malformed_file_gives_one_precise_error(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(DataFormatError, match=pattern):
        read_csv(_write(tmp_path, text))


def test_partial_imu_row_names_the_empty_column(tmp_path: Path) -> None:
    rows = ["0.000,1,2,3,0,0,1", "0.001,1,2,3,0,0,1", "0.002,1,2,,0,0,1", "0.003,1,2,3,0,0,1"]
    path = _write(tmp_path, HEADER.rsplit(",", 1)[0] + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataFormatError, match=r"line 4, column 4: expected a number in 'Gyroscope Z"):
        read_csv(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_bytes(b"Time (s),Force (N)\n0,\xff\n")
    with pytest.raises(DataFormatError, match="not UTF-8"):
        read_csv(path)


# -- export ------------------------------------------------------------------------------------
def _recording(rng: np.random.Generator) -> Recording:
    imu_info = StreamInfo("trunk", "imu", 1000.0, chip="mpu6050", t0_s=0.25)
    idx = np.arange(2000, dtype=np.int64)
    keep = np.ones(2000, dtype=bool)
    keep[500:650] = False
    imu_valid = np.ones(int(keep.sum()), dtype=bool)
    imu_valid[10:14] = False
    imu = ImuStream(
        imu_info, idx[keep], rng.normal(0, 300, (int(keep.sum()), 3)),
        rng.normal(0, 2, (int(keep.sum()), 3)), imu_valid,
        gaps=[Gap("trunk", 500, 150, "fifo_overflow")],
    )
    f_info = StreamInfo("force", "force", 320.0, chip="nau7802", t0_s=0.25)
    f_idx = np.arange(3, 640, dtype=np.int64)
    force = ForceStream(
        f_info, f_idx, rng.normal(400, 150, len(f_idx)), np.ones(len(f_idx), dtype=bool),
        gaps=[Gap("force", 0, 3, "chip_reset")],
    )
    p_info = StreamInfo("pelvis", "imu", 250.0, t0_s=0.0)
    p_idx = np.arange(700, dtype=np.int64)
    pelvis = ImuStream(p_info, p_idx, rng.normal(0, 50, (700, 3)), rng.normal(0, 1, (700, 3)),
                       np.ones(700, dtype=bool))
    return Recording(
        imu={"trunk": imu, "pelvis": pelvis}, force={"force": force},
        meta={"exercise": "good_morning", "side": "both", "scenario": "x"},
    )


def _assert_same(a: Recording, b: Recording) -> None:
    assert a.meta == b.meta
    assert set(a.imu) == set(b.imu) and set(a.force) == set(b.force)
    for name, s in a.imu.items():
        t = b.imu[name]
        assert s.info == t.info
        np.testing.assert_array_equal(s.index, t.index)
        np.testing.assert_array_equal(s.valid, t.valid)
        np.testing.assert_allclose(s.gyro_dps, t.gyro_dps, rtol=0, atol=1e-6)
        np.testing.assert_allclose(s.accel_g, t.accel_g, rtol=0, atol=1e-6)
        assert s.gaps == t.gaps
    for name, f in a.force.items():
        g = b.force[name]
        assert f.info == g.info
        np.testing.assert_array_equal(f.index, g.index)
        np.testing.assert_allclose(f.force_n, g.force_n, rtol=0, atol=1e-6)
        assert f.gaps == g.gaps


def test_export_import_round_trip(tmp_path: Path) -> None:
    rec = _recording(np.random.default_rng(3))
    path = write_csv(rec, tmp_path / "out.csv")
    assert path.read_text().splitlines()[0].startswith("Time (s),Gyroscope X (deg/s),")
    assert "Gyroscope X (deg/s) [pelvis]" in path.read_text().splitlines()[0]
    _assert_same(rec, read_csv(path))


def test_export_without_sidecar_still_recovers_indices(tmp_path: Path) -> None:
    rec = _recording(np.random.default_rng(4))
    path = write_csv(rec, tmp_path / "out.csv")
    Path(str(path) + ".json").unlink()
    back = read_csv(path)
    for name, s in rec.imu.items():
        t = back.imu[name]
        np.testing.assert_array_equal(s.index - s.index[0], t.index)
        assert t.info.rate_hz == pytest.approx(s.info.rate_hz, rel=1e-9)
    assert back.imu["trunk"].gaps == [Gap("trunk", 500, 150, "source")]


def test_edited_csv_with_stale_sidecar_falls_back_to_holes(tmp_path: Path) -> None:
    rec = _recording(np.random.default_rng(5))
    path = write_csv(rec, tmp_path / "out.csv")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:20] + lines[40:]) + "\n")  # rows deleted by hand
    notes: list[str] = []
    back = read_csv(path, notes=notes)
    assert any("'pelvis' do not match" in n for n in notes)
    for s in [*back.imu.values(), *back.force.values()]:
        expected = int(s.index[-1]) + 1 - min([int(s.index[0])] + [g.start_index for g in s.gaps])
        assert len(s.index) + sum(g.count for g in s.gaps) == expected


@given(
    rate_hz=st.floats(25.0, 1000.0),
    n=st.integers(2, 400),
    t0_s=st.floats(-5.0, 100.0),
    drop=st.lists(st.integers(1, 398), max_size=20),
    seed=st.integers(0, 2**16),
)
def test_round_trip_property(
    tmp_path_factory: pytest.TempPathFactory, rate_hz: float, n: int, t0_s: float,
    drop: list[int], seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    keep = np.ones(n, dtype=bool)
    keep[[d for d in drop if d < n - 1]] = False
    idx = np.arange(n, dtype=np.int64)[keep]
    stream = ForceStream(StreamInfo("force", "force", rate_hz, t0_s=t0_s), idx,
                         rng.normal(0, 1000, len(idx)), np.ones(len(idx), dtype=bool),
                         gaps=interchange._holes(idx, "force"))
    rec = Recording(force={"force": stream})
    path = write_csv(rec, tmp_path_factory.mktemp("rt") / "p.csv")
    _assert_same(rec, read_csv(path))
    Path(str(path) + ".json").unlink()
    back = read_csv(path).force["force"]
    # Without the sidecar the times are all there is: they always come back.
    np.testing.assert_allclose(
        back.info.t0_s + back.index / back.info.rate_hz, t0_s + idx / rate_hz, rtol=0, atol=1e-6
    )
    # The rate (and so the indices) is recoverable when most intervals are one period; a file
    # whose every other sample is missing is indistinguishable from one at half the rate.
    steps = np.diff(idx)
    if len(idx) > 2 and np.count_nonzero(steps == 1) > len(steps) / 2:
        np.testing.assert_array_equal(back.index, idx)
        assert back.info.rate_hz == pytest.approx(rate_hz, rel=1e-5)


def test_export_is_atomic_on_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.csv"
    target.write_text("previous\n")
    real_fsync = os.fsync

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(interchange.os, "fsync", full)
    with pytest.raises(StorageError, match=r"cannot write .*out\.csv: No space left"):
        write_csv(_recording(np.random.default_rng(0)), target)
    monkeypatch.setattr(interchange.os, "fsync", real_fsync)
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_export_of_empty_recording_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no samples"):
        write_csv(Recording(), tmp_path / "e.csv")


def test_a_streams_gyro_delay_goes_through_the_sidecar(tmp_path: Path) -> None:
    from dataclasses import replace

    from spinecoach.recording.stream_csv import CsvStreamReader

    rec = _recording(np.random.default_rng(4))
    trunk = rec.imu["trunk"]
    rec.imu["trunk"] = replace(trunk, info=replace(trunk.info, gyro_delay_s=0.0028))
    path = write_csv(rec, tmp_path / "out.csv")
    sidecar = json.loads(Path(f"{path}.json").read_text())
    assert sidecar["streams"]["trunk"]["gyro_delay_s"] == 0.0028
    assert "gyro_delay_s" not in sidecar["streams"]["pelvis"]  # unknown: left out
    back = read_csv(path)
    _assert_same(rec, back)
    assert back.imu["pelvis"].info.gyro_delay_s is None
    infos = {i.name: i for i in CsvStreamReader(path, []).scan()}
    assert infos["trunk"].gyro_delay_s == 0.0028 and infos["pelvis"].gyro_delay_s is None


@pytest.mark.parametrize("bad", ["3ms", -0.001, 0.5, True])
def test_a_bad_gyro_delay_in_the_sidecar_is_one_error(tmp_path: Path, bad: object) -> None:
    path = write_csv(_recording(np.random.default_rng(5)), tmp_path / "out.csv")
    side = Path(f"{path}.json")
    sidecar = json.loads(side.read_text())
    sidecar["streams"]["trunk"]["gyro_delay_s"] = bad
    side.write_text(json.dumps(sidecar))
    with pytest.raises(DataFormatError, match=r"streams\.trunk\.gyro_delay_s .*fix or remove it"):
        read_csv(path)
