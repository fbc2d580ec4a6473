"""Reading a long interchange CSV piece by piece, in bounded memory (``analyze`` on hour-long
files).

:func:`spinecoach.recording.interchange.read_csv` holds the whole file, its text and its table
in memory: fine for a session, gigabytes for an hour at 1 kHz. :class:`CsvStreamReader` reads
the same format in two passes of :data:`CHUNK_LINES` lines. The first recovers each stream's
sample clock exactly as the importer does (median interval, then a least-squares fit of sample
number against time, here from running sums; the median over the first
first piece of lines holding two or more of its samples) and lets the caller see every sample (statistics); the second
yields each piece's samples with their indices. Malformed files get the importer's messages,
naming the file's line.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.blocks import StreamInfo
from spinecoach.errors import DataFormatError
from spinecoach.recording import interchange as ic

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Lines parsed at a time (about 4 MB of text at 1 kHz IMU rows).
CHUNK_LINES = 50_000

#: (stream name, kind, sample indices, values (n, 6) or (n,), valid)
Piece = tuple[str, str, IntArray, FloatArray, BoolArray]


@dataclass
class _Clock:
    """Running version of :func:`interchange.estimate_rate_hz` for one stream."""

    name: str
    kind: str
    positions: tuple[int, ...]
    pending: list[FloatArray] = field(default_factory=list)
    pending_lines: list[IntArray] = field(default_factory=list)
    pending_n: int = 0
    period_s: float | None = None
    first_t: float = 0.0
    first_line: int = 0
    second_line: int = 0
    last_t: float = 0.0
    number: float = 0.0
    count: int = 0
    sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])  # t, n, tt, tn

    def add(self, t: FloatArray, lines: IntArray) -> None:
        if len(t) == 0:
            return
        if self.period_s is None:
            self.pending.append(t)
            self.pending_lines.append(lines)
            self.pending_n += len(t)
            if self.pending_n >= 2:
                self._fix_period()
            return
        self._consume(t)

    def _fix_period(self) -> None:
        if not self.pending:
            return
        t = np.concatenate(self.pending)
        lines = np.concatenate(self.pending_lines)
        self.pending, self.pending_lines = [], []
        self.first_line = int(lines[0])
        self.second_line = int(lines[1]) if len(lines) > 1 else self.first_line
        if len(t) < 2:
            self.count = len(t)
            return
        period = float(np.median(np.diff(t)))
        if period <= 0:
            raise ic._fail(self.path, self.second_line, None, f"stream {self.name!r}: most samples "
                           "share a time; expected increasing sample times")
        self.period_s = period
        self._consume(t)

    def _consume(self, t: FloatArray) -> None:
        assert self.period_s is not None
        if self.count == 0:
            self.first_t = float(t[0])
            steps = np.maximum(np.rint(np.diff(t) / self.period_s), 1.0)
            number = np.concatenate(([0.0], np.cumsum(steps)))
        else:
            steps = np.maximum(np.rint(np.diff(t, prepend=self.last_t) / self.period_s), 1.0)
            number = self.number + np.cumsum(steps)
        tc = t - self.first_t
        s = self.sums
        s[0] += float(tc.sum())
        s[1] += float(number.sum())
        s[2] += float(tc @ tc)
        s[3] += float(tc @ number)
        self.count += len(t)
        self.last_t = float(t[-1])
        self.number = float(number[-1])

    def rate_hz(self) -> float:
        if self.period_s is None:
            self._fix_period()
        n = float(self.count)
        st, sn, stt, stn = self.sums
        return (n * stn - st * sn) / (n * stt - st * st)

    path: Path = Path()


@dataclass
class _Stream:
    clock: _Clock
    info: StreamInfo | None = None
    invalid: list[tuple[int, int]] = field(default_factory=list)
    last_index: int | None = None


def _line_chunks(handle: TextIO, size: int) -> Iterator[tuple[list[str], int]]:
    """Lists of up to ``size`` lines (line ends removed) with the file line number of the
    first; blank lines at the end of the file are dropped."""
    line_no = 2
    held_blank: list[str] = []
    while True:
        chunk = [line.rstrip("\r\n") for line in itertools.islice(handle, size)]
        if not chunk:
            return
        # blank lines are only dropped at the end of the file: hold them until more text
        body = held_blank + chunk
        k = len(body)
        while k and not body[k - 1].strip():
            k -= 1
        held_blank = body[k:]
        if k:
            yield body[:k], line_no
            line_no += k


class CsvStreamReader:
    """Two-pass reader of an interchange CSV (see the module docstring).

    ``scan(on_samples)`` runs the first pass and returns the stream descriptions;
    ``pieces()`` runs the second. Remarks (ignored columns, repeated rows) go to ``notes``.
    """

    def __init__(self, path: str | os.PathLike[str], notes: list[str],
                 chunk_lines: int | None = None) -> None:
        self.path = Path(path)
        self.notes = notes
        self.chunk_lines = chunk_lines or CHUNK_LINES
        self.streams: dict[str, _Stream] = {}
        self._header: list[str] = []
        self._used: list[int] = []
        self._meta: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        self._header_streams: list[tuple[str, str, dict[str, Any]]] = []

    # -------------------------------------------------------------- reading
    def _open(self) -> TextIO:
        try:
            return open(self.path, encoding="utf-8-sig", newline=None)
        except OSError as error:
            raise DataFormatError(f"{self.path}: cannot read ({error.strerror})") from None

    def _tables(self) -> Iterator[tuple[FloatArray, IntArray]]:
        """Each chunk's table (time + used columns; repeated rows dropped) and line numbers."""
        handle = self._open()
        with handle:
            try:
                first = handle.readline().rstrip("\r\n")
                if not first.strip():
                    raise ic._fail(self.path, 1, None, f"empty file; expected a header starting "
                                   f"with {ic.TIME_COLUMN!r}")
                self._header = [cell.strip() for cell in first.split(",")]
                last_row: FloatArray | None = None
                last_t = -np.inf
                for lines, line0 in _line_chunks(handle, self.chunk_lines):
                    data = ic._parse_body(self.path, lines, self._header, self._used, line0)
                    numbers = np.arange(line0, line0 + len(lines), dtype=np.int64)
                    if last_row is not None:  # a row repeated across the chunk boundary
                        data = np.vstack([last_row, data])
                        numbers = np.concatenate(([line0 - 1], numbers))
                    repeat = ic._repeated_rows(data)
                    if repeat.any():
                        if not self._repeats[0]:
                            self._repeats[1] = int(numbers[np.argmax(repeat)])
                        self._repeats[0] += int(np.count_nonzero(repeat))
                        data, numbers = data[~repeat], numbers[~repeat]
                    if last_row is not None:
                        data, numbers = data[1:], numbers[1:]
                    if len(data) == 0:
                        continue
                    last_row = data[-1].copy()
                    t = data[:, 0]
                    if np.isnan(t).any():
                        k = int(np.flatnonzero(np.isnan(t))[0])
                        raise ic._fail(self.path, int(numbers[k]), self._time_pos + 1,
                                       f"expected a time in {ic.TIME_COLUMN!r}, found an empty cell")
                    back = np.flatnonzero(np.diff(t, prepend=last_t) < 0)
                    if len(back):
                        k = int(back[0])
                        before = t[k - 1] if k else last_t
                        raise ic._fail(self.path, int(numbers[k]), self._time_pos + 1,
                                       f"time goes backwards ({t[k]:.9g} s after {before:.9g} s); "
                                       "expected non-decreasing times")
                    last_t = float(t[-1])
                    yield data, numbers
            except UnicodeDecodeError as error:
                raise DataFormatError(f"{self.path}: not UTF-8 text (byte {error.start} of a "
                                      "piece); expected a CSV") from None

    def _split(self, data: FloatArray, numbers: IntArray
               ) -> Iterator[tuple[_Stream, FloatArray, FloatArray, IntArray]]:
        """Per stream: times, values and line numbers of the rows that carry its samples."""
        col = 1
        for stream in self.streams.values():
            width = len(stream.clock.positions)
            values = data[:, col:col + width]
            col += width
            present = ~np.isnan(values)
            rows_with = present.any(axis=1)
            partial = np.flatnonzero(rows_with & ~present.all(axis=1))
            if len(partial):
                k = int(partial[0])
                j = int(np.flatnonzero(~present[k])[0])
                pos = stream.clock.positions[j]
                raise ic._fail(self.path, int(numbers[k]), pos + 1,
                               f"expected a number in {self._header[pos]!r}: the other IMU "
                               "columns of this row have values (an IMU sample has all six)")
            yield stream, data[rows_with, 0], values[rows_with], numbers[rows_with]

    # -------------------------------------------------------------- pass 1
    def header(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Read the header and the sidecar: (name, kind, calibration fields of StreamInfo) per
        stream, in file order."""
        if self.streams:
            return self._header_streams
        self._repeats = [0, 0]  # rows dropped for repeating the row before, first line
        with self._open() as handle:
            try:
                first = handle.readline().rstrip("\r\n")
            except UnicodeDecodeError:
                raise DataFormatError(f"{self.path}: not UTF-8 text at the header; expected a "
                                      "CSV") from None
        if not first.strip():
            raise ic._fail(self.path, 1, None,
                           f"empty file; expected a header starting with {ic.TIME_COLUMN!r}")
        header = [cell.strip() for cell in first.split(",")]
        self._time_pos, columns, unknown = ic._parse_header(self.path, header)
        if unknown:
            self.notes.append(f"{self.path}: ignored {len(unknown)} unknown column(s): "
                              + ", ".join(repr(u) for u in unknown))
        self._used = [self._time_pos] + [p for c in columns for p in c.positions]
        sidecar = ic._read_sidecar(self.path)
        stream_meta = sidecar.get(ic.SIDECAR_STREAMS_KEY, {})
        self._meta = stream_meta if isinstance(stream_meta, dict) else {}
        self.meta = {k: v for k, v in sidecar.items() if k != ic.SIDECAR_STREAMS_KEY}
        self._header_streams = []
        for c in columns:
            clock = _Clock(c.name, c.kind, c.positions)
            clock.path = self.path
            self.streams[c.name] = _Stream(clock)
            smeta = self._meta.get(c.name, {})
            fields = ic._sidecar_imu_calibration(self.path, c.name, smeta) \
                if isinstance(smeta, dict) else {}
            self._header_streams.append((c.name, c.kind, fields))
        return self._header_streams

    def rate_so_far(self, name: str) -> float | None:
        """A stream's rate from its median interval once known (Hz), during the first pass."""
        period = self.streams[name].clock.period_s
        return None if period is None else 1.0 / period

    def scan(self, on_samples: Callable[[str, str, FloatArray, BoolArray], None] | None = None
             ) -> list[StreamInfo]:
        """First pass: stream clocks (and ``on_samples(name, kind, values, valid)`` for every
        piece); returns the streams' descriptions."""
        self.header()
        for data, numbers in self._tables():
            for stream, t, values, _ in self._split(data, numbers):
                stream.clock.add(t, _)
                if on_samples is not None and len(t):
                    on_samples(stream.clock.name, stream.clock.kind,
                               values if values.shape[1] > 1 else values[:, 0],
                               np.ones(len(t), dtype=bool))
        count, first = self._repeats
        if count:
            self.notes.append(f"{self.path}: dropped {count} row(s) repeating the row before "
                              f"them (first at line {first})")
        return [self._describe(s) for s in self.streams.values()]

    def _describe(self, stream: _Stream) -> StreamInfo:
        clock = stream.clock
        if clock.period_s is None and clock.pending:
            clock._fix_period()
        if clock.count == 0 and not clock.first_line:
            raise DataFormatError(f"{self.path}: stream {clock.name!r} has no samples; expected "
                                  "at least two")
        if clock.count < 2:
            raise ic._fail(self.path, clock.first_line, None, f"stream {clock.name!r} has one "
                           "sample; expected at least two to know its rate")
        smeta = self._meta.get(clock.name, {})
        smeta = smeta if isinstance(smeta, dict) else {}
        rate, t0 = smeta.get("rate_hz"), smeta.get("t0_s")
        if not (isinstance(rate, (int, float)) and rate > 0 and isinstance(t0, (int, float))
                and self._sidecar_clock_fits(clock, float(rate), float(t0))):
            rate, t0 = clock.rate_hz(), clock.first_t
        invalid = smeta.get("invalid")
        if isinstance(invalid, list):
            stream.invalid = sorted((int(a), int(a) + int(n)) for a, n in invalid)
        stream.info = StreamInfo(
            name=clock.name, kind="imu" if clock.kind == "imu" else "force", rate_hz=float(rate),
            chip=str(smeta.get("chip", "")), t0_s=float(t0),
            **ic.sidecar_stream_fields(self.path, clock.name, smeta),
        )
        return stream.info

    def _sidecar_clock_fits(self, clock: _Clock, rate: float, t0: float) -> bool:
        """The sidecar's clock puts every sample within a quarter period of its time (checked
        on the first and last sample: a clock that drifts shows at the ends)."""
        ends = np.array([clock.first_t, clock.last_t])
        index = np.rint((ends - t0) * rate)
        return bool(index[0] >= 0 and np.abs(ends - (t0 + index / rate)).max() < 0.25 / rate)

    # -------------------------------------------------------------- pass 2
    def pieces(self) -> Iterator[list[Piece]]:
        """Second pass: per chunk of lines, each stream's samples with their indices and
        validity."""
        for data, numbers in self._tables():
            out: list[Piece] = []
            for stream, t, values, lines in self._split(data, numbers):
                if len(t) == 0:
                    continue
                info = stream.info
                assert info is not None
                index = np.rint((t - info.t0_s) * info.rate_hz).astype(np.int64)
                before = index[0] - 1 if stream.last_index is None else stream.last_index
                bad = np.flatnonzero(np.diff(index, prepend=before) < 1)
                if len(bad):
                    k = int(bad[0])
                    raise ic._fail(
                        self.path, int(lines[k]), None,
                        f"stream {info.name!r}: the sample at {t[k]:.9g} s falls in the same "
                        f"sample period as the one before ({info.rate_hz:.6g} Hz); expected one "
                        "sample per period")
                stream.last_index = int(index[-1])
                valid = np.ones(len(index), dtype=bool)
                for a, b in stream.invalid:
                    lo, hi = np.searchsorted(index, [a, b])
                    valid[lo:hi] = False
                out.append((info.name, info.kind, index,
                            values if values.shape[1] > 1 else values[:, 0], valid))
            yield out
