"""Timing accuracy against the simulated rig's truth, by error source: the table in the README.

    python benchmarks/accuracy.py [--json]

Feeds each scenario's IMU signals straight into the pipeline (as the rig-truth tests in
``tests/core_detect`` do, whose helpers it uses) three ways: the rig's error-free IMU with the
filter set for it, the full rig uncalibrated, and the full rig with the box calibration fitted
on the rig's own six still poses. Prints the largest |error| (ms) of hold starts, ends and
durations and of the four swing boundaries of each rep (start, end of the swing away, start of
the return, end), against the scripted truth and, for the calibrated rig, against the same
analysis of the error-free IMU (the true motion). Runs in a few seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "core_detect"))

from spinecoach.core.results import AnalysisResult, MotionSettings
from spinecoach.drivers.sim.scenarios import Scenario, build_scenario
from test_detect_boundaries import (
    IDEAL_CHIP,
    hold_motion,
    run_pipeline,
    swing_boundaries,
    true_boundaries,
)
from test_detect_sim_truth import analyse, box_calibration

FLEXION = (0.0, 1.0, 0.0)
HOLD_SCENARIOS = ("back_extension_holds", "sorensen_hold")
REP_SCENARIOS = ("good_morning_tempo", "chained_good_morning", "dumbbell_row_slow_eccentric",
                 "single_leg_deadlift")


def _runs(sc: Scenario, motion: MotionSettings) -> dict[str, AnalysisResult]:
    return {
        "ideal": run_pipeline(sc, motion, ideal=True, orientation=IDEAL_CHIP),
        "uncalibrated": run_pipeline(sc, motion),
        "box": analyse(sc, motion, box_calibration(sc)),
    }


def _max_ms(errors: list[list[float]]) -> list[float]:
    return [round(float(v), 1) for v in np.abs(np.array(errors)).max(axis=0) * 1e3]


def hold_errors(name: str) -> dict[str, list[float]]:
    """Per run: max |error| (ms) of hold start, end and duration."""
    sc = build_scenario(name)
    motion = hold_motion(sc)
    if name == "sorensen_hold":
        motion = MotionSettings(primary_axis=FLEXION, hold_target_deg=motion.hold_target_deg,
                                hold_tolerance_deg=motion.hold_tolerance_deg)
    out = {}
    for run, res in _runs(sc, motion).items():
        if len(res.holds) != len(sc.truth.holds):
            out[run] = [float("nan")] * 3
            continue
        out[run] = _max_ms([[g.start_s - w.start_s, g.end_s - w.end_s, g.duration_s - w.duration_s]
                            for g, w in zip(res.holds, sc.truth.holds)])
    return out


def boundary_errors(name: str) -> dict[str, list[float]]:
    """Per run: max |error| (ms) of the four swing boundaries against the script; and
    ``box_vs_true_motion``: the calibrated rig against the error-free IMU's analysis."""
    sc = build_scenario(name)
    motion = MotionSettings(primary_axis=FLEXION, eccentric_sign=sc.truth.eccentric_sign)
    runs = _runs(sc, motion)
    out = {}
    for run, res in runs.items():
        out[run] = _max_ms([[g - w for g, w in zip(swing_boundaries(a), true_boundaries(b))]
                            for a, b in zip(res.reps, sc.truth.reps)])
    out["box_vs_true_motion"] = _max_ms(
        [[g - w for g, w in zip(swing_boundaries(a), swing_boundaries(b))]
         for a, b in zip(runs["box"].reps, runs["ideal"].reps)])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"holds": {n: hold_errors(n) for n in HOLD_SCENARIOS},
                              "boundaries": {n: boundary_errors(n) for n in REP_SCENARIOS}}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print("holds: max |error| ms of start / end / duration")
    for name, runs in report["holds"].items():
        print(f"  {name:30s}" + "".join(f"  {run}: {'/'.join(map(str, v)):16s}"
                                         for run, v in runs.items()))
    print("rep boundaries: max |error| ms of start / away end / return start / end")
    for name, runs in report["boundaries"].items():
        print(f"  {name}")
        for run, v in runs.items():
            print(f"    {run:20s} {' / '.join(map(str, v))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
