"""History, progression suggestions, left/right comparison, export and the CLI exit statuses."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from engine_helpers import FORCE, IMU, scripted, synthetic_blocks
from spinecoach.cli import main
from spinecoach.core.results import CoreEvent, HoldResult, LoweringResult, RepResult, Tempo
from spinecoach.engine.cues import CueEngine
from spinecoach.engine.export import safe_target, sanitise
from spinecoach.engine.library import load_library
from spinecoach.engine.progression import History, ProgressionSettings, suggest
from spinecoach.engine.protocols import protocol_params
from spinecoach.engine.reader import StoreReader
from spinecoach.engine.runner import SessionPlan, SessionRunner
from spinecoach.engine.store import Store, db_path
from spinecoach.errors import UsageError

LIBRARY = load_library()


def _tempo_script(eccentrics: list[float], speeds: list[float]) -> list[CoreEvent]:
    events, t = [], 4.0
    for ecc, speed in zip(eccentrics, speeds, strict=True):
        events += [CoreEvent("phase", t, "eccentric"), CoreEvent("phase", t + ecc, "still"),
                   CoreEvent("eccentric_end", t + ecc, LoweringResult(t, t + ecc, ecc, 70.0, True))]
        rep = RepResult(t, t + ecc + 1.5, 70.0, Tempo(ecc, 0.5, 1.0, 0.0),
                        mean_concentric_speed_dps=speed, peak_force_n=400.0 + speed)
        events.append(CoreEvent("rep", t + ecc + 1.5, rep))
        t += ecc + 2.5
    return events


def _store_session(state: Path, athlete: str, script: list[CoreEvent], *, exercise: str,
                   protocol: str, params: dict, sides=(None,), sets: int = 1,
                   seconds: float = 40.0) -> int:
    store = Store(db_path(state), commit_interval_s=0.05)
    ex = LIBRARY.get(exercise)
    plan = SessionPlan(ex, protocol, protocol_params(protocol, ex, params), sets=sets,
                       set_rest_s=1.0, sides=sides)
    runner = SessionRunner(plan, [IMU, FORCE], cues=CueEngine(), store=store, athlete=athlete,
                           pipeline_factory=scripted(script))
    for block in synthetic_blocks(seconds):
        runner.feed(block)
        if runner.finished:
            break
    report = runner.finish()
    assert store.close()
    assert report.session_id is not None
    return report.session_id


def _history(state: Path, athlete: str, exercise: str) -> History:
    return History(StoreReader(state), athlete, exercise)


def test_tempo_progression_slower_eccentric_then_back_off(tmp_path: Path) -> None:
    params = {"reps": 4, "tempo": "3-1-1-0"}
    good = _tempo_script([3.1, 3.2, 3.0, 3.3], [60.0, 61.0, 59.0, 58.0])
    _store_session(tmp_path, "ana", good, exercise="banded_good_morning", protocol="tempo_set",
                   params=params)
    s = suggest(_history(tmp_path, "ana", "banded_good_morning"), ProgressionSettings())
    assert s is not None and s.action == "progress" and s.params == {"tempo": "4-1-1-0"}
    assert "4 s" in s.sentence and s.sentence.count(".") == 1
    rushed = _tempo_script([1.0, 1.2, 3.0, 1.1], [60.0, 61.0, 59.0, 58.0])
    _store_session(tmp_path, "ana", rushed, exercise="banded_good_morning", protocol="tempo_set",
                   params=params)
    history = _history(tmp_path, "ana", "banded_good_morning")
    s = suggest(history, ProgressionSettings())
    assert s is not None and s.action == "back_off" and "3 of 4 lowerings" in s.sentence
    bests = {b.figure: b.value for b in history.bests()}
    assert bests["mean_eccentric_s"] == pytest.approx(3.15)
    trend = history.trend("tempo_set", 6)
    assert trend is not None and trend.slope_per_session < 0 and len(trend.values) == 2


def test_holds_progression_and_left_right_comparison(tmp_path: Path) -> None:
    script = []
    for offset in (0.0, 20.0):
        for start, dur in ((1.0, 8.5), (11.0, 8.2)):
            s = offset + start
            script += [CoreEvent("hold_start", s),
                       CoreEvent("hold_end", s + dur, HoldResult(s, s + dur, dur))]
    sid = _store_session(tmp_path, "ben", script, exercise="bird_dog", protocol="isometric_holds",
                         params={"holds": 2, "rest_s": 1.0}, sides=("left", "right"), sets=2,
                         seconds=45.0)
    s = suggest(_history(tmp_path, "ben", "bird_dog"), ProgressionSettings(hold_step_s=2.0))
    assert s is not None and s.action == "progress" and s.params == {"target_s": 10.0}
    out = subprocess.run([sys.executable, "-m", "spinecoach", "history", "--session", str(sid),
                          "--json"], capture_output=True, text=True,
                         env={"SPINECOACH_STATE_DIR": str(tmp_path), "PATH": ""})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [x["side"] for x in data["sets"]] == ["left", "right"]
    longest = {c["figure"]: c for c in data["left_right"]}["longest_hold_s"]
    assert longest["left"] == 8.5 and longest["right"] == 8.5


def test_history_text_and_exercise_view(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SPINECOACH_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("SPINECOACH_CONFIG", str(tmp_path / "none.toml"))
    assert main(["history"]) == 0 and "no sessions stored yet" in capsys.readouterr().out
    _store_session(tmp_path, "default", _tempo_script([3.0] * 4, [50.0] * 4),
                   exercise="banded_good_morning", protocol="tempo_set", params={"reps": 4})
    assert main(["history"]) == 0
    assert "banded_good_morning/tempo_set" in capsys.readouterr().out
    assert main(["history", "--exercise", "banded_good_morning"]) == 0
    text = capsys.readouterr().out
    assert "best mean_eccentric_s" in text and "next session (progress)" in text
    assert main(["history", "--session", "99"]) == 64
    assert main(["history", "--exercises"]) == 0
    assert "sorensen_hold" in capsys.readouterr().out


def test_export_csv_json_atomic_and_sanitised(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    state, out = tmp_path / "state", tmp_path / "exports"
    monkeypatch.setenv("SPINECOACH_STATE_DIR", str(state))
    monkeypatch.setenv("SPINECOACH_CONFIG", str(tmp_path / "none.toml"))
    sid = _store_session(state, "../../etc/evil", _tempo_script([3.0] * 4, [50.0] * 4),
                         exercise="banded_good_morning", protocol="tempo_set", params={"reps": 4})
    assert main(["export", "--athlete", "../../etc/evil", "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert all(p.startswith("athlete-etc_evil_") for p in written), written
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())
    assert not (tmp_path / "etc").exists()
    assert main(["export", "--session", str(sid), "--out", str(out)]) == 0
    with (out / f"session-{sid}_reps.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and rows[0]["eccentric (s)"] == "3.0"
    document = json.loads((out / f"session-{sid}_export.json").read_text())
    assert document["sets"][0]["metrics"] and len(document["sets"][0]["reps"]) == 4
    assert main(["export", "--set", "1", "--format", "csv", "--name", "../x",
                 "--out", str(out)]) == 0
    assert (out / "x_metrics.csv").exists()
    assert main(["export", "--set", "1", "--format", "xls", "--out", str(out)]) == 64


def test_png_export_needs_the_plot_extra(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    state, out = tmp_path / "state", tmp_path / "exports"
    monkeypatch.setenv("SPINECOACH_STATE_DIR", str(state))
    monkeypatch.setenv("SPINECOACH_CONFIG", str(tmp_path / "none.toml"))
    _store_session(state, "ana", _tempo_script([3.0] * 4, [50.0] * 4),
                   exercise="banded_good_morning", protocol="tempo_set", params={"reps": 4})
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert main(["export", "--set", "1", "--format", "png", "--out", str(out)]) == 64
        assert "pip install 'spinecoach[plot]'" in capsys.readouterr().err
        assert not out.exists() or not any(out.iterdir())
    else:
        assert main(["export", "--athlete", "ana", "--format", "png", "--out",
                     str(out)]) == 0
        names = {p.name for p in out.iterdir()}
        assert {"athlete-ana_set1_force_time.png", "athlete-ana_set1_force_angle.png",
                "athlete-ana_banded_good_morning_progress.png"} <= names
        assert all((out / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names)


def test_sanitise_and_safe_target(tmp_path: Path) -> None:
    assert sanitise("../../etc/passwd") == "etc_passwd"
    assert sanitise("...") == "export"
    assert safe_target(tmp_path, "a/b").parent == tmp_path.resolve()
    assert safe_target(tmp_path, "..") == (tmp_path / "export").resolve()
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "link").symlink_to(outside / "target")
    with pytest.raises(UsageError, match="would leave the export folder"):
        safe_target(folder, "link")


def test_store_catalogue_for_the_coach(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("SPINECOACH_STATE_DIR", raising=False)
    from spinecoach.config import load_config
    from spinecoach.engine.catalogue import StoreCatalogue

    config = load_config([]).with_values(store={"state_dir": str(tmp_path / "state")})
    catalogue = StoreCatalogue(config)
    assert catalogue.recent_sessions("ana") == [] and "No sessions stored" in \
        catalogue.unavailable_reason
    assert "sorensen_hold" in catalogue.exercises() and "critical_force" in catalogue.protocols()
    for eccentrics in ([3.0] * 4, [3.5] * 4):
        _store_session(tmp_path / "state", "ana", _tempo_script(eccentrics, [50.0] * 4),
                       exercise="banded_good_morning", protocol="tempo_set", params={"reps": 4})
    assert catalogue.unavailable_reason == "" and catalogue.athletes() == ["ana"]
    (newest, _older) = catalogue.recent_sessions("ana")
    assert newest.reps == 4 and newest.exercise == "banded_good_morning" and "reps 4" in \
        newest.headline
    (series,) = catalogue.progress("ana")
    assert series.figure == "mean_eccentric_s" and [p.value for p in series.points] == [3.0, 3.5]
    assert series.suggestion.startswith("Slow the lowering")
