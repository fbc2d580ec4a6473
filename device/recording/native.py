"""The native recording format (``.screc``): versioned, compact, append-only, crash-safe.

The byte layout is documented in ``docs/recording-format.md``; in short::

    header : MAGIC(8) | version u16 | reserved u16 | json_len u32 | JSON | crc32 u32
    chunk* : type u8 | stream u8 | flags u16 | first_index i64 | count u32 | payload_len u32
             | payload | crc32 u32 (over the 20-byte chunk header and the payload)

All integers little-endian. A chunk is self-delimiting and checked by its CRC, so a reader walks
chunks until the first one that is incomplete or fails its CRC (a torn tail left by a kill or a
power cut) and reports the bytes it skipped instead of failing.

:class:`RecordingWriter` buffers blocks and writes them to the OS at least every
``flush_interval_s`` of *sample* time (default 50 ms, so with a block of up to 50 ms in flight a
``kill -9`` loses at most 100 ms), and calls ``fsync`` every ``fsync_interval_s`` of sample time
(default 1 s) and on close: a process kill loses only what was still buffered, a power cut at
most the last second.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from spinecoach.acquisition.scaling import force_si, imu_si
from spinecoach.drivers.blocks import Block, Gap, GapReason, ImuBlock, StreamInfo
from spinecoach.errors import DataFormatError, StorageError
from spinecoach.recording.model import ForceStream, ImuStream, Recording

MAGIC = b"SCREC\x00\r\n"
VERSION = 1
_HEADER_FIXED = struct.Struct("<8sHHI")
_CHUNK = struct.Struct("<BBHqII")
_CRC = struct.Struct("<I")
#: Upper bound of one chunk's payload; a larger length field means corruption.
MAX_PAYLOAD_BYTES = 1 << 26

# Chunk types.
CHUNK_SAMPLES = 1
CHUNK_GAP = 2
CHUNK_END = 3

# Sample chunk flags.
FLAG_RAW = 0x01  # raw chip codes present (int16 n×6 for an IMU, int32 n for a load cell)
FLAG_SI_F32 = 0x02  # SI values stored as float32 (exact for these values)
FLAG_SI_F64 = 0x04  # SI values stored as float64
FLAG_INVALID = 0x08  # a packed bit per sample follows: 1 = valid; absent = all valid

#: Gap reasons by code (stable: new reasons get new codes, codes are never reused).
GAP_REASONS: tuple[GapReason, ...] = (
    "fifo_overflow", "bus_error", "chip_reset", "missed_conversion", "stall", "outage", "source",
)

_STREAM_FIELDS = tuple(StreamInfo.__dataclass_fields__)
_IMU_CALIBRATION_FIELDS = ("mount_wxyz", "gyro_bias_dps", "accel_offset_g", "accel_scale",
                           "gyro_bias_sd_dps")


@dataclass
class NativeFile:
    """What :func:`scan_native` found: the recording plus the health of the file."""

    recording: Recording
    version: int
    finalised: bool
    torn_tail_bytes: int
    notes: list[str] = field(default_factory=list)


def _width(info: StreamInfo) -> int:
    return 6 if info.kind == "imu" else 1


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------
def _encode_samples(
    stream_id: int, info: StreamInfo, index0: int, raw: npt.NDArray[Any] | None,
    si: npt.NDArray[np.float64], valid: npt.NDArray[np.bool_],
) -> bytes:
    """One sample chunk for consecutive indices ``index0 ...``."""
    n = len(valid)
    flags = 0
    parts: list[bytes] = []
    if raw is not None:
        flags |= FLAG_RAW
        dtype = "<i2" if info.kind == "imu" else "<i4"
        parts.append(np.ascontiguousarray(raw, dtype=dtype).tobytes())
        if info.kind == "imu":
            gyro, accel = imu_si(raw, info)
            derived = np.hstack([gyro, accel])
        else:
            derived = force_si(raw, info).reshape(n, 1)
        # Values that are not exactly a function of the codes (a calibration applied
        # upstream) are stored as well, so replay stays bit-identical.
        store_si = not np.array_equal(derived, si.reshape(n, -1))
    else:
        store_si = True
    if store_si:
        si32 = si.astype(np.float32)
        if np.array_equal(si32.astype(np.float64), si, equal_nan=True):
            flags |= FLAG_SI_F32
            parts.append(si32.astype("<f4").tobytes())
        else:
            flags |= FLAG_SI_F64
            parts.append(np.ascontiguousarray(si, dtype="<f8").tobytes())
    if not valid.all():
        flags |= FLAG_INVALID
        parts.append(np.packbits(valid).tobytes())
    return _chunk(CHUNK_SAMPLES, stream_id, flags, index0, n, b"".join(parts))


def _chunk(kind: int, stream_id: int, flags: int, first: int, count: int, payload: bytes) -> bytes:
    head = _CHUNK.pack(kind, stream_id, flags, first, count, len(payload))
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + payload + _CRC.pack(crc)


#: Stream fields left out of the header at their default (absent means the default), so
#: streams that do not use them are written as before these fields existed.
_OMITTED_AT_DEFAULT = (*_IMU_CALIBRATION_FIELDS, "gyro_delay_s")


def _stream_entry(info: StreamInfo) -> dict[str, Any]:
    """A stream's header object: its fields, without the IMU calibration fields at the
    identity and without an unknown gyro delay."""
    entry = asdict(info)
    for name in _OMITTED_AT_DEFAULT:
        if entry[name] == StreamInfo.__dataclass_fields__[name].default:
            del entry[name]
    return entry


def encode_header(streams: Sequence[StreamInfo], meta: dict[str, Any]) -> bytes:
    """The file header: magic, version, and the JSON of the stream table and metadata."""
    body = json.dumps(
        {"streams": [_stream_entry(s) for s in streams], "meta": meta},
        sort_keys=True, separators=(",", ":"), default=str,
    ).encode("utf-8")
    fixed = _HEADER_FIXED.pack(MAGIC, VERSION, 0, len(body))
    return fixed + body + _CRC.pack(zlib.crc32(fixed[8:] + body))


@dataclass
class _Run:
    """Consecutive samples waiting in the writer: indices ``first ...``."""

    first: int
    raw: npt.NDArray[Any] | None
    si: npt.NDArray[np.float64]
    valid: npt.NDArray[np.bool_]


def _coalesce(pieces: list[Gap | _Run]) -> list[Gap | _Run]:
    """Merge adjacent runs that continue each other (fewer chunks: less overhead)."""
    out: list[Gap | _Run] = []
    for piece in pieces:
        last = out[-1] if out else None
        if (
            isinstance(piece, _Run)
            and isinstance(last, _Run)
            and last.first + len(last.valid) == piece.first
            and (last.raw is None) == (piece.raw is None)
        ):
            out[-1] = _Run(
                last.first,
                None if last.raw is None else np.concatenate([last.raw, piece.raw]),
                np.concatenate([last.si, piece.si]),
                np.concatenate([last.valid, piece.valid]),
            )
        else:
            out.append(piece)
    return out


class RecordingWriter:
    """Appends blocks to a native recording; see the module docstring for the flush policy.

    The header is written to a temporary file, synced and renamed into place before any
    sample, so ``path`` always exists as an openable recording once the constructor returns.
    Use as a context manager or call :meth:`close` (which writes the end record).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        streams: Sequence[StreamInfo],
        meta: dict[str, Any] | None = None,
        flush_interval_s: float = 0.05,
        fsync_interval_s: float = 1.0,
    ) -> None:
        if len(streams) > 255:
            raise ValueError("at most 255 streams per recording")
        self.path = Path(path)
        self._ids = {s.name: i for i, s in enumerate(streams)}
        if len(self._ids) != len(streams):
            raise ValueError("stream names must be unique")
        self._infos = list(streams)
        self._flush_interval_s = flush_interval_s
        self._fsync_interval_s = fsync_interval_s
        self._buffer = io.BytesIO()
        self._buffer_start_t: float | None = None
        self._last_fsync_t: float | None = None
        self._newest_t = -np.inf
        self._pending: list[list[Gap | _Run]] = [[] for _ in streams]
        self._delivered = [0] * len(streams)
        self._gap_samples = [0] * len(streams)
        self._closed = False
        header = encode_header(streams, dict(meta or {}))
        tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        try:
            with open(tmp, "wb") as handle:
                handle.write(header)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            raise _storage_error(self.path, error) from None

    @property
    def delivered(self) -> dict[str, int]:
        """Samples written (buffered or on disk) per stream."""
        return {s.name: self._delivered[i] for i, s in enumerate(self._infos)}

    def write(self, block: Block) -> None:
        """Append ``block`` (its gaps first, then its samples, split at index holes)."""
        if self._closed:
            raise ValueError("recording is closed")
        stream_id = self._ids.get(block.info.name)
        if stream_id is None:
            raise ValueError(f"stream {block.info.name!r} is not in this recording's table")
        info = self._infos[stream_id]
        pending = self._pending[stream_id]
        for gap in block.gaps:
            pending.append(gap)
            self._gap_samples[stream_id] += gap.count
        n = len(block)
        if n:
            if isinstance(block, ImuBlock):
                si = np.hstack([block.gyro_dps, block.accel_g])
            else:
                si = np.asarray(block.force_n, dtype=np.float64).reshape(n, 1)
            breaks = np.nonzero(np.diff(block.index) != 1)[0] + 1
            for lo, hi in zip(
                np.concatenate(([0], breaks)), np.concatenate((breaks, [n])), strict=True
            ):
                pending.append(
                    _Run(
                        int(block.index[lo]),
                        None if block.raw is None else np.asarray(block.raw[lo:hi]),
                        si[lo:hi],
                        np.asarray(block.valid[lo:hi], dtype=bool),
                    )
                )
            self._delivered[stream_id] += n
            first_t = info.t0_s + float(block.index[0]) / info.rate_hz
            last_t = info.t0_s + float(block.index[-1]) / info.rate_hz
            if self._buffer_start_t is None:
                self._buffer_start_t = first_t
            if self._last_fsync_t is None:
                self._last_fsync_t = first_t
            self._newest_t = max(self._newest_t, last_t)
        due = (
            self._buffer_start_t is not None
            and self._newest_t - self._buffer_start_t >= self._flush_interval_s
        )
        # A gap can stand for a long stretch of sample time: write it out at once.
        if block.gaps or due:
            self.flush()
            if (
                self._last_fsync_t is not None
                and self._newest_t - self._last_fsync_t >= self._fsync_interval_s
            ):
                self._fsync()
                self._last_fsync_t = self._newest_t

    def _encode_pending(self) -> None:
        """Move pending pieces into the byte buffer, one chunk per contiguous run."""
        for stream_id, pending in enumerate(self._pending):
            info = self._infos[stream_id]
            for piece in _coalesce(pending):
                if isinstance(piece, Gap):
                    code = GAP_REASONS.index(piece.reason)
                    self._buffer.write(
                        _chunk(CHUNK_GAP, stream_id, code, piece.start_index, piece.count, b"")
                    )
                else:
                    self._buffer.write(
                        _encode_samples(
                            stream_id, info, piece.first, piece.raw, piece.si, piece.valid
                        )
                    )
            pending.clear()

    def flush(self) -> None:
        """Hand everything buffered to the OS (survives a process kill, not a power cut)."""
        self._encode_pending()
        data = self._buffer.getvalue()
        if data:
            self._write_all(data)
            self._buffer = io.BytesIO()
        self._buffer_start_t = None

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as error:
            raise _storage_error(self.path, error) from None

    def _fsync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as error:
            raise _storage_error(self.path, error) from None

    def close(self, meta: dict[str, Any] | None = None) -> None:
        """Flush, write the end record (sample totals and optional closing metadata), sync."""
        if self._closed:
            return
        self._closed = True
        try:
            summary = {
                "delivered": self.delivered,
                "gap_samples": {s.name: self._gap_samples[i] for i, s in enumerate(self._infos)},
                "meta": meta or {},
            }
            payload = json.dumps(summary, sort_keys=True, default=str).encode("utf-8")
            self._encode_pending()
            self._buffer.write(_chunk(CHUNK_END, 0, 0, 0, 0, payload))
            self.flush()
            self._fsync()
        finally:
            os.close(self._fd)

    def abandon(self) -> None:
        """Close the file without the end record (tests of interrupted recordings)."""
        if not self._closed:
            self._closed = True
            os.close(self._fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _storage_error(path: Path, error: OSError) -> StorageError:
    return StorageError(
        f"cannot write recording {path}: {error.strerror or error}; free some space or "
        "choose another output directory"
    )


def write_native(recording: Recording, path: str | os.PathLike[str]) -> Path:
    """Write a whole in-memory ``recording`` as a native file (used by import and fixtures)."""
    from spinecoach.acquisition.replay import replay_blocks  # replay builds on this module

    with RecordingWriter(path, recording.streams, recording.meta) as writer:
        for block in replay_blocks(recording):
            writer.write(block)
    return Path(path)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
@dataclass
class _Parts:
    info: StreamInfo
    index: list[npt.NDArray[np.int64]] = field(default_factory=list)
    raw: list[npt.NDArray[Any] | None] = field(default_factory=list)
    si: list[npt.NDArray[np.float64]] = field(default_factory=list)
    valid: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)


def _read_header(path: Path, data: bytes) -> tuple[int, list[StreamInfo], dict[str, Any], int]:
    if len(data) < _HEADER_FIXED.size or not data.startswith(MAGIC):
        raise DataFormatError(f"{path}: not a native recording (bad magic); expected a .screc file")
    _, version, _, json_len = _HEADER_FIXED.unpack_from(data)
    if version != VERSION:
        raise DataFormatError(
            f"{path}: recording format version {version}; this spinecoach reads version "
            f"{VERSION}: upgrade spinecoach"
        )
    end = _HEADER_FIXED.size + json_len
    if len(data) < end + 4:
        raise DataFormatError(f"{path}: header truncated at byte {len(data)}; the file is damaged")
    (crc,) = _CRC.unpack_from(data, end)
    if zlib.crc32(data[8:end]) != crc:
        raise DataFormatError(f"{path}: header checksum mismatch; the file is damaged")
    try:
        head = json.loads(data[_HEADER_FIXED.size:end])
        streams = [
            StreamInfo(**{k: v for k, v in s.items() if k in _STREAM_FIELDS})
            for s in head["streams"]
        ]
        _check_imu_calibrations(streams)
        meta = dict(head.get("meta", {}))
    except (ValueError, KeyError, TypeError) as error:
        raise DataFormatError(f"{path}: header stream table unreadable ({error})") from None
    return version, streams, meta, end + 4


def _check_imu_calibrations(streams: list[StreamInfo]) -> None:
    """Raise ValueError for an IMU calibration in the stream table the pipeline would refuse."""
    from spinecoach.core.imu_calibration import ImuCalibration

    for info in streams:
        if info.kind == "imu":
            ImuCalibration.from_stream(info)


def _decode_samples(
    parts: _Parts, flags: int, first: int, count: int, payload: bytes
) -> bool:
    """Append one sample chunk's arrays to ``parts``; False when the payload does not fit."""
    info = parts.info
    width = _width(info)
    pos = 0
    raw: npt.NDArray[Any] | None = None
    expected = 0
    if flags & FLAG_RAW:
        expected += count * width * (2 if info.kind == "imu" else 4)
    if flags & FLAG_SI_F32:
        expected += count * width * 4
    if flags & FLAG_SI_F64:
        expected += count * width * 8
    if flags & FLAG_INVALID:
        expected += (count + 7) // 8
    if expected != len(payload) or (flags & FLAG_SI_F32 and flags & FLAG_SI_F64):
        return False
    si: npt.NDArray[np.float64]
    if flags & FLAG_RAW:
        code_type = np.dtype("<i2") if info.kind == "imu" else np.dtype("<i4")
        codes = np.frombuffer(payload, dtype=code_type, count=count * width, offset=pos)
        raw = codes.astype(np.int16 if info.kind == "imu" else np.int32)
        if info.kind == "imu":
            raw = raw.reshape(count, 6)
        pos += count * width * code_type.itemsize
    if flags & (FLAG_SI_F32 | FLAG_SI_F64):
        value_type = np.dtype("<f4") if flags & FLAG_SI_F32 else np.dtype("<f8")
        values = np.frombuffer(payload, dtype=value_type, count=count * width, offset=pos)
        si = values.astype(np.float64).reshape(count, width)
        pos += count * width * value_type.itemsize
    elif raw is not None:
        if info.kind == "imu":
            gyro, accel = imu_si(raw, info)
            si = np.hstack([gyro, accel])
        else:
            si = force_si(raw, info).reshape(count, 1)
    else:
        return False
    if flags & FLAG_INVALID:
        bits = np.unpackbits(np.frombuffer(payload, np.uint8, offset=pos), count=count)
        valid = bits.astype(bool)
    else:
        valid = np.ones(count, dtype=bool)
    parts.index.append(np.arange(first, first + count, dtype=np.int64))
    parts.raw.append(raw)
    parts.si.append(si)
    parts.valid.append(valid)
    return True


def scan_native(path: str | os.PathLike[str]) -> NativeFile:
    """Read a native recording, stopping at a torn or corrupt tail (reported, not raised)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataFormatError(f"{path}: cannot read ({error.strerror})") from None
    version, infos, meta, pos = _read_header(path, data)
    parts = [_Parts(info) for info in infos]
    finalised = False
    notes: list[str] = []
    size = len(data)
    while pos < size:
        if pos + _CHUNK.size + _CRC.size > size:
            break
        kind, stream_id, flags, first, count, length = _CHUNK.unpack_from(data, pos)
        end = pos + _CHUNK.size + length
        if length > MAX_PAYLOAD_BYTES or end + _CRC.size > size:
            break
        (crc,) = _CRC.unpack_from(data, end)
        if zlib.crc32(data[pos:end]) != crc:
            break
        payload = data[pos + _CHUNK.size:end]
        if kind == CHUNK_END:
            finalised = True
            pos = end + _CRC.size
            break
        if stream_id >= len(parts):
            break
        if kind == CHUNK_SAMPLES:
            if not _decode_samples(parts[stream_id], flags, first, count, payload):
                break
        elif kind == CHUNK_GAP:
            if flags >= len(GAP_REASONS):
                break
            parts[stream_id].gaps.append(
                Gap(infos[stream_id].name, first, count, GAP_REASONS[flags])
            )
        else:
            break
        pos = end + _CRC.size
    torn = size - pos
    if torn:
        notes.append(
            f"{path}: ignored a damaged or incomplete tail of {torn} bytes "
            "(the recording was interrupted); everything before it is intact"
        )
    elif not finalised:
        notes.append(f"{path}: the recording was not closed cleanly (no end record); all chunks intact")
    return NativeFile(_assemble(parts, meta), version, finalised, torn, notes)


def _assemble(parts: list[_Parts], meta: dict[str, Any]) -> Recording:
    recording = Recording(meta=meta)
    for p in parts:
        info = p.info
        width = _width(info)
        index = np.concatenate(p.index) if p.index else np.empty(0, dtype=np.int64)
        si = np.concatenate(p.si) if p.si else np.empty((0, width))
        valid = np.concatenate(p.valid) if p.valid else np.empty(0, dtype=bool)
        raw: npt.NDArray[Any] | None = None
        if p.raw and all(r is not None for r in p.raw):
            raw = np.concatenate(p.raw)  # type: ignore[arg-type]
        gaps = sorted(p.gaps, key=lambda g: g.start_index)
        if info.kind == "imu":
            recording.imu[info.name] = ImuStream(
                info, index, np.ascontiguousarray(si[:, :3]), np.ascontiguousarray(si[:, 3:]),
                valid, raw, gaps,
            )
        else:
            recording.force[info.name] = ForceStream(info, index, si[:, 0].copy(), valid, raw, gaps)
    return recording


def read_native(path: str | os.PathLike[str], notes: list[str] | None = None) -> Recording:
    """Load a native recording; remarks (a torn tail) are appended to ``notes``."""
    scanned = scan_native(path)
    if notes is not None:
        notes.extend(scanned.notes)
    return scanned.recording
