"""The pipeline against the simulated rig's ground truth (drivers/sim scenarios, noisy signals)."""

from __future__ import annotations

import numpy as np
import pytest
from spinecoach.analysis import EXERCISES
from spinecoach.core.imu_calibration import (
    ImuCalibration,
    box_gyro_bias,
    fit_accelerometer,
    still_pose,
)
from spinecoach.core.metrics import sorensen_hold_time_s
from spinecoach.core.orientation import OrientationSettings
from spinecoach.core.pipeline import Pipeline
from spinecoach.core.results import AnalysisResult, MotionSettings
from spinecoach.drivers.blocks import StreamInfo
from spinecoach.drivers.sim.poses import still_poses
from spinecoach.drivers.sim.scenarios import Scenario, build_scenario

FLEXION = (0.0, 1.0, 0.0)
#: The orientation filter trusting its (calibrated) gyro to carry movements alone.
MOVEMENT_REJECTION = OrientationSettings(movement_reject_always=True)
DEFAULT_ORIENTATION = OrientationSettings()


def analyse(sc: Scenario, motion: MotionSettings,
            calibration: dict[str, ImuCalibration] | None = None,
            orientation: OrientationSettings = DEFAULT_ORIENTATION,
            imu_rate_hz: float | None = None) -> AnalysisResult:
    rate = imu_rate_hz or sc.imu_rate_hz
    t = np.arange(int(sc.duration_s * rate)) / rate
    # The scenario's signal is the motion sampled as it happens: no chip low-pass, no delay.
    streams = [StreamInfo(p, "imu", rate, gyro_delay_s=0.0) for p in sc.imu_placements]
    if sc.has_load_cell:
        streams.append(StreamInfo("force", "force", sc.force_rate_hz))
    p = Pipeline(streams, motion, primary_imu=sc.primary_placement, imu_calibration=calibration,
                 orientation_settings=orientation)
    if sc.has_load_cell:
        tf = np.arange(int(sc.duration_s * sc.force_rate_hz)) / sc.force_rate_hz
        p.feed_force("force", np.arange(len(tf)), sc.force_signal()(tf))
    for placement in sc.imu_placements:
        gyro, accel = sc.imu_signal(placement)(t)
        p.feed_imu(placement, np.arange(len(t)), gyro, accel)
    return p.finish()


@pytest.mark.parametrize("name", ["good_morning_tempo", "dumbbell_row_slow_eccentric",
                                  "single_leg_deadlift"])
def test_rep_counts_exact_and_rom(name):
    sc = build_scenario(name)
    truth = sc.truth
    res = analyse(sc, MotionSettings(primary_axis=FLEXION, eccentric_sign=truth.eccentric_sign))
    assert len(res.reps) == len(truth.reps)
    for got, want in zip(res.reps, truth.reps):
        assert got.rom_deg == pytest.approx(want.rom_deg, abs=2.5)
        # Minimum-jerk movements under postural sway: the bell fit (free amplitude) puts rep
        # starts within 20 ms of the scripted ones and ends within 43 ms (the end of a slow
        # 4 s lowering, fitted only on samples up to the deciding one; see the README).
        assert abs(got.start_s - want.start_s) < 0.03
        assert abs(got.end_s - want.end_s) < 0.05


def box_calibration(sc: Scenario) -> dict[str, ImuCalibration]:
    """The primary chip's calibration as a physiotherapist gets it: the chip resting on the six
    faces of a box (accelerometer offset and scale fitted, gyro bias the poses' mean rate with
    its standard error), never the rig's true errors."""
    session = still_poses(sc.rig, sc.primary_placement)
    poses = [still_pose(*session.capture(k)) for k in range(len(session.names))]
    fit = fit_accelerometer([p.accel_g for p in poses])
    bias, sd = box_gyro_bias(poses)
    return {sc.primary_placement: ImuCalibration(
        gyro_bias_dps=bias, accel_offset_g=fit.offset_g, accel_scale=fit.scale,
        gyro_bias_sd_dps=sd)}


def test_holds_found_with_their_durations():
    sc = build_scenario("back_extension_holds")
    h0 = sc.truth.holds[0]
    res = analyse(sc, MotionSettings(primary_axis=FLEXION, eccentric_sign=1,
                                     hold_target_deg=h0.target_deg,
                                     hold_tolerance_deg=h0.tolerance_deg), box_calibration(sc))
    assert len(res.holds) == len(sc.truth.holds)
    # The box calibration's gyro bias is known (its SD, 0.002 °/s here), so the filter starts
    # with it as known, follows its drift (the rig's 0.004 °/s/√s walk) with the motion
    # updates' tracking weight, and the movement rejection carries every movement on the gyro
    # alone. Measured: starts -0.3..+1.3 ms, ends +0.7..+2.8 ms, durations -0.6..+3.1 ms
    # (each edge is the first sample inside the band or of the break, up to a sample after the
    # crossing; holds 2, 4 and the Sørensen hold within a sample, holds 1, 5 and 3 1.0, 1.3
    # and 3.1 ms long: the accelerometer low-pass keeps -0.03..-0.06° of a movement's
    # acceleration for a second or two after it). Before the bias was tracked, holds 3-4 ended 2-3 ms late (a
    # steady -0.1° through the hold) and hold 5, at 57 s, was past the seed (8 ms late); with
    # the 2.6 ms gyro-delay prediction the rig's delay-free signal does not need, every edge
    # was ~2.6 ms early. The mean angle of a hold within 0.125° of the truth's (uncalibrated:
    # 0.3-0.6°, the rig's accelerometer offset tilting the angle).
    for got, want in zip(res.holds, sc.truth.holds):
        assert -0.001 < got.start_s - want.start_s < 0.0015
        assert 0.0 < got.end_s - want.end_s < 0.0035
        assert got.duration_s == pytest.approx(want.end_s - want.start_s, abs=0.0035)
        true_angle = sc.primary_angle_deg(np.arange(want.start_s, want.end_s, 0.001)).mean()
        assert got.mean_angle_deg == pytest.approx(true_angle, abs=0.15)
    # The movement rejection always on gives the same holds: the bias is known throughout.
    rejecting = analyse(sc, MotionSettings(primary_axis=FLEXION, eccentric_sign=1,
                                           hold_target_deg=h0.target_deg,
                                           hold_tolerance_deg=h0.tolerance_deg),
                        box_calibration(sc), MOVEMENT_REJECTION)
    assert rejecting.holds == res.holds


@pytest.mark.parametrize("name", ["isometric_max_pulls", "repeaters_7_3"])
def test_contractions_match_the_analytic_force(name):
    sc = build_scenario(name)
    res = analyse(sc, MotionSettings(primary_axis=FLEXION))
    truth = sc.truth.contractions
    assert len(res.contractions) == len(truth)
    ideal = sc.force_signal(ideal=True)
    for got, want in zip(res.contractions, truth):
        # the truth's onset is METRICS.md's threshold crossing on the noise-free force
        assert got.onset_s == pytest.approx(want.onset_s, abs=0.001)
        assert got.peak_force_n == pytest.approx(want.peak_force_n, rel=0.01)
        # METRICS.md windows start at the detected onset: compare with the noise-free force
        # evaluated from that onset.
        t_on = got.onset_s
        f_on = float(ideal(np.array([t_on]))[0])
        for ms in (50, 100, 150, 200):
            w = ms / 1000
            expected = (float(ideal(np.array([t_on + w]))[0]) - f_on) / w
            assert got.rfd_n_per_s[f"0-{ms}"] == pytest.approx(expected, rel=0.02)
        for ms in (100, 200, 300):
            tt = np.linspace(t_on, t_on + ms / 1000, 3001)
            expected = np.trapezoid(ideal(tt) - got.baseline_n, tt)
            assert got.impulse_n_s[f"0-{ms}"] == pytest.approx(expected, rel=0.02)
        for ms in (50, 100, 150, 200):
            assert got.rfd_n_per_s[f"0-{ms}"] == pytest.approx(want.rfd_n_per_s[str(ms)], rel=0.02)
        for ms in (100, 200, 300):
            assert got.impulse_n_s[f"0-{ms}"] == pytest.approx(want.impulse_n_s[str(ms)], rel=0.02)
        assert got.peak_rfd_n_per_s == pytest.approx(want.peak_rfd_n_per_s, rel=0.02)
        assert got.mean_force_n == pytest.approx(want.mean_force_on_n, rel=0.02)


def test_sorensen_hold_time():
    sc = build_scenario("sorensen_hold")
    h = sc.truth.holds[0]
    # the figure itself, on the true angle: exact to a sample
    t = np.arange(0.0, sc.duration_s, 0.001)
    held = sorensen_hold_time_s(sc.primary_angle_deg(t), 1000.0, h.target_deg, h.tolerance_deg)
    assert held == pytest.approx(h.end_s - h.start_s, abs=0.002)
    # and from the IMU through the pipeline
    res = analyse(sc, MotionSettings(primary_axis=FLEXION, hold_target_deg=h.target_deg,
                                     hold_tolerance_deg=h.tolerance_deg), box_calibration(sc))
    assert len(res.holds) == 1
    # Measured with the box calibration (its gyro bias seeded as known and tracked, so the
    # movement rejection carries the lift): 0.4 ms long, starting on time (+0.02 ms), ending
    # 0.4 ms late (before the bias was tracked 1.4 ms late; with the 2.6 ms gyro-delay
    # prediction the rig's signal does not need, 3.0 ms and 1.6 ms early). Not seeded (as before the bias's SD was kept): 13.4 ms long, 8.0 ms early, 5.4 ms late;
    # with the movement rejection forced on but not seeded 8.4 ms long (the bias the filter
    # learns over the 73 s hold); uncalibrated 104 ms long, the accelerometer offset tilting
    # the horizontal trunk's angle by ~1.1°.
    (hold,) = res.holds
    assert hold.duration_s == pytest.approx(h.end_s - h.start_s, abs=0.001)
    assert hold.start_s == pytest.approx(h.start_s, abs=0.001)
    assert hold.end_s == pytest.approx(h.end_s, abs=0.001)


def test_rotational_throws_reps_and_rotation_speed():
    sc = build_scenario("rotational_throws")
    res = analyse(sc, EXERCISES["rotational-throw"])
    assert len(res.reps) == len(sc.truth.reps)
    for got, want in zip(res.reps, sc.truth.reps):
        assert got.rom_deg == pytest.approx(want.rom_deg, abs=2.0)
        assert got.rotation_speed_dps == pytest.approx(want.peak_rotation_speed_dps, rel=0.02)
        # measured: starts within 3 ms (the wind-up fitted in its own direction), ends within 9 ms
        assert abs(got.start_s - want.start_s) < 0.01 and abs(got.end_s - want.end_s) < 0.02


def test_single_leg_deadlift_sway():
    sc = build_scenario("single_leg_deadlift")
    res = analyse(sc, MotionSettings(primary_axis=FLEXION, eccentric_sign=1))
    for got, want in zip(res.reps, sc.truth.reps):
        assert got.sway_rms_deg == pytest.approx(want.sway_rms_deg, abs=0.3)
