"""Rig signals: physically consistent, chunk-invariant, seeded."""

from __future__ import annotations

import numpy as np
import pytest
from spinecoach.drivers.sim.motion import Constant, Script, Sum, Wobble
from spinecoach.drivers.sim.rig import (
    G0_MPS2,
    BodyMotion,
    Chain,
    ImuErrorModel,
    ImuMount,
    Rig,
    Spike,
    first_order_lag,
    gaussian_at,
)
from spinecoach.drivers.sim.scenarios import SCENARIOS, build_scenario


def _quat_mul(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    pw, px, py, pz = p
    qw, qx, qy, qz = q
    return np.array(
        [
            pw * qw - px * qx - py * qy - pz * qz,
            pw * qx + px * qw + py * qz - pz * qy,
            pw * qy - px * qz + py * qw + pz * qx,
            pw * qz + px * qy - py * qx + pz * qw,
        ]
    )


def _angle_between_deg(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.degrees(2.0 * np.arccos(min(1.0, abs(float(np.dot(p, q)))))))


@pytest.mark.parametrize(
    ("name", "placement"),
    [
        ("rotational_throws", "trunk"),
        ("single_leg_deadlift", "trunk"),
        ("bridge_pelvic_shifts", "pelvis"),
    ],
)
def test_sim_rig_gyro_integrates_to_the_orientation_trajectory(name: str, placement: str) -> None:
    scenario = build_scenario(name)
    motion = scenario.motion(placement)
    signal = scenario.imu_signal(placement, ideal=True)
    dt = 0.001
    t = np.arange(0.0, min(scenario.duration_s, 25.0), dt)
    # Body rates at the step midpoints make the integration second-order accurate.
    gyro_rad = np.radians(signal(t[:-1] + 0.5 * dt)[0])
    truth = motion.quaternion(t)
    q = truth[0].copy()
    worst = 0.0
    for k, w in enumerate(gyro_rad):
        rate = float(np.linalg.norm(w))
        half = 0.5 * rate * dt
        axis = w / rate if rate > 0 else w
        q = _quat_mul(q, np.concatenate(([np.cos(half)], np.sin(half) * axis)))
        if k % 50 == 0:
            worst = max(worst, _angle_between_deg(q / np.linalg.norm(q), truth[k + 1]))
    worst = max(worst, _angle_between_deg(q / np.linalg.norm(q), truth[-1]))
    assert worst < 0.05, f"integrated gyro drifts {worst:.3f}° from the trajectory"


@pytest.mark.parametrize(
    ("flexion_deg", "expected"),
    [
        (0.0, (1.0, 0.0, 0.0)),
        (90.0, (0.0, 0.0, 1.0)),
        (-90.0, (0.0, 0.0, -1.0)),
        (180.0, (-1.0, 0.0, 0.0)),
    ],
)
def test_sim_rig_accel_at_rest_is_gravity_in_sensor_axes(
    flexion_deg: float, expected: tuple
) -> None:
    motion = BodyMotion(Constant(flexion_deg))
    gyro, accel = motion.ideal_imu(np.linspace(0.0, 2.0, 11))
    np.testing.assert_allclose(gyro, 0.0, atol=1e-12)
    np.testing.assert_allclose(accel, np.tile(expected, (11, 1)), atol=1e-12)


def test_sim_rig_lateral_lean_and_heading_follow_the_frame_convention() -> None:
    # Leaning toward the right lifts the left (sensor +y) axis, so +y reads part of gravity.
    lean = BodyMotion(Constant(0.0), lean_deg=Constant(30.0))
    _, accel = lean.ideal_imu(np.zeros(1))
    np.testing.assert_allclose(
        accel[0], [np.cos(np.radians(30)), np.sin(np.radians(30)), 0], atol=1e-12
    )
    # Turning left (heading increasing) upright is a rotation about the spine (+x).
    turn = BodyMotion(Constant(0.0), heading_deg=Script(0.0).move(90.0, 1.0))
    gyro, _ = turn.ideal_imu(np.array([0.5]))
    assert gyro[0, 0] == pytest.approx(1.875 * 90.0) and abs(gyro[0, 1]) < 1e-9


def test_sim_rig_noisy_accel_at_rest_has_unit_norm() -> None:
    scenario = build_scenario("isometric_max_pulls")
    t = np.arange(0.0, 4.0, 0.001)  # before the first pull: standing still with sway
    _, ideal = scenario.imu_signal("trunk", ideal=True)(t)
    _, noisy = scenario.imu_signal("trunk")(t)
    # Sway and tremor move the sensor a little (tangential + centripetal terms), no more.
    assert np.max(np.abs(np.linalg.norm(ideal, axis=1) - 1.0)) < 0.02
    norm = np.linalg.norm(noisy, axis=1)
    assert abs(norm.mean() - 1.0) < 0.05
    expected_sd = ImuErrorModel().accel_noise_sd_g(scenario.imu_rate_hz)
    assert np.std(noisy - ideal, axis=0) == pytest.approx([expected_sd] * 3, rel=0.1)


def test_sim_rig_accel_includes_the_lever_arm_acceleration() -> None:
    # A fast hinge: the specific force must equal gravity plus the second derivative of the
    # sensor's position, both rotated into the sensor frame.
    motion = BodyMotion(
        Sum((Script(0.0).move(80.0, 0.6), Wobble((1.0,), (2.0,), (0.3,)))),
        heading_deg=Script(0.0).move(40.0, 0.6),
        pivot_m=(Constant(), Script(0.0).move(0.05, 0.6), Constant(0.9)),
    )
    h = 1e-4
    t = np.linspace(0.05, 0.55, 21)
    pos = [motion.point_kinematics(t + k * h).position_m for k in (-1, 0, 1)]
    accel_fd = (pos[0] - 2 * pos[1] + pos[2]) / h**2
    k = motion.point_kinematics(t)
    np.testing.assert_allclose(k.accel_m_s2, accel_fd, atol=2e-3)
    _, accel_g = motion.ideal_imu(t)
    specific = accel_fd / G0_MPS2 + np.array([0.0, 0.0, 1.0])
    expected = np.einsum("nji,nj->ni", k.rotation, specific)
    np.testing.assert_allclose(accel_g, expected, atol=1e-4)
    assert np.max(np.abs(accel_fd)) > 1.0  # the test exercises a real lever acceleration


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sim_rig_signals_are_chunking_invariant_bit_for_bit(name: str) -> None:
    scenario = build_scenario(name)
    rng = np.random.default_rng(7)
    t = np.arange(0.0, scenario.duration_s, 1.0 / scenario.imu_rate_hz)[:20000]
    cuts = np.sort(rng.choice(np.arange(1, t.size), size=40, replace=False))
    for placement in scenario.imu_placements:
        signal = scenario.imu_signal(placement)
        whole = signal(t)
        parts = [signal(chunk) for chunk in np.split(t, cuts)]
        assert np.array_equal(whole[0], np.concatenate([p[0] for p in parts]))
        assert np.array_equal(whole[1], np.concatenate([p[1] for p in parts]))
    if scenario.has_load_cell:
        tf = np.arange(0.0, scenario.duration_s, 1.0 / scenario.force_rate_hz)
        force = scenario.force_signal(spikes=[Spike(3.0, 500.0)])
        whole_f = force(tf)
        parts_f = [force(chunk) for chunk in np.array_split(tf, 37)]
        assert np.array_equal(whole_f, np.concatenate(parts_f))


def test_sim_rig_same_seed_same_bits_other_seed_other_noise() -> None:
    t = np.arange(0.0, 5.0, 0.001)
    a = build_scenario("good_morning_tempo", seed=3)
    b = build_scenario("good_morning_tempo", seed=3)
    c = build_scenario("good_morning_tempo", seed=4)
    ga, fa = a.imu_signal("trunk")(t)[0], a.force_signal()(t)
    gb, fb = b.imu_signal("trunk")(t)[0], b.force_signal()(t)
    gc = c.imu_signal("trunk")(t)[0]
    assert np.array_equal(ga, gb) and np.array_equal(fa, fb)
    assert a.truth == b.truth
    assert not np.allclose(ga, gc)


def test_sim_rig_gyro_noise_and_bias_match_the_error_model() -> None:
    errors = ImuErrorModel(gyro_bias_walk_dps_rts=0.0)
    mount = ImuMount(BodyMotion(Constant(0.0)), 1000.0, errors)
    signal = Rig(seed=11, span_s=100.0, imus={"trunk": mount}).imu_signal("trunk")
    gyro, _ = signal(np.arange(0.0, 60.0, 0.001))
    np.testing.assert_allclose(gyro.mean(axis=0), signal.gyro_bias_dps, atol=0.003)
    assert np.std(gyro, axis=0) == pytest.approx([errors.gyro_noise_sd_dps(1000.0)] * 3, rel=0.03)
    # Successive samples are uncorrelated (white at the sample rate).
    centred = gyro[:, 0] - gyro[:, 0].mean()
    assert abs(np.corrcoef(centred[:-1], centred[1:])[0, 1]) < 0.02


def test_sim_rig_gaussian_noise_is_standard_normal_and_time_keyed() -> None:
    t = np.arange(200_000) / 1000.0
    z = gaussian_at(t, 99)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    # The same time computed another way gives the same value (keyed on µs ticks).
    assert np.array_equal(gaussian_at(np.array([0.1 + 0.2]), 99), gaussian_at(np.array([0.3]), 99))
    assert not np.array_equal(gaussian_at(t[:100], 99), gaussian_at(t[:100], 100))


def test_sim_rig_chain_force_is_piecewise_linear_in_height() -> None:
    height = Script(-0.2).move(2.0, 10.0)
    motion = BodyMotion(Constant(0.0), pivot_m=(Constant(), Constant(), height), lever_m=(0, 0, 0))
    chain = Chain(motion, (0.0, 0.0, 0.0), mass_kg_per_m=4.0, length_m=1.5, rigging_n=10.0)
    t = np.linspace(0.0, 10.0, 2001)
    h = height.evaluate(t).value
    expected = 10.0 + 4.0 * G0_MPS2 * np.clip(h, 0.0, 1.5)
    np.testing.assert_allclose(chain.force_n(t), expected, atol=1e-9)


def test_sim_rig_chained_good_morning_loads_most_at_lockout() -> None:
    scenario = build_scenario("chained_good_morning")
    t = np.arange(0.0, scenario.duration_s, 0.01)
    force = scenario.rig.force.force_n(t)
    angle = scenario.primary_angle_deg(t)
    # Standing tall lifts more links off the floor than the bottom of the hinge.
    assert force[np.argmin(angle)] > 150.0 and force[np.argmax(angle)] < 125.0
    # Piecewise linear in height, and the bar height goes with the cosine of the flexion.
    assert np.corrcoef(np.cos(np.radians(angle)), force)[0, 1] > 0.999


def test_sim_rig_bridge_band_follows_the_lateral_shifts() -> None:
    scenario = build_scenario("bridge_pelvic_shifts")
    force = scenario.force_signal(ideal=True)
    settled = np.array([s.end_s + 0.5 for s in scenario.truth.shifts])
    offsets = np.array([s.offset_m for s in scenario.truth.shifts])
    f = force(settled)
    # Anchored on the athlete's right: shifting left stretches the band, right slackens it.
    assert np.all(f[offsets > 0] > f[offsets == 0].max() + 10.0)
    assert np.all(f[offsets < 0] < f[offsets == 0].min() - 10.0)


def test_sim_rig_band_tension_grows_with_stretch() -> None:
    scenario = build_scenario("good_morning_tempo")
    band = scenario.rig.force
    t = np.arange(0.0, scenario.duration_s, 0.01)
    length = band.length_m(t)
    force = band.force_n(t)
    np.testing.assert_allclose(force, 250.0 * np.maximum(length - 0.90, 0.0))
    # Variable resistance: most tension upright, least at the bottom of the hinge.
    angle = scenario.primary_angle_deg(t)
    assert force[np.argmin(angle)] > 140.0 and force[np.argmax(angle)] < 60.0


def test_sim_rig_first_order_lag_equals_the_recursion() -> None:
    x = np.random.default_rng(1).normal(size=3000)
    a, gain = 0.995, 0.3
    expected = np.empty_like(x)
    y = 0.0
    for i, v in enumerate(x):
        y = a * y + (1 - a) * gain * v
        expected[i] = y
    np.testing.assert_allclose(first_order_lag(x, a, gain, block=256), expected, atol=1e-12)


def test_sim_rig_load_cell_creep_and_drift() -> None:
    scenario = build_scenario("repeaters_7_3")
    errors = scenario.rig.load_cell_errors
    force = scenario.force_signal()
    ideal = scenario.force_signal(ideal=True)
    t = np.arange(0.0, scenario.duration_s, 1.0 / 320.0)
    error = force(t) - ideal(t)
    assert np.std(error - force.drift(t) - force._creep(t)) == pytest.approx(
        errors.noise_sd_n, rel=0.05
    )
    creep = force._creep(t)
    # Creep builds up while loaded (rep 1: 5-12 s) and relaxes when unloaded (12-15 s).
    at = force._creep(np.array([5.0, 11.99, 14.99]))
    assert at[1] > at[0] + 0.1 and at[2] < at[1] - 0.01
    assert 0 < creep.max() < errors.creep_fraction * ideal(t).max()


def test_sim_rig_spike_hits_exactly_one_conversion() -> None:
    scenario = build_scenario("isometric_max_pulls")
    spikes = [Spike(2.0001, 800.0), Spike(30.5, -600.0)]
    t = np.arange(0.0, scenario.duration_s, 1.0 / scenario.force_rate_hz)
    with_spikes = scenario.force_signal(spikes=spikes)(t)
    without = scenario.force_signal()(t)
    diff = with_spikes - without
    assert np.count_nonzero(diff) == 2
    assert sorted(diff[diff != 0]) == [-600.0, 800.0]


def test_sim_rig_unknown_placement_and_missing_load_cell() -> None:
    scenario = build_scenario("sorensen_hold")
    with pytest.raises(KeyError, match="placements: trunk"):
        scenario.imu_signal("pelvis")
    assert not scenario.has_load_cell
    with pytest.raises(KeyError, match="no load cell"):
        scenario.force_signal()


@pytest.mark.parametrize("clock", ["index_over_rate", "index_times_period"])
def test_sim_rig_sample_clock_cache_is_exact_and_used(clock: str) -> None:
    scenario = build_scenario("single_leg_deadlift")
    signal = scenario.imu_signal("trunk")
    index = np.arange(0, 12_000)
    t = index / 1000.0 if clock == "index_over_rate" else index * (1.0 / 1000.0)
    rng = np.random.default_rng(3)
    cuts = np.cumsum(rng.integers(1, 40, size=2000))
    cuts = cuts[cuts < t.size]
    served = [signal(chunk) for chunk in np.split(t, cuts)]
    direct = signal.evaluate(t)
    assert np.array_equal(np.concatenate([s[0] for s in served]), direct[0])
    assert np.array_equal(np.concatenate([s[1] for s in served]), direct[1])
    assert signal.cache.hits > 10 * signal.cache.misses
    # Going back in time, repeating a request, skipping samples (a gap) and times off the
    # clock are all answered exactly too.
    for request in (t[100:130], t[100:130], t[5000:5050:7], t[-3:], np.array([1.23456789, 2.5])):
        gyro, accel = signal(request)
        expected = signal.evaluate(request)
        assert np.array_equal(gyro, expected[0]) and np.array_equal(accel, expected[1])


def test_sim_rig_single_sample_force_polls_are_exact() -> None:
    scenario = build_scenario("good_morning_tempo")
    force = scenario.force_signal()
    t = np.arange(0, 3000) / 320.0
    polled = np.concatenate([force(t[i : i + 1]) for i in range(t.size)])
    assert np.array_equal(polled, force.evaluate(t))
    assert force.cache.misses <= 3


@pytest.mark.parametrize("first_k", [0, 7])
def test_sim_rig_cache_follows_an_anchored_chip_clock(first_k: int) -> None:
    # A chip simulator's sample clock: t = anchor + k / rate from its latest wake-up; the
    # clock restarts with a new anchor (reset, rate change). first_k > 0: the first samples
    # were skipped (FIFO overflow), so the anchor cannot be inferred from the first request.
    scenario = build_scenario("good_morning_tempo")
    signal = scenario.imu_signal("trunk")
    served: list[tuple[np.ndarray, np.ndarray]] = []
    requested: list[np.ndarray] = []
    for anchor, rate, count in ((0.0123456789, 1000.0, 3000), (3.0987654321, 500.0, 1500)):
        k = np.arange(first_k, first_k + count, dtype=np.float64)
        t = anchor + k / rate
        for chunk in np.array_split(t, count // 17):
            served.append(signal(chunk))
            requested.append(chunk)
    t_all = np.concatenate(requested)
    direct = signal.evaluate(t_all)
    assert np.array_equal(np.concatenate([s[0] for s in served]), direct[0])
    assert np.array_equal(np.concatenate([s[1] for s in served]), direct[1])
    if first_k == 0:
        assert signal.cache.hits > 10 * signal.cache.misses
