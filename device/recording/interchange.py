"""The interchange CSV: import and export (DESIGN.md, "Interchange CSV").

Compatible with x-io Fusion's ``sensor_data.csv`` convention::

    Time (s),Gyroscope X (deg/s),...,Accelerometer Z (g),Force (N)

``Time (s)`` is required; the IMU group (all six columns) and ``Force (N)`` are each optional but
at least one stream is present. A second IMU (or load cell) carries a suffix: ``Gyroscope X
(deg/s) [pelvis]``. Streams may run at different rates: a row leaves a stream's cells empty when
that stream has no sample at that time. Unknown columns are ignored and reported once, as an
:class:`UnknownColumnsWarning` (and in the optional ``notes`` list). Empty cells past the
header's last column (spreadsheets end rows with a comma) are ignored, and a row that repeats
the row before it cell for cell (a logger writing a line twice) is dropped, with a note.

A CSV carries times, not sample indices, so import recovers the sample clock: each stream's rate
is estimated from its median sample interval (robust to jitter and to holes), refined by a
least-squares fit of sample number against time, and each sample gets
``index = round((t - t0) * rate_hz)`` with ``t0`` its first time. A hole of more than 1.5 periods
becomes a ``Gap(reason="source")``, so delivered + gaps == expected holds for imported data too.

The optional JSON sidecar ``NAME.csv.json`` holds the session metadata (exercise, placement, side,
notes) that lands in :attr:`Recording.meta`. Export also writes, under ``"streams"``, each
stream's exact rate, ``t0_s``, chip, gap records and invalid-sample ranges, and an IMU's
calibration in effect (``imu_calibration``, see :mod:`spinecoach.core.imu_calibration`; the
samples stay as measured), so an export -> import round trip is exact in every index and gap
and within 1e-6 in every value, and analyses the same.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.blocks import Gap, StreamInfo
from spinecoach.errors import DataFormatError, StorageError
from spinecoach.recording.model import ForceStream, ImuStream, Recording

TIME_COLUMN = "Time (s)"
#: The IMU group in file order: gyroscope x, y, z (deg/s) then accelerometer x, y, z (g).
IMU_COLUMNS: tuple[str, ...] = (
    "Gyroscope X (deg/s)",
    "Gyroscope Y (deg/s)",
    "Gyroscope Z (deg/s)",
    "Accelerometer X (g)",
    "Accelerometer Y (g)",
    "Accelerometer Z (g)",
)
FORCE_COLUMN = "Force (N)"
#: Names of unsuffixed streams (the usual one-IMU, one-load-cell rig).
DEFAULT_IMU_NAME = "trunk"
DEFAULT_FORCE_NAME = "force"
#: Sidecar keys the product itself reads; others are kept in ``meta`` as they are.
SIDECAR_STREAMS_KEY = "streams"
#: Per-stream sidecar key of an IMU's calibration in effect (absent: uncalibrated).
SIDECAR_IMU_CALIBRATION_KEY = "imu_calibration"
#: Per-stream sidecar key of the gyro low-pass's group delay (s; absent: unknown).
SIDECAR_GYRO_DELAY_KEY = "gyro_delay_s"
#: The largest gyro group delay a sidecar may give (s): the slowest MEMS filters are ~35 ms.
MAX_GYRO_DELAY_S = 0.1
#: A hole longer than this many periods is a gap (1.5: halfway between one and two periods).
GAP_THRESHOLD_PERIODS = 1.5

#: Digits written on export: 9 decimals of a second (1 ns) keep every index exact up to far
#: beyond 1 kHz; 7 decimals of a value keep it within 5e-8 of the float64 it came from.
TIME_FORMAT = "%.9f"
VALUE_FORMAT = "%.7f"

_COLUMN_RE = re.compile(
    r"^(?P<quantity>Gyroscope|Accelerometer|Force|Time)(?: (?P<axis>[XYZ]))?"
    r" \((?P<unit>[^)]*)\)(?: \[(?P<suffix>[^\]]+)\])?$"
)
_EXPECTED_UNIT = {"Gyroscope": "deg/s", "Accelerometer": "g", "Force": "N", "Time": "s"}
_SUFFIX_RE = re.compile(r" \[[^\]]+\]$")


class UnknownColumnsWarning(UserWarning):
    """An imported CSV had columns the product does not use; they were ignored."""


@dataclass(frozen=True)
class _StreamColumns:
    """Where one stream's cells sit in the file (0-based column positions)."""

    name: str
    kind: str  # "imu" or "force"
    positions: tuple[int, ...]


# --------------------------------------------------------------------------------------------
# header
# --------------------------------------------------------------------------------------------
def _fail(path: Path, line: int, column: int | None, what: str) -> DataFormatError:
    where = f"{path}: line {line}" + (f", column {column}" if column is not None else "")
    return DataFormatError(f"{where}: {what}")


def _parse_header(
    path: Path, header: list[str]
) -> tuple[int, list[_StreamColumns], list[str]]:
    """Return the time column position, the streams and the unknown column names."""
    seen: dict[str, int] = {}
    time_pos: int | None = None
    imu_groups: dict[str, dict[str, int]] = {}
    force_cols: dict[str, int] = {}
    unknown: list[str] = []
    for pos, name in enumerate(header):
        col = pos + 1
        if name in seen:
            raise _fail(path, 1, col, f"duplicate column {name!r} (first at column {seen[name]})")
        seen[name] = col
        match = _COLUMN_RE.match(name)
        if match is None:
            unknown.append(name)
            continue
        quantity, unit, suffix = match["quantity"], match["unit"], match["suffix"]
        if unit != _EXPECTED_UNIT[quantity]:
            raise _fail(
                path, 1, col,
                f"{name!r} is in {unit!r}; expected {quantity} in {_EXPECTED_UNIT[quantity]!r} "
                "(convert the column or rename it to be ignored)",
            )
        if quantity == "Time":
            if suffix is not None or match["axis"] is not None:
                unknown.append(name)
            else:
                time_pos = pos
        elif quantity == "Force":
            if match["axis"] is not None:
                unknown.append(name)
            else:
                force_cols[suffix or DEFAULT_FORCE_NAME] = pos
        else:
            if match["axis"] is None:
                unknown.append(name)
                continue
            base = _SUFFIX_RE.sub("", name)
            imu_groups.setdefault(suffix or DEFAULT_IMU_NAME, {})[base] = pos
    if time_pos is None:
        raise _fail(path, 1, None, f"expected a {TIME_COLUMN!r} column in the header")
    streams: list[_StreamColumns] = []
    for stream_name, group in imu_groups.items():
        missing = [c for c in IMU_COLUMNS if c not in group]
        if missing:
            label = "" if stream_name == DEFAULT_IMU_NAME else f" [{stream_name}]"
            raise _fail(
                path, 1, None,
                f"the IMU group{label} lacks {', '.join(repr(m + label) for m in missing)}; "
                "expected all six gyroscope and accelerometer columns",
            )
        streams.append(
            _StreamColumns(stream_name, "imu", tuple(group[c] for c in IMU_COLUMNS))
        )
    for stream_name, pos in force_cols.items():
        if stream_name in imu_groups:
            raise _fail(path, 1, pos + 1, f"stream name [{stream_name}] used by an IMU and a force")
        streams.append(_StreamColumns(stream_name, "force", (pos,)))
    if not streams:
        raise _fail(
            path, 1, None,
            f"expected at least one stream: the six IMU columns ({IMU_COLUMNS[0]!r} ...) "
            f"or {FORCE_COLUMN!r}",
        )
    return time_pos, streams, unknown


# --------------------------------------------------------------------------------------------
# body
# --------------------------------------------------------------------------------------------
def _fill_empty_cells(body: str) -> str:
    """``body`` with "nan" in every empty cell (numpy refuses empty fields).

    Plain substring replacement (a regex over the whole body cost more than the parse):
    each pass over ",," fills at least every other cell of a run of empties, so a few passes
    fill any run; then cells empty at the start or end of a line.
    """
    text = body
    while ",," in text:
        text = text.replace(",,", ",nan,")
    text = text.replace("\n,", "\nnan,").replace(",\n", ",nan\n")
    if text.startswith(","):
        text = "nan" + text
    if text.endswith(","):
        text += "nan"
    return text


def _validate_rows(
    path: Path, lines: Sequence[str], n_columns: int, used: Sequence[int], header: Sequence[str],
    first_line: int = 2,
) -> None:
    """Line-by-line check that raises the precise error; called only when numpy refused.
    ``first_line`` is the file line number of ``lines[0]``."""
    for line_no, line in enumerate(lines, start=first_line):
        cells = line.split(",")
        if len(cells) != n_columns:
            raise _fail(
                path, line_no, None,
                f"expected {n_columns} comma-separated cells as in the header, found {len(cells)}",
            )
        for pos in used:
            text = cells[pos].strip()
            if not text:
                continue
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise _fail(
                    path, line_no, pos + 1,
                    f"expected a finite number or an empty cell for {header[pos]!r}, "
                    f"found {text[:30]!r}",
                )


def _drop_trailing_empty_cells(lines: list[str], n_columns: int) -> list[str]:
    """``lines`` without empty cells beyond the header's last column (spreadsheets often end
    every row with a comma); a row with values there is left for the validator to refuse."""
    out = []
    for line in lines:
        cells = line.split(",")
        if len(cells) > n_columns and not "".join(cells[n_columns:]).strip():
            line = ",".join(cells[:n_columns])
        out.append(line)
    return out


def _repeated_rows(data: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Rows equal to the row before them in every cell (NaN equal to NaN)."""
    if len(data) < 2:
        return np.zeros(len(data), dtype=bool)
    same = (data[1:] == data[:-1]) | (np.isnan(data[1:]) & np.isnan(data[:-1]))
    return np.concatenate(([False], same.all(axis=1)))


def _drop_repeated_rows(
    data: npt.NDArray[np.float64], line_numbers: npt.NDArray[np.int64], path: Path, notes: list[str]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Rows that repeat the row before them cell for cell (a logger writing a line twice)
    dropped, with one note."""
    repeat = _repeated_rows(data)
    count = int(np.count_nonzero(repeat))
    if count == 0:
        return data, line_numbers
    first = int(line_numbers[np.argmax(repeat)])
    notes.append(f"{path}: dropped {count} row(s) repeating the row before them (first at "
                 f"line {first})")
    return data[~repeat], line_numbers[~repeat]


def _parse_body(
    path: Path, lines: list[str], header: list[str], used: list[int], first_line: int = 2
) -> npt.NDArray[np.float64]:
    """Parse the data rows into a float64 array (rows × ``used``), NaN for empty cells;
    ``first_line`` is the file line number of ``lines[0]`` (for error messages)."""
    n_columns = len(header)
    if not lines:
        return np.empty((0, len(used)))
    commas = n_columns - 1
    body = "\n".join(lines)
    # numpy would accept a literal nan/inf and cannot count cells per row: check those first.
    lowered = body.lower()
    # A total that does not add up pins a bad row at once; rows that err both ways and cancel
    # are refused by numpy (column count changed) and then located by the validator.
    if body.count(",") != commas * len(lines):
        lines = _drop_trailing_empty_cells(lines, n_columns)
        body = "\n".join(lines)
    if body.count(",") != commas * len(lines) or "nan" in lowered or "inf" in lowered:
        _validate_rows(path, lines, n_columns, used, header, first_line)
    text = _fill_empty_cells(body)
    try:
        data = np.loadtxt(
            io.StringIO(text), delimiter=",", usecols=used, ndmin=2, dtype=np.float64,
            comments=None,
        )
    except ValueError:
        _validate_rows(path, lines, n_columns, used, header, first_line)
        raise  # unreachable: the validator raises on whatever numpy refused
    return data


# --------------------------------------------------------------------------------------------
# sample clock recovery
# --------------------------------------------------------------------------------------------
def estimate_rate_hz(t_s: npt.NDArray[np.float64]) -> float:
    """Sample rate (Hz) of sample times ``t_s`` that may have jitter and holes.

    The median interval gives the period robustly (holes and jitter are in the tails); each
    sample's number is then counted in whole periods and a least-squares fit of number against
    time refines the rate, so a period printed with few digits does not drift over a long file.
    """
    if len(t_s) < 2:
        raise ValueError("need at least two samples to estimate a rate")
    period_s = float(np.median(np.diff(t_s)))
    if period_s <= 0:
        raise ValueError("median sample interval is not positive")
    steps = np.maximum(np.rint(np.diff(t_s) / period_s), 1.0)
    number = np.concatenate(([0.0], np.cumsum(steps)))
    t_c = t_s - t_s.mean()
    n_c = number - number.mean()
    return float(np.dot(t_c, n_c) / np.dot(t_c, t_c))


def _holes(index: npt.NDArray[np.int64], stream: str, start: int = 0) -> list[Gap]:
    """Gap records for the missing indices between ``start`` and the last delivered index."""
    if len(index) == 0:
        return []
    prev = np.concatenate(([start - 1], index[:-1]))
    missing = index - prev - 1
    where = np.nonzero(missing > 0)[0]
    return [Gap(stream, int(prev[k] + 1), int(missing[k]), "source") for k in where]


def _sample_index(
    path: Path,
    name: str,
    t_s: npt.NDArray[np.float64],
    line_numbers: npt.NDArray[np.int64],
    rate_hz: float,
    t0_s: float,
) -> npt.NDArray[np.int64]:
    index = np.rint((t_s - t0_s) * rate_hz).astype(np.int64)
    if len(index) > 1:
        bad = np.nonzero(np.diff(index) < 1)[0]
        if len(bad):
            k = int(bad[0]) + 1
            raise _fail(
                path, int(line_numbers[k]), None,
                f"stream {name!r}: the sample at {t_s[k]:.9g} s falls in the same sample period "
                f"as the one before ({rate_hz:.6g} Hz); expected one sample per period",
            )
    return index


def _ranges(mask_false: npt.NDArray[np.bool_], index: npt.NDArray[np.int64]) -> list[list[int]]:
    """[start, count] runs of consecutive indices where ``mask_false`` is True."""
    runs: list[list[int]] = []
    for i in np.nonzero(mask_false)[0]:
        idx = int(index[i])
        if runs and runs[-1][0] + runs[-1][1] == idx:
            runs[-1][1] += 1
        else:
            runs.append([idx, 1])
    return runs


# --------------------------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------------------------
def _read_sidecar(path: Path) -> dict[str, Any]:
    sidecar = Path(str(path) + ".json")
    if not sidecar.exists():
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataFormatError(
            f"{sidecar}: line {error.lineno}, column {error.colno}: {error.msg}; "
            "expected a JSON object (exercise, placement, side, notes)"
        ) from None
    if not isinstance(data, dict):
        raise DataFormatError(f"{sidecar}: expected a JSON object (exercise, placement, side, notes)")
    return data


def _apply_sidecar_stream(
    path: Path, name: str, meta: dict[str, Any], index: npt.NDArray[np.int64],
    notes: list[str],
) -> tuple[list[Gap] | None, npt.NDArray[np.bool_] | None]:
    """Gap records and validity from the sidecar, when they agree with the data."""
    gaps_spec = meta.get("gaps")
    gaps: list[Gap] | None = None
    if isinstance(gaps_spec, list):
        try:
            gaps = sorted(
                (Gap(name, int(s), int(c), str(r)) for s, c, r in gaps_spec),  # type: ignore[arg-type]
                key=lambda g: g.start_index,
            )
        except (TypeError, ValueError):
            raise DataFormatError(
                f"{path}.json: streams.{name}.gaps: expected [[start_index, count, reason], ...]"
            ) from None
        end = max([int(index[-1]) + 1 if len(index) else 0]
                  + [g.start_index + g.count for g in gaps])
        overlap = any(
            np.searchsorted(index, g.start_index) != np.searchsorted(index, g.start_index + g.count)
            for g in gaps
        )
        if overlap or len(index) + sum(g.count for g in gaps) != end:
            notes.append(
                f"{path}.json: the gap records of {name!r} do not match the rows "
                "(the CSV was edited?); holes in the rows are used instead"
            )
            gaps = None
    valid: npt.NDArray[np.bool_] | None = None
    invalid_spec = meta.get("invalid")
    if isinstance(invalid_spec, list) and invalid_spec:
        valid = np.ones(len(index), dtype=bool)
        for start, count in invalid_spec:
            lo, hi = np.searchsorted(index, [int(start), int(start) + int(count)])
            valid[lo:hi] = False
    return gaps, valid


def read_csv(path: str | os.PathLike[str], notes: list[str] | None = None) -> Recording:
    """Import an interchange CSV (and its ``.json`` sidecar) into a :class:`Recording`.

    Raises one :class:`DataFormatError` naming the line and column for a malformed file.
    Ignored columns and other remarks are warned once and appended to ``notes``.
    """
    path = Path(path)
    notes = [] if notes is None else notes
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{path}: not UTF-8 text at byte {error.start}; expected a CSV") from None
    except OSError as error:
        raise DataFormatError(f"{path}: cannot read ({error.strerror})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise _fail(path, 1, None, f"empty file; expected a header starting with {TIME_COLUMN!r}")
    header = [cell.strip() for cell in lines[0].split(",")]
    time_pos, stream_cols, unknown = _parse_header(path, header)
    if unknown:
        message = f"{path}: ignored {len(unknown)} unknown column(s): " + ", ".join(
            repr(u) for u in unknown
        )
        notes.append(message)
        warnings.warn(message, UnknownColumnsWarning, stacklevel=2)
    used = [time_pos] + [p for s in stream_cols for p in s.positions]
    data = _parse_body(path, lines[1:], header, used)
    line_numbers = np.arange(2, len(lines) + 1, dtype=np.int64)
    data, line_numbers = _drop_repeated_rows(data, line_numbers, path, notes)
    t_all = data[:, 0]
    if np.isnan(t_all).any():
        k = int(np.nonzero(np.isnan(t_all))[0][0])
        raise _fail(path, int(line_numbers[k]), time_pos + 1, f"expected a time in {TIME_COLUMN!r}, found an empty cell")
    back = np.nonzero(np.diff(t_all) < 0)[0]
    if len(back):
        k = int(back[0]) + 1
        raise _fail(
            path, int(line_numbers[k]), time_pos + 1,
            f"time goes backwards ({t_all[k]:.9g} s after {t_all[k - 1]:.9g} s); "
            "expected non-decreasing times",
        )
    sidecar = _read_sidecar(path)
    stream_meta = sidecar.get(SIDECAR_STREAMS_KEY, {})
    if not isinstance(stream_meta, dict):
        stream_meta = {}
    recording = Recording(meta={k: v for k, v in sidecar.items() if k != SIDECAR_STREAMS_KEY})
    col = 1
    for sc in stream_cols:
        values = data[:, col:col + len(sc.positions)]
        col += len(sc.positions)
        present = ~np.isnan(values)
        rows_with = present.any(axis=1)
        partial = np.nonzero(rows_with & ~present.all(axis=1))[0]
        if len(partial):
            k = int(partial[0])
            j = int(np.nonzero(~present[k])[0][0])
            raise _fail(
                path, int(line_numbers[k]), sc.positions[j] + 1,
                f"expected a number in {header[sc.positions[j]]!r}: the other IMU columns "
                "of this row have values (an IMU sample has all six)",
            )
        t_s = t_all[rows_with]
        lines_s = line_numbers[rows_with]
        values = values[rows_with]
        smeta = stream_meta.get(sc.name, {})
        smeta = smeta if isinstance(smeta, dict) else {}
        rate_hz, t0_s, index = _stream_clock(path, sc.name, t_s, lines_s, smeta)
        gaps, valid = _apply_sidecar_stream(path, sc.name, smeta, index, notes)
        if gaps is None:
            gaps = _holes(index, sc.name, start=int(index[0]) if len(index) else 0)
        if valid is None:
            valid = np.ones(len(index), dtype=bool)
        info = StreamInfo(
            name=sc.name, kind="imu" if sc.kind == "imu" else "force", rate_hz=rate_hz,
            chip=str(smeta.get("chip", "")), t0_s=t0_s,
            **sidecar_stream_fields(path, sc.name, smeta),
        )
        if sc.kind == "imu":
            recording.imu[sc.name] = ImuStream(
                info, index, np.ascontiguousarray(values[:, :3]),
                np.ascontiguousarray(values[:, 3:]), valid, None, gaps,
            )
        else:
            recording.force[sc.name] = ForceStream(
                info, index, np.ascontiguousarray(values[:, 0]), valid, None, gaps
            )
    return recording


def _stream_clock(
    path: Path,
    name: str,
    t_s: npt.NDArray[np.float64],
    lines_s: npt.NDArray[np.int64],
    smeta: dict[str, Any],
) -> tuple[float, float, npt.NDArray[np.int64]]:
    """Rate (Hz), t0 (s) and sample indices of one stream's sample times."""
    rate = smeta.get("rate_hz")
    t0 = smeta.get("t0_s")
    if isinstance(rate, (int, float)) and rate > 0 and isinstance(t0, (int, float)):
        index = _sample_index(path, name, t_s, lines_s, float(rate), float(t0))
        residual = np.abs(t_s - (float(t0) + index / float(rate)))
        if len(index) and int(index[0]) >= 0 and float(residual.max()) < 0.25 / float(rate):
            return float(rate), float(t0), index
    if len(t_s) == 0:
        raise DataFormatError(f"{path}: stream {name!r} has no samples; expected at least two")
    if len(t_s) < 2:
        raise _fail(path, int(lines_s[0]), None, f"stream {name!r} has one sample; expected at least two to know its rate")
    try:
        rate_hz = estimate_rate_hz(t_s)
    except ValueError:
        raise _fail(
            path, int(lines_s[1]), None,
            f"stream {name!r}: most samples share a time; expected increasing sample times",
        ) from None
    t0_s = float(t_s[0])
    return rate_hz, t0_s, _sample_index(path, name, t_s, lines_s, rate_hz, t0_s)


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------
def _column_names(name: str, kind: str) -> list[str]:
    default = DEFAULT_IMU_NAME if kind == "imu" else DEFAULT_FORCE_NAME
    suffix = "" if name == default else f" [{name}]"
    base = IMU_COLUMNS if kind == "imu" else (FORCE_COLUMN,)
    return [c + suffix for c in base]


def csv_text(recording: Recording) -> tuple[str, dict[str, Any]]:
    """The CSV text and the sidecar object of ``recording`` (see :func:`write_csv`)."""
    streams: list[ImuStream | ForceStream] = [*recording.imu.values(), *recording.force.values()]
    if not any(len(s.index) for s in streams):
        raise DataFormatError("the recording has no samples; nothing to export")
    header = [TIME_COLUMN]
    time_keys = []
    for s in streams:
        header += _column_names(s.info.name, s.info.kind)
        t = s.info.t0_s + s.index.astype(np.float64) / s.info.rate_hz
        time_keys.append(np.rint(t * 1e9).astype(np.int64))
    keys, inverse = np.unique(np.concatenate(time_keys), return_inverse=True)
    table = np.full((len(keys), len(header)), "", dtype=object)
    table[:, 0] = np.char.mod(TIME_FORMAT, keys / 1e9).astype(object)
    col, offset = 1, 0
    for s, k in zip(streams, time_keys, strict=True):
        rows = inverse[offset:offset + len(k)]
        offset += len(k)
        if isinstance(s, ImuStream):
            cols = np.hstack([s.gyro_dps, s.accel_g])
        else:
            cols = s.force_n[:, None]
        for j in range(cols.shape[1]):
            table[rows, col + j] = np.char.mod(VALUE_FORMAT, cols[:, j]).astype(object)
        col += cols.shape[1]
    out = io.StringIO()
    out.write(",".join(header) + "\n")
    out.writelines(",".join(row) + "\n" for row in table.tolist())
    sidecar: dict[str, Any] = dict(recording.meta)
    sidecar[SIDECAR_STREAMS_KEY] = {
        s.info.name: {
            "kind": s.info.kind,
            "rate_hz": s.info.rate_hz,
            "t0_s": s.info.t0_s,
            "chip": s.info.chip,
            "gaps": [[g.start_index, g.count, g.reason] for g in s.gaps],
            "invalid": _ranges(~s.valid, s.index),
            **_imu_calibration_entry(s.info),
            **({} if s.info.gyro_delay_s is None else {SIDECAR_GYRO_DELAY_KEY: s.info.gyro_delay_s}),
        }
        for s in streams
    }
    return out.getvalue(), sidecar


def _imu_calibration_entry(info: StreamInfo) -> dict[str, Any]:
    """``{"imu_calibration": {...}}`` for an IMU stream with a calibration, else nothing."""
    from spinecoach.core.imu_calibration import ImuCalibration

    calibration = ImuCalibration.from_stream(info)
    if info.kind != "imu" or calibration.is_identity:
        return {}
    return {SIDECAR_IMU_CALIBRATION_KEY: calibration.to_dict()}


def _sidecar_imu_calibration(path: Path, name: str, smeta: dict[str, Any]) -> dict[str, Any]:
    """The stream-info fields of a sidecar's ``imu_calibration`` (none: uncalibrated)."""
    from spinecoach.core.imu_calibration import ImuCalibration

    data = smeta.get(SIDECAR_IMU_CALIBRATION_KEY)
    if data is None:
        return {}
    try:
        return ImuCalibration.from_dict(data).stream_fields()
    except ValueError as error:
        raise DataFormatError(
            f"{path}.json: streams.{name}.{SIDECAR_IMU_CALIBRATION_KEY}: {error}; fix or remove it"
        ) from None


def sidecar_stream_fields(path: Path, name: str, smeta: dict[str, Any]) -> dict[str, Any]:
    """The stream-info fields a sidecar's stream entry adds to the CSV's own: the IMU
    calibration and the gyro delay, each only when given."""
    fields = _sidecar_imu_calibration(path, name, smeta)
    delay = smeta.get(SIDECAR_GYRO_DELAY_KEY)
    if delay is not None:
        if (isinstance(delay, bool) or not isinstance(delay, (int, float))
                or not 0.0 <= delay <= MAX_GYRO_DELAY_S):
            raise DataFormatError(
                f"{path}.json: streams.{name}.{SIDECAR_GYRO_DELAY_KEY} must be a number of "
                f"seconds within 0..{MAX_GYRO_DELAY_S:g}, got {delay!r}; fix or remove it")
        fields["gyro_delay_s"] = float(delay)
    return fields


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename, so a reader never sees a
    half-written file and a full disk leaves any previous file intact (StorageError)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise StorageError(
            f"cannot write {path}: {error.strerror or error}; free some space or choose "
            "another output directory"
        ) from None


def write_csv(recording: Recording, path: str | os.PathLike[str]) -> Path:
    """Export ``recording`` as an interchange CSV at ``path`` plus its sidecar ``path.json``.

    Both files are written atomically. Returns the CSV path.
    """
    path = Path(path)
    text, sidecar = csv_text(recording)
    atomic_write_text(path, text)
    atomic_write_text(Path(str(path) + ".json"), json.dumps(sidecar, indent=2, default=str) + "\n")
    return path

