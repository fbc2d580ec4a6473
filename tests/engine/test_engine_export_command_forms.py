"""`spinecoach export` tells a recording export from a store export, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from spinecoach.cli import main


def test_nothing_named_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export"]) == 64
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "RECORDING --csv OUT" in err and "--session" in err


def test_recording_and_store_selection_together_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(tmp_path / "a.screc"), "--session", "1"]) == 64
    assert "either a RECORDING or stored results" in capsys.readouterr().err


def test_recording_without_csv_says_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path / "a.screc")]) == 64
    assert "--csv OUT" in capsys.readouterr().err


def test_recording_form_writes_the_csv(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parents[2] / "device" / "data" / "demo.screc"
    out = tmp_path / "demo.csv"
    assert main(["export", str(demo), "--csv", str(out)]) == 0
    header = out.read_text().splitlines()[0]
    assert header.startswith("Time (s),Gyroscope X (deg/s)") and "Force (N)" in header
