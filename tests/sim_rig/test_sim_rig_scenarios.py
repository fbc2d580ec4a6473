"""Every scenario builds with consistent streams; `spinecoach scenarios` lists them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from spinecoach.drivers.sim.scenarios import DESCRIPTIONS, SCENARIOS, build_scenario
from spinecoach.errors import UsageError

REQUIRED = {
    "good_morning_tempo",
    "dumbbell_row_slow_eccentric",
    "back_extension_holds",
    "bridge_pelvic_shifts",
    "single_leg_deadlift",
    "sorensen_hold",
    "isometric_max_pulls",
    "repeaters_7_3",
    "rotational_throws",
}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spinecoach", "scenarios", *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sim_rig_every_scenario_builds_with_consistent_streams(name: str) -> None:
    scenario = build_scenario(name)
    assert scenario.name == name and scenario.description == DESCRIPTIONS[name]
    assert scenario.exercise and scenario.protocol and scenario.duration_s > 20.0
    assert scenario.primary_placement in scenario.imu_placements
    assert set(scenario.imu_placements) == set(scenario.rig.imus)
    assert set(scenario.truth.angles) == set(scenario.imu_placements)
    t = np.linspace(0.0, scenario.duration_s, 500)
    for placement in scenario.imu_placements:
        gyro, accel = scenario.imu_signal(placement)(t)
        assert gyro.shape == accel.shape == (500, 3)
        assert np.all(np.isfinite(gyro)) and np.all(np.isfinite(accel))
    if scenario.has_load_cell:
        force = scenario.force_signal()(t)
        assert force.shape == (500,) and np.all(force > 0)
    truth = scenario.truth
    assert truth.scenario == name and truth.duration_s == scenario.duration_s
    assert truth.reps or truth.holds or truth.contractions
    for item in [*truth.reps, *truth.holds]:
        assert 0.0 <= item.start_s < item.end_s <= scenario.duration_s


def test_sim_rig_the_required_scenarios_exist() -> None:
    assert REQUIRED <= set(SCENARIOS)
    assert set(DESCRIPTIONS) == set(SCENARIOS)


def test_sim_rig_unknown_scenario_names_the_known_ones() -> None:
    with pytest.raises(UsageError, match="good_morning_tempo"):
        build_scenario("deadlift_party")


def test_sim_rig_cli_lists_every_scenario_one_per_line() -> None:
    out = _cli()
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(SCENARIOS)
    for line, (name, description) in zip(lines, DESCRIPTIONS.items(), strict=True):
        assert line.startswith(name + "  ") and line.endswith(description)


def test_sim_rig_cli_writes_truth_json(tmp_path: Path) -> None:
    out_file = tmp_path / "truth.json"
    out = _cli("--truth", "repeaters_7_3", "--seed", "5", "--out", str(out_file))
    assert out.returncode == 0, out.stderr
    data = json.loads(out_file.read_text())
    assert data["scenario"] == "repeaters_7_3" and data["seed"] == 5
    assert out_file.read_text() == build_scenario("repeaters_7_3", seed=5).truth.to_json()


def test_sim_rig_cli_errors_are_one_line() -> None:
    out = _cli("--truth", "nope")
    assert out.returncode == 64
    assert out.stderr.count("\n") == 1 and "unknown scenario 'nope'" in out.stderr
    out = _cli("--truth", "sorensen_hold", "--out", "/nonexistent-dir/x.json")
    assert out.returncode == 73 and out.stderr.count("\n") == 1
