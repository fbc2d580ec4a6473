"""Ground truth: closed forms agree with the signals they describe; JSON round-trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from spinecoach.drivers.sim.motion import PHASE_KINDS
from spinecoach.drivers.sim.scenarios import SCENARIOS, build_scenario
from spinecoach.drivers.sim.truth import (
    IMPULSE_WINDOWS_MS,
    ONSET_FLOOR_N,
    RFD_WINDOWS_MS,
    GroundTruth,
)
from spinecoach.errors import DataFormatError

STEP_S = 1e-5  # fine grid for the finite-difference checks


@pytest.mark.parametrize("name", ["isometric_max_pulls", "repeaters_7_3"])
def test_sim_rig_contraction_truth_matches_the_force_signal(name: str) -> None:
    scenario = build_scenario(name)
    force = scenario.force_signal(ideal=True)
    assert scenario.truth.contractions
    for c in scenario.truth.contractions:
        # The rise starts exactly at rise_start_s; METRICS.md's onset is where the force
        # passes baseline + max(5 SD, 20 N).
        assert force(np.array([c.rise_start_s]))[0] == pytest.approx(c.baseline_n, abs=1e-9)
        assert c.threshold_n == max(5 * scenario.rig.load_cell_errors.noise_sd_n, ONSET_FLOOR_N)
        onset = c.onset_s
        f_onset = force(np.array([onset]))[0]
        assert f_onset == pytest.approx(c.baseline_n + c.threshold_n, abs=1e-9)
        before = np.linspace(c.rise_start_s - 1.0, onset - 1e-6, 1000)
        assert np.all(force(before) < c.baseline_n + c.threshold_n)
        for w in RFD_WINDOWS_MS:
            f_w = force(np.array([onset + w / 1000]))[0]
            assert c.force_at_n[str(w)] == pytest.approx(f_w, rel=1e-9)
            assert c.rfd_n_per_s[str(w)] == pytest.approx((f_w - f_onset) / (w / 1000), rel=1e-9)
        # Peak RFD: brute-force search of the 20 ms window over the first 300 ms.
        starts = onset + np.arange(0.0, 0.28 + 1e-12, 1e-4)
        slopes = (force(starts + 0.020) - force(starts)) / 0.020
        assert c.peak_rfd_n_per_s == pytest.approx(slopes.max(), rel=1e-9)
        # Impulse of (F − baseline) from the onset: trapezoid on a fine grid.
        for w in IMPULSE_WINDOWS_MS:
            t = onset + np.arange(0.0, w / 1000 + STEP_S / 2, STEP_S)
            assert c.impulse_n_s[str(w)] == pytest.approx(
                np.trapezoid(force(t) - c.baseline_n, t), rel=1e-6
            )
        t = np.arange(onset, c.end_s + STEP_S / 2, STEP_S)
        f = force(t)
        assert c.peak_force_n == pytest.approx(f.max(), rel=1e-9)
        assert c.time_to_peak_s == pytest.approx(t[np.argmax(f)] - onset, abs=2 * STEP_S)
        assert c.impulse_total_n_s == pytest.approx(np.trapezoid(f - c.baseline_n, t), rel=1e-6)
        # Contraction end: force back down to baseline + floor.
        assert force(np.array([c.end_s]))[0] == pytest.approx(
            c.baseline_n + ONSET_FLOOR_N, rel=1e-9
        )
        on = np.arange(onset, c.rise_start_s + c.on_s + STEP_S / 2, STEP_S)
        assert c.mean_force_on_n == pytest.approx(
            np.trapezoid(force(on), on) / (on[-1] - on[0]), rel=1e-6
        )


def test_sim_rig_repeaters_fatigue_index() -> None:
    truth = build_scenario("repeaters_7_3").truth
    peaks = [c.peak_force_n for c in truth.contractions]
    assert len(peaks) == 6 and peaks == sorted(peaks, reverse=True)
    assert truth.fatigue_index_pct == pytest.approx((peaks[0] - peaks[-1]) / peaks[0] * 100)
    assert [round(c.on_s, 9) for c in truth.contractions] == [7.0] * 6
    gaps = np.diff([c.rise_start_s for c in truth.contractions])
    np.testing.assert_allclose(gaps, 10.0)


@pytest.mark.parametrize(
    "name",
    [
        "good_morning_tempo",
        "chained_good_morning",
        "dumbbell_row_slow_eccentric",
        "single_leg_deadlift",
    ],
)
def test_sim_rig_reps_have_contiguous_tempo_phases(name: str) -> None:
    scenario = build_scenario(name)
    truth = scenario.truth
    tempo = [float(d) for d in truth.tempo.split("-")]
    nominal = dict(zip(PHASE_KINDS, tempo, strict=True))
    assert len(truth.reps) >= 6
    for rep in truth.reps:
        kinds = [p.kind for p in rep.phases]
        assert sorted(kinds) == sorted(PHASE_KINDS)
        for a, b in zip(rep.phases, rep.phases[1:]):
            assert a.end_s == b.start_s
        for kind in PHASE_KINDS:
            assert rep.phase_duration_s(kind) == pytest.approx(nominal[kind], rel=0.051, abs=1e-12)
        assert rep.phases[0].start_s == rep.start_s
        # The excursion: away from the start angle and back to it at the rep's end.
        t = np.array([rep.start_s, rep.end_s])
        angle = scenario.primary_angle_deg(t)
        assert abs(angle[1] - angle[0]) < 1.5
        assert 60.0 < rep.rom_deg < 95.0
    starts = [r.start_s for r in truth.reps]
    assert starts == sorted(starts)


def test_sim_rig_eccentric_direction_matches_the_angle_change() -> None:
    for name in ("good_morning_tempo", "dumbbell_row_slow_eccentric", "rotational_throws"):
        scenario = build_scenario(name)
        ecc = next(p for p in scenario.truth.reps[0].phases if p.kind == "eccentric")
        a0, a1 = scenario.primary_angle_deg(np.array([ecc.start_s, ecc.end_s]))
        assert np.sign(a1 - a0) == scenario.truth.eccentric_sign


@pytest.mark.parametrize(
    ("name", "count", "target"),
    [
        ("back_extension_holds", 5, 30.0),
        ("sorensen_hold", 1, 90.0),
        ("bridge_pelvic_shifts", 1, -118.0),
    ],
)
def test_sim_rig_holds_are_the_in_band_intervals(name: str, count: int, target: float) -> None:
    scenario = build_scenario(name)
    holds = scenario.truth.holds
    assert len(holds) == count
    for hold in holds:
        assert hold.target_deg == target
        assert hold.start_s <= hold.still_start_s < hold.still_end_s <= hold.end_s
        inside = np.linspace(hold.start_s + 1e-3, hold.end_s - 1e-3, 5000)
        assert np.all(np.abs(scenario.primary_angle_deg(inside) - target) <= hold.tolerance_deg)
        edges = np.array([hold.start_s - 2e-3, hold.end_s + 2e-3])
        assert np.all(np.abs(scenario.primary_angle_deg(edges) - target) > hold.tolerance_deg)
    if name == "back_extension_holds":
        for hold in holds:
            assert hold.still_end_s - hold.still_start_s == pytest.approx(4.0)


def test_sim_rig_hold_overshoot_and_stabilisation_time() -> None:
    scenario = build_scenario("back_extension_holds")
    for hold in scenario.truth.holds:
        t = np.arange(hold.approach_start_s, hold.still_end_s, 1e-4)
        angle = scenario.primary_angle_deg(t)
        # Rising from 115° toward 30°: past the target means below it.
        assert hold.overshoot_deg == pytest.approx(hold.target_deg - angle.min(), abs=1e-3)
        assert 0.9 < hold.overshoot_deg < 6.1
        settled = hold.approach_start_s + hold.stabilisation_s
        after = np.linspace(settled + 1e-3, settled + 0.1, 200)
        assert np.all(np.abs(scenario.primary_angle_deg(after) - hold.target_deg) <= 2.0)
        # Within the last 100 ms before it, the angle was still outside the ±2° band.
        before = np.linspace(settled - 0.1, settled - 1e-3, 200)
        assert np.any(np.abs(scenario.primary_angle_deg(before) - hold.target_deg) > 2.0)


def test_sim_rig_sorensen_ends_when_the_trunk_drops() -> None:
    scenario = build_scenario("sorensen_hold")
    hold = scenario.truth.holds[0]
    # The fatigue sag stays inside the band; the hold ends in the drop, after the still part.
    assert hold.end_s > hold.still_end_s + 10.0
    assert hold.tolerance_deg == 10.0  # the library's Sørensen band
    end_angle = scenario.primary_angle_deg(np.array([hold.end_s]))[0]
    assert end_angle == pytest.approx(hold.target_deg + hold.tolerance_deg, abs=0.01)


def test_sim_rig_bridge_shifts_move_the_pelvis_sideways() -> None:
    scenario = build_scenario("bridge_pelvic_shifts")
    shifts = scenario.truth.shifts
    assert [s.offset_m for s in shifts] == [0.04, 0.0, -0.04, 0.0, 0.04, 0.0, -0.04, 0.0]
    hold = scenario.truth.holds[0]
    assert all(hold.start_s < s.start_s and s.end_s < hold.end_s for s in shifts)
    pelvis = scenario.motion("pelvis")
    y = pelvis.pivot_m[1].evaluate(np.array([s.end_s for s in shifts])).value
    np.testing.assert_allclose(y, [s.offset_m for s in shifts], atol=1e-12)
    gyro, _ = scenario.imu_signal("pelvis", ideal=True)(np.arange(0.0, scenario.duration_s, 0.001))
    assert np.max(np.abs(gyro[:, 2])) > 1.0  # the pelvis rolls as it shifts


def test_sim_rig_throw_peak_rotation_speed_has_the_min_jerk_closed_form() -> None:
    scenario = build_scenario("rotational_throws")
    for rep in scenario.truth.reps:
        throw = next(p for p in rep.phases if p.kind == "concentric")
        # A minimum-jerk move of Δ over d peaks at 1.875 Δ/d (sway adds a fraction of a °/s).
        closed = 1.875 * 120.0 / throw.duration_s
        assert rep.peak_rotation_speed_dps == pytest.approx(closed, abs=3.0)
        assert rep.rom_deg == pytest.approx(120.0, abs=2.0)
    gyro, _ = scenario.imu_signal("trunk", ideal=True)(np.arange(0.0, scenario.duration_s, 0.0005))
    peak = max(r.peak_rotation_speed_dps for r in scenario.truth.reps)
    # Upright, the vertical axis is the spine (sensor x): the gyro sees the rotation there.
    assert np.max(np.abs(gyro[:, 0])) == pytest.approx(peak, rel=0.01)


def test_sim_rig_single_leg_deadlift_sway_rms() -> None:
    scenario = build_scenario("single_leg_deadlift")
    for rep in scenario.truth.reps:
        t = np.linspace(rep.start_s, rep.end_s, 20001)
        lean = scenario.motion().lean_deg.evaluate(t).value
        assert rep.sway_rms_deg == pytest.approx(np.std(lean), rel=1e-3)
        assert 0.3 < rep.sway_rms_deg < 3.0


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sim_rig_truth_json_round_trips_stably(name: str) -> None:
    truth = build_scenario(name).truth
    text = truth.to_json()
    again = GroundTruth.from_json(text)
    assert again == truth
    assert again.to_json() == text
    data = json.loads(text)
    assert data["format"] == "spinecoach-truth" and data["version"] == 1
    for placement, curve in truth.angles.items():
        t = np.arange(0.0, truth.duration_s, 0.0137)
        exact = build_scenario(name).primary_angle_deg(t, placement)
        # Linear interpolation error <= max|θ''| / (8 rate²): 0.05° at the stored rates.
        assert np.max(np.abs(curve.at(t) - exact)) < 0.05


def test_sim_rig_malformed_truth_json_is_one_clear_error() -> None:
    with pytest.raises(DataFormatError, match="line 1 column"):
        GroundTruth.from_json("{not json")
    with pytest.raises(DataFormatError, match="version 1"):
        GroundTruth.from_json('{"format": "other"}')
    data = json.loads(build_scenario("sorensen_hold").truth.to_json())
    del data["holds"]
    with pytest.raises(DataFormatError, match="holds"):
        GroundTruth.from_json(json.dumps(data))


@pytest.mark.parametrize("name", ["good_morning_tempo", "rotational_throws"])
def test_sim_rig_threshold_phase_boundaries_follow_the_speed_thresholds(name: str) -> None:
    scenario = build_scenario(name)
    motion = scenario.motion()
    channel = (
        motion.heading_deg if scenario.truth.primary_angle == "heading" else motion.flexion_deg
    )
    moving = {"eccentric", "concentric"}
    for rep in scenario.truth.reps:
        for phase in rep.phases:
            if phase.kind in moving:
                speed = np.abs(
                    channel.evaluate(
                        np.array([phase.threshold_start_s, phase.threshold_end_s])
                    ).rate
                )
                np.testing.assert_allclose(speed, [10.0, 5.0], atol=0.01)
                # Thresholds see a move start late and end early.
                assert phase.start_s < phase.threshold_start_s < phase.threshold_end_s
                assert phase.threshold_end_s < phase.end_s
            else:
                assert phase.threshold_start_s <= phase.start_s
        # Consecutive phases share their threshold boundaries too.
        for a, b in zip(rep.phases, rep.phases[1:]):
            assert a.threshold_end_s == b.threshold_start_s
