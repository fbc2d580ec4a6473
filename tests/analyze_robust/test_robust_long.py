"""Long files: an interchange CSV over STREAM_CSV_BYTES is analysed piece by piece with the
same result as a whole load, in memory that does not grow with the file (peak RSS measured in
a child process). The hour at 1 kHz runs under ``-m soak``; the default run compares a
2-minute and a 6-minute file."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest
import robust_corpus as rc
from robust_schema import check_document
from spinecoach import analysis
from spinecoach.analysis import analyze_file, analyze_recording
from spinecoach.recording import stream_csv
from spinecoach.recording.load import load_recording

REPS_PER_REPEAT = 8  # good_morning_tempo

_CHILD = """
import json, resource, sys
from pathlib import Path
import spinecoach.analysis as analysis
analysis.STREAM_CSV_BYTES = int(sys.argv[2])
doc = analysis.analyze_file(Path(sys.argv[1]), "banded_good_morning")
print(json.dumps({"reps": len(doc["reps"]), "duration_s": doc["duration_s"], "notes": doc["notes"],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(path, stream_bytes: int = 0) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(stream_bytes)],
                         capture_output=True, text=True, check=True, timeout=900)
    return json.loads(out.stdout)


def _same(a, b, where: str = "doc") -> None:
    """Equal documents, floats to 1e-9 relative (the rate fit sums in another order)."""
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-9), where
    else:
        assert a == b, where


@pytest.mark.parametrize("exercise", ["banded_good_morning", None])
def test_pieces_give_the_whole_files_result(exercise, tmp_path, monkeypatch) -> None:
    path = tmp_path / "long.csv"
    repeats = rc.write_long_csv(path, 100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = analyze_recording(load_recording(path), exercise, tmp_path / "w.csv",
                                  source=str(path))
    monkeypatch.setattr(analysis, "STREAM_CSV_BYTES", 0)
    monkeypatch.setattr(stream_csv, "CHUNK_LINES", 7919)  # pieces end mid-rep and mid-stream
    pieces = check_document(analyze_file(path, exercise, tmp_path / "o.csv"))
    _same(whole, pieces)
    assert len(pieces["reps"]) >= repeats * REPS_PER_REPEAT
    assert (tmp_path / "o.csv").read_text() == (tmp_path / "w.csv").read_text()


def test_memory_does_not_grow_with_the_file(tmp_path) -> None:
    short, long_ = tmp_path / "short.csv", tmp_path / "long.csv"
    rc.write_long_csv(short, 120.0)
    repeats = rc.write_long_csv(long_, 360.0)
    a, b = _child(short), _child(long_)
    assert b["reps"] >= repeats * REPS_PER_REPEAT
    assert b["notes"] == []  # the takes' repeated extremes are not a saturated sensor
    # Whole-file loading grows by ~50 MB per minute of 1 kHz data (about 200 MB here).
    assert b["rss_mb"] - a["rss_mb"] < 25.0, (a, b)


@pytest.mark.soak
def test_an_hour_at_1_khz(tmp_path) -> None:
    path = tmp_path / "hour.csv"
    repeats = rc.write_long_csv(path, 3600.0)
    assert path.stat().st_size > analysis.STREAM_CSV_BYTES
    result = _child(path, analysis.STREAM_CSV_BYTES)
    assert repeats * REPS_PER_REPEAT <= result["reps"] <= (repeats + 1) * REPS_PER_REPEAT
    assert result["duration_s"] == pytest.approx(3600.0, abs=1.0)
    assert result["notes"] == []
    assert result["rss_mb"] < 300.0, result


@pytest.mark.parametrize("scenario", ["good_morning_tempo", "back_extension_holds",
                                      "repeaters_7_3"])
def test_feeding_in_pieces_changes_nothing(scenario, monkeypatch) -> None:
    """analyze_recording feeds FEED_BLOCK_S of every stream at a time (bounded working
    memory); the result equals feeding each stream whole."""
    rec = rc.scenario(scenario)
    exercise = rc.truth(scenario)["exercise"]
    monkeypatch.setattr(analysis, "FEED_BLOCK_S", 1e9)
    whole = analyze_recording(rec, exercise)
    monkeypatch.setattr(analysis, "FEED_BLOCK_S", 7.3)
    cut = analyze_recording(rec, exercise)
    _same(whole, cut)
    assert whole["reps"] or whole["holds"] or whole["contractions"]


def test_epoch_timestamps_and_milliseconds(tmp_path, capsys) -> None:
    """Times as Unix epoch seconds work; times in milliseconds are refused with what to do."""
    from spinecoach.cli import main

    rec = rc.at_rate(rc.scenario("good_morning_tempo"), 100.0)
    header, rows = rc.table(rec)
    epoch = [[f"{float(r[0]) + 1.7e9:.6f}", *r[1:]] for r in rows]
    path = rc.write(tmp_path / "epoch.csv", rc.csv_of(header, epoch))
    assert main(["analyze", str(path), "--json", "--exercise", "banded_good_morning"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["reps"]) == 8 and doc["streams"]["trunk"]["rate_hz"] == pytest.approx(100.0)
    millis = [[f"{float(r[0]) * 1000:.3f}", *r[1:]] for r in rows]
    path = rc.write(tmp_path / "ms.csv", rc.csv_of(header, millis))
    assert main(["analyze", str(path), "--json"]) == 65
    err = capsys.readouterr().err
    assert "runs at 0.1 Hz" in err and "divide it by 1000" in err


@pytest.mark.parametrize(("scenario", "exercise"), [
    ("good_morning_tempo_faults", "banded_good_morning"),
    ("bridge_pelvic_shifts", "bridge_lateral_shift")])
def test_pieces_read_the_sidecar_alike(scenario, exercise, tmp_path, monkeypatch) -> None:
    """An export with its sidecar (exact rates and t0, gaps, invalid samples, an IMU
    calibration), and two IMUs: both readers give the same document."""
    from dataclasses import replace

    from spinecoach.recording.interchange import write_csv

    rec = load_recording(rc.FIXTURES / f"{scenario}.screc")
    name = next(iter(rec.imu))
    info = rec.imu[name].info
    rec.imu[name].info = replace(info, gyro_bias_dps=(0.5, -0.3, 0.2))
    path = write_csv(rec, tmp_path / "export.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = analyze_recording(load_recording(path), exercise, source=str(path))
    monkeypatch.setattr(analysis, "STREAM_CSV_BYTES", 0)
    monkeypatch.setattr(stream_csv, "CHUNK_LINES", 4999)
    pieces = check_document(analyze_file(path, exercise))
    _same(whole, pieces)
    assert pieces["streams"][name]["imu_calibration"]["gyro_bias_dps"] == [0.5, -0.3, 0.2]
