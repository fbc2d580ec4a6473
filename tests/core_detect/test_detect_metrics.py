"""Per-rep and per-set figures against analytic answers."""

from __future__ import annotations

import numpy as np
import pytest
from spinecoach.core import metrics as m


def min_jerk_speed(duration_s: float, rate: float, amp: float = 1.0) -> np.ndarray:
    u = np.arange(int(duration_s * rate) + 1) / (duration_s * rate)
    return amp * 30 * u**2 * (1 - u) ** 2


def test_sparc_is_dimensionless_and_ranks_smoothness():
    rate = 200.0
    smooth = m.sparc(min_jerk_speed(1.0, rate), rate)
    assert m.sparc(min_jerk_speed(1.0, rate, amp=7.0), rate) == pytest.approx(smooth, rel=1e-9)
    assert m.sparc(min_jerk_speed(2.0, rate), rate) == pytest.approx(smooth, abs=0.05)
    # two overlapping sub-movements are less smooth, four even less
    two = min_jerk_speed(1.0, rate)
    two = np.concatenate([two, np.zeros(100)])
    two[100:] += min_jerk_speed(1.0, rate)[: two.size - 100]
    jerky = m.sparc(two, rate)
    four = np.sin(np.linspace(0, np.pi, 400)) * (1.2 + np.cos(np.linspace(0, 8 * np.pi, 400)))
    assert smooth < 0 and jerky < smooth and m.sparc(four, rate) < jerky
    # the published value for a minimum-jerk profile is about -1.6
    assert -1.8 < smooth < -1.4
    with pytest.raises(ValueError):
        m.sparc(np.zeros(10), rate)


def test_force_angle_curve_and_stiffness_analytic():
    angle = np.linspace(10.0, 70.0, 6001)  # concentric sweep
    k, f0 = 4.5, 120.0  # band: N per degree
    force = f0 + k * angle
    curve = m.force_angle_curve(angle, force)
    assert next(iter(curve)) == 10.0 and list(curve)[-1] == 70.0
    for lo, f in curve.items():
        if lo < 70.0:
            assert f == pytest.approx(f0 + k * (lo + 1.0), rel=0.02)
    assert m.band_stiffness_n_per_deg({a: f for a, f in curve.items() if a < 70}) == pytest.approx(k, rel=1e-3)
    assert m.band_stiffness_n_per_deg({10.0: 1.0}) is None
    weaker = {a: f - (30.0 if a == 40.0 else 0.0) for a, f in curve.items()}
    set_curve = m.mean_curve([curve, weaker])
    assert set_curve[40.0] == pytest.approx(curve[40.0] - 15.0)
    assert m.sticking_region(weaker, set_curve) == [40.0, 42.0, pytest.approx(-15.0)]
    assert m.curve_to_json({0.0: 1.0}) == [[0.0, 1.0]]


def test_velocity_loss_and_stop_rules():
    speeds = [100.0, 110.0, 99.0, 88.0, 60.0]
    loss = m.velocity_loss_pct(speeds)
    assert loss == pytest.approx([0.0, 0.0, 10.0, 20.0, 100 * 50 / 110])
    assert m.velocity_loss_stops(loss) == {"10": 3, "20": 4, "40": 5}
    assert m.velocity_loss_stops([0.0, 5.0]) == {"10": None, "20": None, "40": None}


def test_fatigue_index_and_critical_force():
    peaks = [500.0, 520.0, 480.0, 400.0]
    assert m.fatigue_index_pct(peaks) == pytest.approx(20.0)
    assert m.fatigue_index_pct(peaks, skip_first=1) == pytest.approx(100 * 120 / 520)
    assert m.fatigue_index_pct([1.0]) is None
    means = [400.0, 380.0, 360.0] + [300.0] * 6
    cf, w = m.critical_force(means, 7.0)
    assert cf == pytest.approx(300.0)
    assert w == pytest.approx((100 + 80 + 60) * 7.0)  # no duty-cycle scaling
    assert m.critical_force(means[:5], 7.0) is None


def test_sorensen_hold_time_and_cap():
    rate = 50.0
    t = np.arange(int(300 * rate)) / rate
    angle = np.where(t < 5.0, 60.0, 90.0)
    angle = np.where(t >= 100.0, 97.0, angle)  # dropped 7° below horizontal
    assert m.sorensen_hold_time_s(angle, rate) == pytest.approx(95.0, abs=1 / rate)
    # a 0.1 s dip is debounced
    angle2 = angle.copy()
    angle2[(t >= 50) & (t < 50.1)] = 99.0
    assert m.sorensen_hold_time_s(angle2, rate) == pytest.approx(95.0, abs=1 / rate)
    assert m.sorensen_hold_time_s(np.full(t.shape, 90.0), rate) == 240.0
    assert m.sorensen_hold_time_s(np.full(10, 10.0), rate) == 0.0
    # the other drop direction
    assert m.sorensen_hold_time_s(180.0 - angle, rate, drop_sign=-1) == pytest.approx(95.0, abs=1 / rate)


def test_stabilisation_overshoot_sway_rotation():
    rate = 100.0
    t = np.arange(300) / rate
    # settles at 40° with a decaying overshoot
    angle = 40.0 - 40.0 * np.exp(-t / 0.2) * np.cos(2 * np.pi * t)
    st = m.stabilisation_time_s(angle, 0, 40.0, rate)
    inside = np.abs(angle - 40.0) <= 2.0
    first = next(i for i in range(len(angle) - 10) if inside[i : i + 10].all())
    assert st == pytest.approx(first / rate)
    assert m.stabilisation_time_s(angle, 0, 80.0, rate) is None
    assert m.overshoot_deg(angle, 40.0, 1) == pytest.approx(np.max(angle) - 40.0)
    assert m.overshoot_deg([1.0, 2.0], 5.0, 1) == 0.0
    assert m.sway_rms_deg(3.0 + 2.0 * np.sin(np.linspace(0, 20 * np.pi, 10001))) == pytest.approx(
        np.sqrt(2.0), rel=1e-3)
    # sensor rotated 90° about y (x pointing down); turning about earth z shows on sensor -x
    q = np.tile([np.cos(np.pi / 4), 0.0, np.sin(np.pi / 4), 0.0], (5, 1))
    gyro = np.tile([-150.0, 0.0, 0.0], (5, 1))
    assert m.rotation_speed_dps(q, gyro) == pytest.approx(150.0)
    assert m.vertical_rate_dps(q, gyro) == pytest.approx(np.full(5, 150.0))
