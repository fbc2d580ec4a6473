"""`spinecoach analyze --exercise` takes the engine library's exercises (ids and user files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from spinecoach.analysis import motion_for
from spinecoach.cli import main
from spinecoach.errors import UsageError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize(
    ("fixture", "exercise", "reps"),
    [("good_morning_tempo", "banded_good_morning", 8), ("rotational_throws", "rotational_throw", 6)],
)
def test_library_exercise_counts_the_scripted_reps(
    fixture: str, exercise: str, reps: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze", str(FIXTURES / f"{fixture}.screc"), "--exercise", exercise, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["exercise"] == exercise and len(doc["reps"]) == reps


def test_throws_use_the_heading_and_hinges_gravity() -> None:
    throw = motion_for("rotational_throw")
    hinge = motion_for("banded_good_morning")
    assert throw is not None and throw.primary_angle == "heading"
    assert hinge is not None and hinge.primary_angle == "axis"


def test_a_users_exercise_file_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builtin = Path(__file__).resolve().parents[2] / "device" / "exercises" / "banded_good_morning.toml"
    text = builtin.read_text().replace('id = "banded_good_morning"', 'id = "my_hinge"')
    exercises = tmp_path / "exercises"
    exercises.mkdir()
    (exercises / "my_hinge.toml").write_text(text)
    config = tmp_path / "config.toml"
    config.write_text(f'[exercises]\ndirectory = "{exercises}"\n')
    monkeypatch.setenv("SPINECOACH_CONFIG", str(config))
    assert motion_for("my_hinge") is not None


def test_unknown_exercise_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match="banded_good_morning.*hip-hinge|hip-hinge.*banded"):
        motion_for("nope")
