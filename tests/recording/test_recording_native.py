"""Native recording format: round trip bit for bit, compactness, torn tails, versioning."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
from spinecoach.acquisition.scaling import force_si, imu_si
from spinecoach.drivers.blocks import Block, ForceBlock, Gap, ImuBlock, StreamInfo
from spinecoach.errors import DataFormatError, StorageError
from spinecoach.recording import native
from spinecoach.recording.load import load_recording
from spinecoach.recording.native import RecordingWriter, read_native, scan_native, write_native

IMU = StreamInfo("trunk", "imu", 1000.0, chip="mpu6050", gyro_dps_per_lsb=1 / 65.5,
                 accel_g_per_lsb=1 / 8192)
FORCE = StreamInfo("force", "force", 320.0, chip="nau7802", force_n_per_count=0.0021,
                   force_offset_counts=-1234.5)


def _blocks(seconds: float, seed: int = 1) -> list[Block]:
    """Blocks as a sampler yields them: 20 ms drains, a FIFO overflow gap, an invalid run."""
    rng = np.random.default_rng(seed)
    out: list[Block] = []
    imu_next, force_next = 0, 0
    gaps: tuple[Gap, ...] = ()
    for k in range(int(seconds / 0.02)):
        if k == 10:
            gaps = (Gap("trunk", imu_next, 150, "fifo_overflow"),)
            imu_next += 150
        stop = int((k + 1) * 0.02 * IMU.rate_hz)
        if stop > imu_next:
            idx = np.arange(imu_next, stop, dtype=np.int64)
            raw = rng.integers(-32768, 32767, (len(idx), 6), dtype=np.int16)
            gyro, accel = imu_si(raw, IMU)
            valid = np.ones(len(idx), dtype=bool)
            if k == 20:
                valid[3:9] = False
            out.append(ImuBlock(IMU, idx, gyro, accel, valid, raw, gaps))
            imu_next, gaps = stop, ()
        fstop = int((k + 1) * 0.02 * FORCE.rate_hz)
        if fstop > force_next:
            idx = np.arange(force_next, fstop, dtype=np.int64)
            fraw = rng.integers(-(1 << 23), (1 << 23) - 1, len(idx), dtype=np.int32)
            out.append(ForceBlock(FORCE, idx, force_si(fraw, FORCE), np.ones(len(idx), bool), fraw))
            force_next = fstop
    return out


def _record(path: Path, blocks: list[Block], close: bool = True) -> RecordingWriter:
    writer = RecordingWriter(path, [IMU, FORCE], {"scenario": "unit", "exercise": "good_morning"})
    for block in blocks:
        writer.write(block)
    if close:
        writer.close()
    return writer


def _concat(blocks: list[Block], name: str) -> dict[str, np.ndarray]:
    mine = [b for b in blocks if b.info.name == name and len(b)]
    out = {"index": np.concatenate([b.index for b in mine]),
           "valid": np.concatenate([b.valid for b in mine]),
           "raw": np.concatenate([b.raw for b in mine])}
    if name == "trunk":
        out["gyro"] = np.concatenate([b.gyro_dps for b in mine])  # type: ignore[union-attr]
        out["accel"] = np.concatenate([b.accel_g for b in mine])  # type: ignore[union-attr]
    else:
        out["force"] = np.concatenate([b.force_n for b in mine])  # type: ignore[union-attr]
    return out


def test_record_then_replay_is_bit_identical(tmp_path: Path) -> None:
    blocks = _blocks(2.0)
    path = tmp_path / "r.screc"
    _record(path, blocks)
    scanned = scan_native(path)
    assert scanned.finalised and scanned.torn_tail_bytes == 0 and not scanned.notes
    rec = scanned.recording
    assert rec.meta == {"scenario": "unit", "exercise": "good_morning"}
    assert rec.streams == [IMU, FORCE]
    want = _concat(blocks, "trunk")
    s = rec.imu["trunk"]
    for key, got in [("index", s.index), ("valid", s.valid), ("raw", s.raw),
                     ("gyro", s.gyro_dps), ("accel", s.accel_g)]:
        assert got is not None and got.tobytes() == want[key].tobytes(), key
    assert s.gaps == [Gap("trunk", 200, 150, "fifo_overflow")]
    assert len(s.index) + sum(g.count for g in s.gaps) == int(s.index[-1]) + 1
    f = rec.force["force"]
    want_f = _concat(blocks, "force")
    assert f.force_n.tobytes() == want_f["force"].tobytes()
    assert f.raw is not None and f.raw.tobytes() == want_f["raw"].tobytes()
    # Replaying the file's blocks gives the same samples again.
    replayed = list(rec.blocks())
    assert _concat(replayed, "trunk")["gyro"].tobytes() == want["gyro"].tobytes()


def test_raw_codes_make_it_compact(tmp_path: Path) -> None:
    path = tmp_path / "r.screc"
    _record(path, _blocks(2.0))
    rec = read_native(path)
    samples = len(rec.imu["trunk"].index) * 12 + len(rec.force["force"].index) * 4
    assert path.stat().st_size < samples * 1.1 + 2000


def test_values_not_derived_from_codes_are_stored_exactly(tmp_path: Path) -> None:
    idx = np.arange(100, dtype=np.int64)
    raw = np.arange(600, dtype=np.int16).reshape(100, 6)
    gyro, accel = imu_si(raw, IMU)
    gyro = gyro * 1.0001 + 0.3  # a calibration applied upstream of the recorder
    no_raw = np.random.default_rng(0).normal(size=(100, 3))
    f32 = np.linspace(0, 10, 100, dtype=np.float32).astype(np.float64)
    path = tmp_path / "v.screc"
    other = StreamInfo("pelvis", "imu", 100.0)
    f = StreamInfo("force", "force", 100.0)
    with RecordingWriter(path, [IMU, other, f]) as w:
        w.write(ImuBlock(IMU, idx, gyro, accel, np.ones(100, bool), raw))
        w.write(ImuBlock(other, idx, no_raw, no_raw * 2, np.ones(100, bool)))
        w.write(ForceBlock(f, idx, f32, np.ones(100, bool)))
    rec = read_native(path)
    assert rec.imu["trunk"].gyro_dps.tobytes() == gyro.tobytes()
    assert rec.imu["trunk"].raw is not None
    assert rec.imu["pelvis"].gyro_dps.tobytes() == no_raw.tobytes()
    assert rec.imu["pelvis"].raw is None
    assert rec.force["force"].force_n.tobytes() == f32.tobytes()


def test_block_with_index_holes_is_split(tmp_path: Path) -> None:
    f = StreamInfo("force", "force", 80.0)
    idx = np.array([0, 1, 2, 5, 6, 9], dtype=np.int64)
    path = tmp_path / "h.screc"
    with RecordingWriter(path, [f]) as w:
        w.write(ForceBlock(f, idx, idx * 1.5, np.ones(6, bool)))
    np.testing.assert_array_equal(read_native(path).force["force"].index, idx)


def test_every_truncation_opens_and_keeps_the_intact_prefix(tmp_path: Path) -> None:
    path = tmp_path / "t.screc"
    blocks = _blocks(0.6)
    _record(path, blocks)
    data = path.read_bytes()
    full = read_native(path)
    n_full = len(full.imu["trunk"].index)
    header_len = len(native.encode_header([IMU, FORCE], {"scenario": "unit", "exercise": "good_morning"}))
    previous = -1
    for cut in range(header_len, len(data), 97):
        torn = tmp_path / "cut.screc"
        torn.write_bytes(data[:cut])
        scanned = scan_native(torn)
        n = len(scanned.recording.imu["trunk"].index)
        assert n >= previous  # more bytes never give fewer samples
        previous = n
        assert not scanned.finalised
        if scanned.torn_tail_bytes:
            assert "tail of" in scanned.notes[0]
        np.testing.assert_array_equal(scanned.recording.imu["trunk"].index,
                                      full.imu["trunk"].index[:n])
    assert previous <= n_full


def test_corrupt_byte_stops_reading_there(tmp_path: Path) -> None:
    path = tmp_path / "c.screc"
    _record(path, _blocks(1.0))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    scanned = scan_native(path)
    assert scanned.torn_tail_bytes > 0
    assert 0 < len(scanned.recording.imu["trunk"].index) < 1000
    notes: list[str] = []
    load_recording(path, notes=notes)
    assert notes and "ignored a damaged or incomplete tail" in notes[0]


def test_unclosed_recording_is_noted(tmp_path: Path) -> None:
    path = tmp_path / "u.screc"
    writer = _record(path, _blocks(0.5), close=False)
    writer.flush()
    writer.abandon()
    scanned = scan_native(path)
    assert not scanned.finalised and scanned.torn_tail_bytes == 0
    assert "not closed cleanly" in scanned.notes[0]


def test_flush_interval_bounds_unwritten_sample_time(tmp_path: Path) -> None:
    path = tmp_path / "f.screc"
    writer = RecordingWriter(path, [IMU, FORCE])
    worst = 0.0
    written_end = {"trunk": 0, "force": 0}
    for block in _blocks(2.0):
        writer.write(block)
        name = block.info.name
        written_end[name] = max([written_end[name], int(block.index[-1]) + 1]
                                + [g.start_index + g.count for g in block.gaps])
        on_disk = read_native(path)
        for s in [*on_disk.imu.values(), *on_disk.force.values()]:
            disk_end = max([0] + [int(i) + 1 for i in s.index[-1:]]
                           + [g.start_index + g.count for g in s.gaps])
            worst = max(worst, (written_end[s.info.name] - disk_end) / s.info.rate_hz)
    writer.close()
    assert worst <= 0.1


def test_header_problems_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.screc"
    _record(path, _blocks(0.1))
    data = bytearray(path.read_bytes())
    bad_version = bytearray(data)
    struct.pack_into("<H", bad_version, 8, 99)
    path.write_bytes(bytes(bad_version))
    with pytest.raises(DataFormatError, match="version 99; .* upgrade"):
        read_native(path)
    bad_crc = bytearray(data)
    bad_crc[20] ^= 1
    path.write_bytes(bytes(bad_crc))
    with pytest.raises(DataFormatError, match="header checksum"):
        read_native(path)
    path.write_bytes(data[:30])
    with pytest.raises(DataFormatError, match="header truncated"):
        read_native(path)


def test_load_recording_by_magic_and_extension(tmp_path: Path) -> None:
    path = tmp_path / "no_extension"
    _record(path, _blocks(0.2))
    assert "trunk" in load_recording(path).imu
    csv = tmp_path / "f.txt"
    csv.write_text("Time (s),Force (N)\n0,1\n0.1,2\n")
    assert len(load_recording(csv).force["force"].index) == 2
    other = tmp_path / "other.bin"
    other.write_bytes(b"\x00\x01garbage")
    with pytest.raises(DataFormatError, match="not a recording"):
        load_recording(other)
    with pytest.raises(DataFormatError, match="no such recording"):
        load_recording(tmp_path / "missing.screc")


def test_write_native_keeps_trailing_gaps(tmp_path: Path) -> None:
    path = tmp_path / "a.screc"
    _record(path, _blocks(0.5))
    rec = read_native(path)
    rec.force["force"].gaps.append(Gap("force", int(rec.force["force"].index[-1]) + 1, 40, "outage"))
    out = write_native(rec, tmp_path / "b.screc")
    back = read_native(out)
    assert back.force["force"].gaps == rec.force["force"].gaps
    assert back.imu["trunk"].raw.tobytes() == rec.imu["trunk"].raw.tobytes()  # type: ignore[union-attr]


def test_full_disk_is_a_storage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "d.screc"
    writer = RecordingWriter(path, [IMU, FORCE])

    def full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(native.os, "write", full)
    with pytest.raises(StorageError, match="No space left"):
        for block in _blocks(0.5):
            writer.write(block)
    monkeypatch.undo()
    writer.abandon()
    assert os.path.exists(path) and scan_native(path).recording.streams == [IMU, FORCE]


def test_a_known_gyro_delay_is_kept_and_an_unknown_one_not_written(tmp_path: Path) -> None:
    from dataclasses import replace

    path = tmp_path / "a.screc"
    _record(path, _blocks(0.5))
    rec = read_native(path)
    assert rec.imu["trunk"].info.gyro_delay_s is None
    # an unknown delay is absent from the header, so such files are written as before
    assert b"gyro_delay_s" not in path.read_bytes()[:4096]
    trunk = rec.imu["trunk"]
    rec.imu["trunk"] = replace(trunk, info=replace(trunk.info, gyro_delay_s=0.0028))
    back = read_native(write_native(rec, tmp_path / "b.screc"))
    assert back.imu["trunk"].info.gyro_delay_s == 0.0028
