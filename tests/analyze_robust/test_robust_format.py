"""`spinecoach analyze` on files as real tools write them: line endings, BOM, trailing commas,
unknown columns, repeated and disordered rows, tiny files, wrong units, corrupt cells.

Every case ends either in a schema-complete JSON object or in one line on stderr with a
non-zero exit status; never a traceback."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import robust_corpus as rc
from robust_schema import check_document
from spinecoach import analysis
from spinecoach.cli import main
from spinecoach.recording import stream_csv


@pytest.fixture(autouse=True, params=["whole", "pieces"])
def reading(request, monkeypatch) -> str:
    """Every case through both readers: the whole-file load and the piecewise one (small
    pieces, so boundaries fall inside the cases' oddities)."""
    if request.param == "pieces":
        monkeypatch.setattr(analysis, "STREAM_CSV_BYTES", 0)
        monkeypatch.setattr(stream_csv, "CHUNK_LINES", 997)
    return request.param


@functools.cache
def _table() -> tuple[list[str], list[list[str]]]:
    return rc.table(rc.at_rate(rc.scenario("good_morning_tempo"), 100.0))


def _write(tmp_path, text: str | bytes, name: str = "in.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _ok(path, capsys, *extra: str) -> dict:
    status = main(["analyze", str(path), "--json", "--exercise", "banded_good_morning", *extra])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert err == ""  # remarks go into the output, not as Python warnings
    return check_document(json.loads(out))


def _refused(path, capsys, pattern: str, status: int = 65) -> str:
    code = main(["analyze", str(path), "--json"])
    out, err = capsys.readouterr()
    assert code == status and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spinecoach: "), err
    assert pytest.importorskip("re").search(pattern, lines[0]), lines[0]
    return lines[0]


def _rows_text(rows, header=None, newline="\n", row_suffix="", header_suffix="") -> str:
    head, _ = _table()
    header = head if header is None else header
    return newline.join([",".join(header) + header_suffix,
                         *(",".join(r) + row_suffix for r in rows)]) + newline


_PLAIN: list[float] = []


def _plain_starts(tmp_path, capsys) -> list[float]:
    """Rep starts of the file written plainly (computed once)."""
    if not _PLAIN:
        _, rows = _table()
        doc = _ok(_write(tmp_path, _rows_text(rows), "plain.csv"), capsys)
        _PLAIN.extend(r["start_s"] for r in doc["reps"])
    return _PLAIN


@pytest.mark.parametrize("variant", ["crlf", "bom", "bom_crlf", "trailing_rows", "trailing_all",
                                     "no_final_newline", "blank_tail"])
def test_layout_variants_analyse_alike(variant, tmp_path, capsys) -> None:
    _, rows = _table()
    text = {
        "crlf": _rows_text(rows, newline="\r\n"),
        "bom": "\ufeff" + _rows_text(rows),
        "bom_crlf": "\ufeff" + _rows_text(rows, newline="\r\n"),
        "trailing_rows": _rows_text(rows, row_suffix=","),
        "trailing_all": _rows_text(rows, row_suffix=",", header_suffix=","),
        "no_final_newline": _rows_text(rows).rstrip("\n"),
        "blank_tail": _rows_text(rows) + "\n\n",
    }[variant]
    doc = _ok(_write(tmp_path, text), capsys)
    assert len(doc["reps"]) == 8
    assert [r["start_s"] for r in doc["reps"]] == pytest.approx(_plain_starts(tmp_path, capsys), rel=1e-9)


def test_unknown_columns_are_ignored_and_reported_once(tmp_path, capsys) -> None:
    header, rows = _table()
    text = _rows_text([r + ["21.5", "x"] for r in rows], header=header + ["Temperature (C)", "Notes"])
    doc = _ok(_write(tmp_path, text), capsys)
    assert len(doc["reps"]) == 8
    assert len([n for n in doc["notes"] if "unknown column" in n]) == 1


def test_repeated_rows_are_dropped_with_a_note(tmp_path, capsys) -> None:
    _, rows = _table()
    rows = list(rows)
    for k in (2000, 500):
        rows.insert(k, rows[k - 1])
    doc = _ok(_write(tmp_path, _rows_text(rows)), capsys)
    assert len(doc["reps"]) == 8 and doc["streams"]["trunk"]["rate_hz"] == pytest.approx(100.0)
    assert any("dropped 2 row(s)" in n for n in doc["notes"])


def test_values_beyond_float_range_are_treated_as_missing(tmp_path, capsys) -> None:
    _, rows = _table()
    rows = [list(r) for r in rows]
    for k in [k for k, r in enumerate(rows) if r[7]][50:53]:
        rows[k][7] = "1e400"
    for k in [k for k, r in enumerate(rows) if r[1]][80:82]:
        rows[k][2] = "-1e309"
    doc = _ok(_write(tmp_path, _rows_text(rows)), capsys)
    assert len(doc["reps"]) == 8
    assert [n for n in doc["notes"] if "treated as missing" in n] == [
        "IMU 'trunk': 2 sample(s) not finite or beyond ±20000 °/s or ±1000 g were treated as "
        "missing", "load cell 'force': 3 sample(s) not finite or beyond ±1e+06 N were treated "
        "as missing"]


def test_text_summary_lists_the_notes(tmp_path, capsys) -> None:
    header, rows = _table()
    path = _write(tmp_path, _rows_text([r + ["1"] for r in rows], header=header + ["Extra"]))
    assert main(["analyze", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "note: " in out and "'Extra'" in out and err == ""


@pytest.mark.parametrize(("case", "pattern"), [
    ("empty", r"line 1: empty file"),
    ("header_only", r"stream 'trunk' has no samples"),
    ("one_row", r"line 2: stream 'trunk' has one sample"),
    ("out_of_order", r"line \d+, column 1: time goes backwards"),
    ("same_period", r"line \d+: stream 'trunk'.*same sample period"),
    ("nan_cell", r"line \d+, column 2: expected a finite number or an empty cell"),
    ("partial_imu_row", r"line \d+, column 4: expected a number in 'Gyroscope Z"),
    ("extra_value", r"line \d+: expected 8 comma-separated cells"),
    ("unit_in_header", r"column 5: 'Accelerometer X \(m/s\^2\)' is in 'm/s\^2'"),
    ("accel_in_ms2", r"accelerometer's median magnitude is 9\.\d+.*divide by 9\.80665"),
    ("gyro_in_rads", r"gyroscope.*deg/s \(it looks like rad/s: multiply by 57\.2958\)"),
    ("latin1", r"not UTF-8 text"),
])
def test_bad_files_get_one_clear_line(case, pattern, tmp_path, capsys) -> None:
    header, rows = _table()
    rows = [list(r) for r in rows]
    imu_rows = [k for k, r in enumerate(rows) if r[1]]
    if case == "empty":
        text: str | bytes = ""
    elif case == "header_only":
        text = ",".join(header) + "\n"
    elif case == "one_row":
        text = _rows_text(rows[:1])
    elif case == "out_of_order":
        rows[700], rows[703] = rows[703], rows[700]
        text = _rows_text(rows)
    elif case == "same_period":
        k = imu_rows[300]
        twin = list(rows[k])
        twin[0] = f"{float(twin[0]) + 0.001:.9f}"
        twin[1] = "1.0"
        rows.insert(k + 1, twin)
        text = _rows_text(rows)
    elif case == "nan_cell":
        rows[imu_rows[50]][1] = "NaN"
        text = _rows_text(rows)
    elif case == "partial_imu_row":
        rows[imu_rows[50]][3] = ""
        text = _rows_text(rows)
    elif case == "extra_value":
        rows[99] = rows[99] + ["7"]
        text = _rows_text(rows)
    elif case == "unit_in_header":
        text = _rows_text(rows, header=[h.replace("(g)", "(m/s^2)") for h in header])
    elif case == "accel_in_ms2":
        for k in imu_rows:
            rows[k][4:7] = [f"{float(x) * 9.80665:.5f}" for x in rows[k][4:7]]
        text = _rows_text(rows)
    elif case == "gyro_in_rads":
        for k in imu_rows:
            rows[k][1:4] = [f"{np.radians(float(x)):.6f}" for x in rows[k][1:4]]
        text = _rows_text(rows)
    else:  # latin1: a degree sign in a header written by a Windows tool
        text = (_rows_text(rows[:10]).replace("Force (N)", "Force (N) °")).encode("latin-1")
    _refused(_write(tmp_path, text), capsys, pattern)


def test_missing_file_and_directory(tmp_path, capsys) -> None:
    _refused(tmp_path / "nope.csv", capsys, r"no such recording", status=64)
    _refused(tmp_path, capsys, r"no such recording|is a directory", status=64)


def test_orientation_csv_over_holes(tmp_path, capsys) -> None:
    rec = rc.without(rc.at_rate(rc.scenario("good_morning_tempo"), 100.0), 9.0, 11.0)
    header, rows = rc.table(rec)
    out_csv = tmp_path / "o.csv"
    doc = _ok(_write(tmp_path, rc.csv_of(header, rows)), capsys, "--orientation-csv", str(out_csv))
    table = np.loadtxt(out_csv, delimiter=",", skiprows=1)
    assert np.isfinite(table).all()
    assert len(table) == int(round(doc["duration_s"] * 100)) - int(round(table[0, 0] * 100)) + 1


def test_summary_copes_with_nulls_everywhere() -> None:
    """Any figure may be null in the JSON (non-finite, not computable): the text still prints."""
    from spinecoach.analysis import analyze_recording, summary_text

    rec = rc.at_rate(rc.scenario("good_morning_tempo"), 100.0)
    doc = analyze_recording(rec, "banded_good_morning")

    def blank(value):
        if isinstance(value, dict):
            return {k: blank(v) for k, v in value.items()}
        if isinstance(value, list):
            return [blank(v) for v in value]
        return None if isinstance(value, float) else value

    for key in ("reps", "holds", "contractions"):
        doc[key] = [{**blank(item), "start_s": 1.0, "end_s": 2.0, "onset_s": 1.0,
                     "rate_hz": 320.0} for item in doc[key]]
    doc["summary"] = blank(doc["summary"])
    text = summary_text(doc)
    assert "reps: 8" in text and text.count(" - ") + text.count("-") > 8
