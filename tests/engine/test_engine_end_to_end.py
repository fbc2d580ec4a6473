"""The engine end to end on the simulated rig: real drivers, sampler, pipeline, buzzer code."""

from __future__ import annotations

from pathlib import Path

import pytest
from spinecoach.cli import main
from spinecoach.drivers.sim.scenarios import build_scenario
from spinecoach.engine.reader import StoreReader
from spinecoach.recording.native import write_native


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("SPINECOACH_STATE_DIR", str(state))
    monkeypatch.setenv("SPINECOACH_CONFIG", str(tmp_path / "no-config.toml"))
    return state


def _session(scenario: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["session", "--backend", f"sim:{scenario}", "--headless"]) == 0
    return capsys.readouterr().out.splitlines()


def _check_replay(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Replaying each stored set reproduces its stored figures bit for bit."""
    with StoreReader(state) as reader:
        ids = [row.id for row in reader.sets()]
    for set_id in ids:
        assert main(["history", "--replay-set", str(set_id)]) == 0
        assert "reproduces all stored figures exactly" in capsys.readouterr().out


def test_good_morning_session_headless_stores_and_replays_exactly(
    isolated: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = _session("good_morning_tempo", capsys)
    text = "\n".join(lines)
    assert "set 1/1: Banded good morning - 8 reps at tempo 3-1-1-0" in text
    assert any(" tick " in line and line.rstrip().endswith("lower") for line in lines)
    assert "Rep 8/8" in text and "set 1 complete: reps 8" in text
    assert "buzzer commands, sample-to-buzzer p50" in text
    assert "stored session 1" in text and "next session:" in text
    with StoreReader(isolated) as reader:
        (session,) = reader.sessions()
        assert session.status == "complete" and session.backend == "sim:good_morning_tempo"
        (row,) = reader.sets()
        assert row.status == "complete" and row.targets_met
        reps = reader.reps(row.id)
        assert len(reps) == 8
        assert all(2.0 < r.tempo.eccentric_s < 4.5 for r in reps)
        assert reader.session_metrics(session.id)["cue_latency_count"] > 8
        recording = reader.recording(row.id)
    _check_replay(isolated, capsys)
    # The stored set as a recording file replays through the same command.
    path = write_native(recording, tmp_path / "set.screc")
    assert main(["session", "--backend", f"replay:{path}", "--exercise", "banded_good_morning",
                 "--protocol", "tempo_set", "--headless"]) == 0
    assert "set 1 complete: reps 8" in capsys.readouterr().out


def _figures(state: Path) -> dict[str, float]:
    with StoreReader(state) as reader:
        (row,) = reader.sets()
        return reader.set_metrics(row.id)


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("back_extension_holds", "holds_completed 5"),
        ("isometric_max_pulls", "trials 3"),
        ("repeaters_7_3", "work_reps 6"),
        ("sorensen_hold", "sorensen_hold_s"),
    ],
)
def test_scenario_sessions_reach_their_figures(
    isolated: Path, capsys: pytest.CaptureFixture[str], scenario: str, expected: str
) -> None:
    text = "\n".join(_session(scenario, capsys))
    assert f"set 1 complete: {expected}" in text, text
    truth = build_scenario(scenario).truth
    figures = _figures(isolated)
    if scenario == "repeaters_7_3":
        assert figures["fatigue_index_pct"] == pytest.approx(truth.fatigue_index_pct, abs=2.0)
    if scenario == "sorensen_hold":
        assert figures["sorensen_hold_s"] == pytest.approx(truth.holds[0].duration_s, abs=1.0)
    if scenario == "back_extension_holds":
        assert text.count("complete - release") == 5 and text.count("Hold - breath held") == 5
        assert figures["longest_hold_s"] == pytest.approx(
            max(h.duration_s for h in truth.holds), abs=0.2)
    _check_replay(isolated, capsys)


ALL = ["chained_good_morning", "dumbbell_row_slow_eccentric", "bridge_pelvic_shifts",
       "single_leg_deadlift", "rotational_throws"]


@pytest.mark.soak
@pytest.mark.parametrize("scenario", ALL)
def test_every_other_scenario_runs_stores_and_replays(
    isolated: Path, capsys: pytest.CaptureFixture[str], scenario: str
) -> None:
    text = "\n".join(_session(scenario, capsys))
    assert "stored session 1" in text and "set 1 " in text
    _check_replay(isolated, capsys)
