"""Timing accuracy of holds, reps and phase boundaries against the simulated rig's truth.

Issue 3 asks for hold durations within one sample and phase boundaries within 20 ms. What each
figure here can reach is set by its error budget, measured per error source (ideal IMU, white
noise only, noise + gyro bias, the full rig) and given in the comments:

- the hold logic and the truth both follow METRICS.md, so on the true angle a hold is exact
  to a sample; through the IMU the angle carries the fusion's inclination error while the
  trunk crosses the band edge at 40-75 °/s. Movement acceleration through the accelerometer
  low-pass made that ±0.5° (up to 8 ms with an ideal IMU); with the movement rejection (the
  gyroscope alone carries the movement once its bias is known) the ideal IMU's holds are
  within a sample, box-calibrated ones (the bias seeded and tracked) within 3.1 ms, and what
  is left is the accelerometer low-pass for a second or two after each movement;
  uncalibrated, the rig's constant accelerometer offset (0.5° here: 16-24 ms);
- rep and phase boundaries come from a bell fit of each swing's speed, exact on the scripted
  minimum-jerk movement alone; the rig's postural sway (0.25° RMS, 0.1-0.8 Hz) moves the ends
  of slow (3-4 s) movements by 25-64 ms in the true motion already, so the 20 ms holds for
  brisk (1-2 s) movements only; box-calibrated, the measured boundaries are those of the
  true motion within 2 ms.
"""

from __future__ import annotations

import numpy as np
import pytest
from core_detect_synth import Segment, cosine_moves
from spinecoach.analysis import EXERCISES
from spinecoach.core.detect import HoldDetector, count_reps
from spinecoach.core.orientation import OrientationSettings
from spinecoach.core.pipeline import Pipeline
from spinecoach.core.results import AnalysisResult, MotionSettings, RepResult
from spinecoach.drivers.blocks import StreamInfo
from spinecoach.drivers.sim.motion import Script
from spinecoach.drivers.sim.scenarios import Scenario, build_scenario
from spinecoach.drivers.sim.truth import HOLD_DEBOUNCE_S, RepTruth, holds_from_script
from test_detect_sim_truth import DEFAULT_ORIENTATION, analyse, box_calibration

FLEXION = (0.0, 1.0, 0.0)


class _IdealImu:
    """The scenario with its ideal (error-free) IMU and load cell."""

    def __init__(self, sc: Scenario) -> None:
        self._sc = sc

    def __getattr__(self, name: str):
        return getattr(self._sc, name)

    def imu_signal(self, placement: str):
        return self._sc.imu_signal(placement, ideal=True)

    def force_signal(self):
        return self._sc.force_signal(ideal=True)


#: The filter set for the rig's ideal IMU as for a chip whose errors are known: its gyro has
#: no internal low-pass (no group delay to predict over) and no bias, so there is nothing to
#: learn at rest (where the rig's postural sway, 1-2 °/s, would be taken for bias) and the
#: gyroscope alone can carry every movement.
IDEAL_CHIP = OrientationSettings(gyro_delay_s=0.0, movement_reject_always=True,
                                 rest_bias_estimation=False)


def run_pipeline(sc: Scenario, motion: MotionSettings, *, ideal: bool = False,
                 orientation: OrientationSettings = DEFAULT_ORIENTATION,
                 imu_rate_hz: float | None = None) -> AnalysisResult:
    """The scenario's IMU (and load-cell) signals fed straight into the pipeline."""
    return analyse(_IdealImu(sc) if ideal else sc, motion,  # type: ignore[arg-type]
                   orientation=orientation, imu_rate_hz=imu_rate_hz)


def hold_motion(sc: Scenario) -> MotionSettings:
    h = sc.truth.holds[0]
    return MotionSettings(primary_axis=FLEXION, eccentric_sign=1, hold_target_deg=h.target_deg,
                          hold_tolerance_deg=h.tolerance_deg)


# ------------------------------------------------------------------------------------------------
# Holds
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["back_extension_holds", "sorensen_hold"])
@pytest.mark.parametrize("rate", [1000.0, 100.0])
def test_hold_detector_is_exact_to_a_sample_on_the_true_angle(name, rate):
    sc = build_scenario(name)
    h0 = sc.truth.holds[0]
    t = np.arange(int(sc.duration_s * rate)) / rate
    det = HoldDetector(rate, h0.target_deg - h0.tolerance_deg, h0.target_deg + h0.tolerance_deg)
    changes = det.update(sc.primary_angle_deg(t)) + det.finish()
    ends = [c for c in changes if c.kind == "hold_end"]
    assert len(ends) == len(sc.truth.holds)
    for got, want in zip(ends, sc.truth.holds):
        # The first sample inside the band and the first sample of the break: at most one
        # sample after the true band-edge crossings.
        assert 0.0 <= got.start / rate - want.start_s < 1.0 / rate
        assert 0.0 <= got.end / rate - want.end_s < 1.0 / rate
        assert (got.end - got.start) / rate == pytest.approx(want.duration_s, abs=1.0 / rate)


def _overshooting_approach(pause_s: float) -> Script:
    """From 50° down through the band 30 ± 5° to 24.5° (out of it for 0.13 s + ``pause_s``),
    back to 30° and held."""
    script = Script(50.0).pause(1.0).move(24.5, 0.6).pause(pause_s).move(30.0, 0.2)
    return script.hold(3.0).move(50.0, 1.0).pause(1.0)


def _crossings(script: Script, edge: float) -> list[float]:
    t = np.arange(0.0, script.end_s, 1e-4)
    above = script.evaluate(t).value > edge
    return list(t[1:][above[1:] != above[:-1]])


@pytest.mark.parametrize("pause_s", [0.0, 0.05, 0.1, 0.5])
def test_truth_holds_ride_over_excursions_within_the_debounce(pause_s):
    script = _overshooting_approach(pause_s)
    (hold,) = holds_from_script(script, lambda t: script.evaluate(t).value, script.end_s)
    enter_top = _crossings(script, 35.0)[0]  # first entry into the band, from above
    leave_low, back_in = _crossings(script, 25.0)[:2]  # the overshoot below the band
    assert back_in - leave_low == pytest.approx(0.128 + pause_s, abs=0.002)
    # METRICS.md: a break must last longer than the debounce to end (or prevent) the hold.
    expected = enter_top if back_in - leave_low <= HOLD_DEBOUNCE_S else back_in
    assert hold.start_s == pytest.approx(expected, abs=2e-3)
    assert hold.end_s == pytest.approx(_crossings(script, 35.0)[-1], abs=2e-3)
    # and the detector, fed the same angle, agrees to the sample
    rate = 1000.0
    det = HoldDetector(rate, 25.0, 35.0)
    changes = det.update(script.evaluate(np.arange(int(script.end_s * rate)) / rate).value)
    (end,) = [c for c in changes + det.finish() if c.kind == "hold_end"]
    assert 0.0 <= end.start / rate - hold.start_s < 1.0 / rate
    assert 0.0 <= end.end / rate - hold.end_s < 1.0 / rate


def test_holds_through_the_imu():
    sc = build_scenario("back_extension_holds")
    want = sc.truth.holds
    ideal = run_pipeline(sc, hold_motion(sc), ideal=True, orientation=IDEAL_CHIP).holds
    noisy = run_pipeline(sc, hold_motion(sc)).holds
    assert len(ideal) == len(noisy) == len(want)
    for gi, gn, w in zip(ideal, noisy, want):
        # Ideal IMU, measured: starts +0.7..+1.8 ms, ends +0.3..+1.1 ms, durations -1.0..+0.4 ms
        # (the first sample inside the band and the first of the break, each up to a sample
        # after the crossing, on an angle that lags the true one by ~0.2 ms; before the
        # half-sample correction of the strapdown step the angle led by 0.3 ms). Before the movement rejection (default settings, the
        # movement acceleration through the 2 s accelerometer low-pass) +1.7..+7.8, +1.7..+8.3
        # and 6.4 ms; with rest-bias estimation on, holds 4-5 are 6 ms early and 7-8 ms late
        # ends: a rest detected in the postural sway sets a 0.3 °/s bias.
        assert 0.0 < gi.start_s - w.start_s < 0.002
        assert 0.0 < gi.end_s - w.end_s < 0.0015
        assert gi.duration_s == pytest.approx(w.duration_s, abs=0.0015)
        # Full rig, measured: starts +13.0..+20.8 ms, ends -9.1..-3.7 ms, durations 16.7-30 ms
        # short. By source: white noise only, starts +6.0..+8.7 and ends +0.7..+1.9 ms; with
        # the gyro bias +6.0..+13.8 and -3.1..+2.3 ms; the rest is the constant accelerometer
        # offset (N(0, 0.01 g) per axis, a ~0.5° tilt here), which no fusion filter can tell
        # from a tilt: the IMU calibration (accelerometer offset) is what removes it.
        assert 0.0 < gn.start_s - w.start_s < 0.025
        assert abs(gn.end_s - w.end_s) < 0.012
        assert gn.duration_s == pytest.approx(w.duration_s, abs=0.035)


@pytest.mark.parametrize("name", ["back_extension_holds", "sorensen_hold"])
def test_holds_through_the_ideal_imu_at_100_hz(name):
    sc = build_scenario(name)
    want = sc.truth.holds
    got = run_pipeline(sc, hold_motion(sc), ideal=True, orientation=IDEAL_CHIP,
                       imu_rate_hz=100.0).holds
    assert len(got) == len(want)
    for g, w in zip(got, want):
        # Measured: starts +1.3..+10.0 ms, ends +0.3..+8.7 ms, durations -9.0..+7.4 ms: the
        # first sample inside the band and the first of the break, within a sample (10 ms) of
        # the crossings (the Sørensen start 10.02 ms: its angle lags the true one by 0.02 ms
        # where the trunk enters the band at a few °/s). Before the half-sample correction of
        # the strapdown step the angle led by 4.8 ms and the edges were -1.3..+4.4 ms.
        assert 0.0 < g.start_s - w.start_s < 0.0105
        assert 0.0 < g.end_s - w.end_s < 0.0105
        assert g.duration_s == pytest.approx(w.duration_s, abs=0.010)


def test_sorensen_hold_through_the_imu():
    sc = build_scenario("sorensen_hold")
    (want,) = sc.truth.holds
    motion = MotionSettings(primary_axis=FLEXION, hold_target_deg=want.target_deg,
                            hold_tolerance_deg=want.tolerance_deg)
    (ideal,) = run_pipeline(sc, motion, ideal=True, orientation=IDEAL_CHIP).holds
    # Ideal IMU, measured: start 3.0 ms late, end 0.4 ms late, 2.6 ms short (the trunk enters
    # the band at a few °/s, so 0.01° is milliseconds; before the movement rejection 7 ms
    # early and 6.4 ms long: the lift's movement acceleration).
    assert 0.0 < ideal.start_s - want.start_s < 0.0035
    assert abs(ideal.end_s - want.end_s) < 0.001
    assert ideal.duration_s == pytest.approx(want.duration_s, abs=0.003)
    (noisy,) = run_pipeline(sc, motion).holds
    # Full rig, measured: start 78 ms early, end 26 ms late (104 ms long). The start is the
    # gyro bias (73 ms of it with the accelerometer offset removed, 8 ms with white noise
    # only): 3 s of rest before the 2 s lift leave the bias estimate short; the end is the
    # accelerometer offset (~1.1° on a horizontal trunk). Both go with the IMU calibration.
    assert -0.1 < noisy.start_s - want.start_s < 0.0
    assert 0.0 < noisy.end_s - want.end_s < 0.04


# ------------------------------------------------------------------------------------------------
# Reps and phase boundaries
# ------------------------------------------------------------------------------------------------
def test_rep_span_keeps_a_throws_wind_up():
    rate = 200.0
    # wind-up to +40°, pause, throw through the start to -40°, back to 0; then a plain rep
    segs = [Segment(1.0), Segment(0.8, 40.0), Segment(0.2), Segment(0.3, -40.0),
            Segment(1.2, 0.0), Segment(1.5), Segment(1.0, 40.0), Segment(0.5),
            Segment(1.0, 0.0), Segment(1.0)]
    _t, angle, omega, edges = cosine_moves(segs, rate)
    throw, plain = count_reps(angle, omega, rate, MotionSettings(min_rom_deg=30.0))
    assert throw.away_dir == -1
    assert abs(throw.start / rate - edges[1]) <= 0.02
    assert abs(throw.wind_up_end / rate - edges[2]) <= 0.02
    assert abs(throw.through_start / rate - edges[3]) <= 0.02
    assert abs(throw.away_end / rate - edges[4]) <= 0.02
    assert abs(throw.end / rate - edges[5]) <= 0.02
    assert plain.wind_up_end == plain.through_start == -1


def swing_boundaries(rep: RepResult) -> list[float]:
    """[start, end of the swing away, start of the return, end] of a reported rep (s)."""
    tempo = rep.tempo
    if rep.eccentric_first:
        away, far = tempo.eccentric_s, tempo.pause_lengthened_s
    else:
        away, far = tempo.concentric_s, tempo.pause_shortened_s
    return [rep.start_s, rep.start_s + away, rep.start_s + away + far, rep.end_s]


def true_boundaries(rep: RepTruth) -> list[float]:
    moves = [p for p in rep.phases if p.kind in ("eccentric", "concentric")]
    return [moves[0].start_s, moves[0].end_s, moves[-1].start_s, moves[-1].end_s]


# Per scenario: which of the four boundaries belong to a brisk (1-2 s) movement, the bound (s)
# for the slow ones and the bound for the brisk ones. Measured on the full rig (uncalibrated),
# max |error| of [start, away end, return start, end] (ms): good morning 16.9/51.0/4.8/4.0
# (3 s eccentric, 1 s concentric), chained good morning 30.5/35.0/5.5/5.2 (same tempo),
# dumbbell row 3.0/5.5/80.7/45.1 (1 s concentric, 4 s eccentric), single-leg deadlift
# 16.0/35.7/14.8/21.4 (3 s eccentric, 2 s concentric). The same bell fit on the noise-free
# true speed gives 25/28/3/3, 39/21/3/3, 2/2/62/60 and 16/17/11/13 ms, and on the scripted
# movement without the sway 0/0/0/0: the slow movements' ends are limited by postural sway
# (its speed, ~0.7 °/s, against a bell that rises as t²), plus 15-20 ms at the end of an
# eccentric from the fusion settling the angle after the movement (its derivative drags a
# tail onto the speed). The single-leg deadlift's rep end (21.4 ms, on average 7.5 ms late)
# is the uncalibrated accelerometer bending the angle as the trunk rises out of 1.2° of
# lean sway; box-calibrated it is 12.2 ms (below). (With the 2.6 ms gyro-delay prediction
# the rig's delay-free signal does not need, the brisk boundaries were ~2.6 ms early on
# average, which happened to put that end at 18.5 ms.)
CASES = {
    "good_morning_tempo": ((False, False, True, True), 0.055, 0.020),
    "chained_good_morning": ((False, False, True, True), 0.040, 0.020),
    "dumbbell_row_slow_eccentric": ((True, True, False, False), 0.095, 0.020),
    "single_leg_deadlift": ((False, False, True, True), 0.040, 0.023),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_phase_boundaries(name):
    brisk, slow_bound, brisk_bound = CASES[name]
    sc = build_scenario(name)
    res = run_pipeline(sc, MotionSettings(primary_axis=FLEXION,
                                          eccentric_sign=sc.truth.eccentric_sign))
    assert len(res.reps) == len(sc.truth.reps)
    for got, want in zip(res.reps, sc.truth.reps):
        for g, w, is_brisk in zip(swing_boundaries(got), true_boundaries(want), brisk):
            assert abs(g - w) < (brisk_bound if is_brisk else slow_bound)


# Box-calibrated (accelerometer offset and scale, the gyro bias seeded as known and tracked),
# max |error| of the four boundaries (ms) and of the ROM (°): good morning 24.3/26.9/3.5/3.3,
# 0.10°; chained good morning 38.9/21.4/3.3/2.8, 0.06°; single-leg deadlift
# 16.2/15.7/11.0/12.1, 0.37° (uncalibrated ROM: 1.76°, 0.72°, 0.56°). The gyroscope alone
# carries each swing, so the movement acceleration no longer bends the angle: every brisk
# boundary within 20 ms, and those of the hinges within 3.5 ms.
BOX_ROM_DEG = {"good_morning_tempo": 0.2, "chained_good_morning": 0.15, "single_leg_deadlift": 0.4}


@pytest.mark.parametrize("name", sorted(BOX_ROM_DEG))
def test_box_calibrated_phase_boundaries_and_rom(name):
    brisk, slow_bound, _ = CASES[name]
    sc = build_scenario(name)
    res = analyse(sc, MotionSettings(primary_axis=FLEXION, eccentric_sign=sc.truth.eccentric_sign),
                  box_calibration(sc))
    assert len(res.reps) == len(sc.truth.reps)
    for got, want in zip(res.reps, sc.truth.reps):
        assert got.rom_deg == pytest.approx(want.rom_deg, abs=BOX_ROM_DEG[name])
        for g, w, is_brisk in zip(swing_boundaries(got), true_boundaries(want), brisk):
            assert abs(g - w) < (0.020 if is_brisk else slow_bound)


def test_throw_phases_within_20_ms():
    sc = build_scenario("rotational_throws")
    res = run_pipeline(sc, EXERCISES["rotational-throw"])
    assert len(res.reps) == len(sc.truth.reps)
    for got, want in zip(res.reps, sc.truth.reps):
        # E-P-C-P of a throw: wind-up, pause, throw (the rest before the rep is the last P),
        # on either side; each swing fitted in its own direction. Measured: within 4 ms, the
        # rep's end (back from the far side) within 9.3 ms.
        assert got.eccentric_first
        tempo = got.tempo
        wind_up_end = got.start_s + tempo.eccentric_s
        throw_start = wind_up_end + tempo.pause_lengthened_s
        throw_end = throw_start + tempo.concentric_s
        phases = {p.kind: p for p in want.phases}
        expected = [phases["eccentric"].start_s, phases["eccentric"].end_s,
                    phases["concentric"].start_s, phases["concentric"].end_s, want.end_s]
        for g, w in zip([got.start_s, wind_up_end, throw_start, throw_end, got.end_s], expected):
            assert abs(g - w) < 0.020
        # the throw's own speed, not diluted by the wind-up
        assert got.peak_concentric_speed_dps == pytest.approx(want.peak_rotation_speed_dps,
                                                              rel=0.02)


def test_throws_in_blocks_equal_one_block():
    sc = build_scenario("rotational_throws")
    motion = EXERCISES["rotational-throw"]
    whole = run_pipeline(sc, motion).reps
    t = np.arange(int(sc.duration_s * sc.imu_rate_hz)) / sc.imu_rate_hz
    gyro, accel = sc.imu_signal(sc.primary_placement)(t)
    p = Pipeline([StreamInfo(sc.primary_placement, "imu", sc.imu_rate_hz, gyro_delay_s=0.0)],
                 motion)
    sizes, pos, k = (37, 1, 250, 8), 0, 0
    while pos < len(t):
        n = sizes[k % len(sizes)]
        p.feed_imu(sc.primary_placement, np.arange(pos, min(pos + n, len(t))),
                   gyro[pos : pos + n], accel[pos : pos + n])
        pos, k = pos + n, k + 1
    assert p.finish().reps == whole


@pytest.mark.parametrize("seed", [6, 7])
def test_slow_lowerings_keep_the_minimum_jerk_bell_under_sway(seed):
    # Seeds where, before the cosine bell had to win clearly, 2 of 6 lowerings were fitted with
    # it and came out ~0.6 s short (boundaries 280-350 ms off). Measured now over 8 seeds (48
    # reps, ideal IMU): the 4 s lowering's ends within 64/73 ms, SD 30/32 ms (the sway).
    sc = build_scenario("dumbbell_row_slow_eccentric", seed=seed)
    res = run_pipeline(sc, MotionSettings(primary_axis=FLEXION,
                                          eccentric_sign=sc.truth.eccentric_sign),
                       ideal=True, orientation=IDEAL_CHIP)
    assert len(res.reps) == len(sc.truth.reps)
    for got, want in zip(res.reps, sc.truth.reps):
        for g, w in zip(swing_boundaries(got), true_boundaries(want)):
            assert abs(g - w) < 0.1
        lowering = next(p for p in want.phases if p.kind == "eccentric")
        assert got.tempo.eccentric_s == pytest.approx(lowering.duration_s, abs=0.15)


#: Measured max |difference| (ms) of the four boundaries, box-calibrated IMU against the ideal
#: IMU: good morning 0.7, chained good morning 0.9, dumbbell row 1.6, single-leg deadlift 1.3
#: (5.7 before the gyro bias was tracked); uncalibrated 26.3, 21.5, 21.5 and 24.0.
TRUE_MOTION_BOUND_S = {"good_morning_tempo": 0.0015, "chained_good_morning": 0.0015,
                       "dumbbell_row_slow_eccentric": 0.0025, "single_leg_deadlift": 0.002}


@pytest.mark.parametrize("name", sorted(TRUE_MOTION_BOUND_S))
def test_box_calibrated_boundaries_are_those_of_the_true_motion(name):
    """What is left of the boundary error once the IMU is calibrated is not the measurement:
    the box-calibrated rig's boundaries are, within 2 ms, those the same analysis finds in the
    error-free IMU's, i.e. in the true motion. The 25-64 ms between those and the scripted boundaries of slow movements (test
    above) is the postural sway the scripted truth leaves out."""
    sc = build_scenario(name)
    motion = MotionSettings(primary_axis=FLEXION, eccentric_sign=sc.truth.eccentric_sign)
    true_motion = run_pipeline(sc, motion, ideal=True, orientation=IDEAL_CHIP).reps
    measured = analyse(sc, motion, box_calibration(sc)).reps
    assert len(measured) == len(true_motion) == len(sc.truth.reps)
    for got, want in zip(measured, true_motion):
        for g, w in zip(swing_boundaries(got), swing_boundaries(want)):
            assert abs(g - w) < TRUE_MOTION_BOUND_S[name]
