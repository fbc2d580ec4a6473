"""Force contraction detector: analytic signals, real jumps, streaming equals batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from core_detect_synth import feed_in_blocks
from hypothesis import given
from hypothesis import strategies as st
from spinecoach.core.force import ContractionDetector, ForceSettings, detect_contractions

JUMPS = Path("/work/shared/realdata/jumps-fz")


def exp_rise(rate_hz: float, base_n: float = 200.0, amp_n: float = 800.0, tau_s: float = 0.08,
             t_rise_s: float = 4.0, hold_s: float = 2.0, total_s: float = 8.0, noise_n: float = 0.0,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Baseline, then F = base + amp (1 - exp(-(t - t_rise)/tau)) for hold_s, then back down."""
    t = np.arange(int(total_s * rate_hz)) / rate_hz
    f = np.full_like(t, base_n)
    on = (t >= t_rise_s) & (t < t_rise_s + hold_s)
    f[on] = base_n + amp_n * (1 - np.exp(-(t[on] - t_rise_s) / tau_s))
    if noise_n:
        f += np.random.default_rng(seed).normal(0, noise_n, f.shape)
    return t, f


def analytic_force(t: float, base_n: float = 200.0, amp_n: float = 800.0, tau_s: float = 0.08,
                   t_rise_s: float = 4.0) -> float:
    return base_n + amp_n * (1 - np.exp(-(t - t_rise_s) / tau_s)) if t >= t_rise_s else base_n


def _exp_rise_integral(t: float, amp_n: float = 800.0, tau_s: float = 0.08) -> float:
    """Primitive of amp (1 - exp(-(t - 4)/tau)) (the net force of exp_rise), N·s."""
    return amp_n * ((t - 4.0) + tau_s * np.exp(-(t - 4.0) / tau_s))


@pytest.mark.parametrize("rate_hz", [80.0, 320.0, 1000.0])
def test_rfd_impulse_and_force_at_match_analytic_within_2_percent(rate_hz):
    _, f = exp_rise(rate_hz)
    (c,) = detect_contractions(f, rate_hz)
    # Onset: the first sample above baseline + 20 N (SD is 0 here, so the floor applies).
    t_cross = 4.0 - 0.08 * np.log(1 - 20.0 / 800.0)
    # the crossing, interpolated between the samples either side of it
    assert abs(c.onset_s - t_cross) < 0.02 / rate_hz
    assert c.rate_hz == rate_hz
    t_on = c.onset_s
    f_on = analytic_force(t_on)
    for ms in (100, 150, 200):
        w = ms / 1000.0
        expected = (analytic_force(t_on + w) - f_on) / w
        assert c.rfd_n_per_s[f"0-{ms}"] == pytest.approx(expected, rel=0.02)
    for ms in (100, 200, 300):
        w = ms / 1000.0
        # integral of amp (1 - exp(-(t - 4)/tau)) from t_on to t_on + w
        expected = _exp_rise_integral(t_on + w) - _exp_rise_integral(t_on)
        assert c.impulse_n_s[f"0-{ms}"] == pytest.approx(expected, rel=0.02)
    # Peak RFD: the steepest 20 ms right after onset, slope ~ amp/tau * exp(-(t_on-4)/tau)
    slope0 = 800.0 / 0.08 * np.exp(-(t_on - 4.0) / 0.08)
    w = 0.02
    expected_peak = (analytic_force(t_on + w) - analytic_force(t_on)) / w
    assert c.peak_rfd_n_per_s == pytest.approx(expected_peak, rel=0.02)
    assert c.peak_rfd_n_per_s < slope0
    assert c.peak_force_n == pytest.approx(1000.0, rel=1e-3)
    assert c.baseline_n == pytest.approx(200.0)
    assert not c.pretensioned
    # End: the first sample back below baseline + floor.
    assert c.end_s == pytest.approx(6.0, abs=1.0 / rate_hz + 1e-9)


def test_linear_ramp_rfd_exact():
    rate = 1000.0
    t = np.arange(6000) / rate
    f = np.where(t < 3.0, 100.0, 100.0 + 5000.0 * (t - 3.0))
    f = np.minimum(f, 1500.0)
    f[t > 4.5] = 100.0
    (c,) = detect_contractions(f, rate)
    for ms in (50, 100, 150, 200):
        assert c.rfd_n_per_s[f"0-{ms}"] == pytest.approx(5000.0, rel=1e-9)
    assert c.peak_rfd_n_per_s == pytest.approx(5000.0, rel=1e-9)
    assert c.force_at_n["100"] == pytest.approx(c.force_at_n["50"] + 250.0, rel=1e-9)
    # impulse 0-100 ms of a ramp from (F_on - base) = 20+: trapezoid exact on a line
    f_on = c.force_at_n["50"] - 250.0
    assert c.impulse_n_s["0-100"] == pytest.approx((f_on - 100.0) * 0.1 + 0.5 * 500.0 * 0.1)


def test_wandering_baseline_does_not_move_onset_early():
    rate = 500.0
    t = np.arange(int(10 * rate)) / rate
    f = 300.0 + 2.0 * np.sin(2 * np.pi * 0.3 * t)  # slow drift, well inside the threshold
    f += np.random.default_rng(1).normal(0, 1.0, t.shape)
    # a small bump that crosses the threshold, dips back, then the real rise
    f[(t >= 5.0) & (t < 5.05)] += 30.0
    rise = t >= 5.2
    f[rise & (t < 7)] += 600.0 * (1 - np.exp(-(t[rise & (t < 7)] - 5.2) / 0.05))
    cons = detect_contractions(f, rate)
    assert len(cons) == 1
    assert cons[0].onset_s == pytest.approx(5.2, abs=0.01)


def test_small_drift_is_not_a_contraction():
    rate = 100.0
    t = np.arange(2000) / rate
    f = 50.0 + np.where(t > 10, 25.0, 0.0)  # a step of 25 N < 2 x 20 N margin
    assert detect_contractions(f, rate) == []


def test_invalid_samples_are_held_and_counted():
    rate = 1000.0
    _, f = exp_rise(rate)
    valid = np.ones(f.shape, bool)
    valid[4500:4510] = False
    f_bad = f.copy()
    f_bad[4500:4510] = 1e9  # saturated codes
    (c,) = detect_contractions(f_bad, rate, valid=valid)
    assert c.invalid_samples == 10
    assert c.peak_force_n < 1001.0


def test_pretension_flag_on_countermovement():
    rate = 1000.0
    t = np.arange(8000) / rate
    f = np.full_like(t, 700.0)
    dip = (t >= 3.8) & (t < 4.0)
    f[dip] = 700.0 - 300.0 * np.sin(np.pi * (t[dip] - 3.8) / 0.2)
    up = (t >= 4.0) & (t < 5.0)
    f[up] = 700.0 + 900.0 * np.sin(np.pi * (t[up] - 4.0) / 1.0) ** 0.5
    (c,) = detect_contractions(f, rate)
    assert c.pretensioned


def test_rates_scale_windows():
    for rate in (25.0, 80.0, 1000.0):
        _, f = exp_rise(rate, tau_s=0.2, noise_n=1.0)
        (c,) = detect_contractions(f, rate)
        assert c.onset_s == pytest.approx(4.0, abs=max(0.03, 2.0 / rate))
        assert c.rate_hz == rate


def _hand_baseline(f: np.ndarray, rise: int, rate: float) -> tuple[float, float]:
    """Lowest-SD 1 s window in the 3 s before ``rise`` (independent of the kernel)."""
    w, r = int(rate), int(3 * rate)
    best = None
    for s in range(max(0, rise - r), rise - w + 1):
        seg = f[s : s + w]
        if best is None or seg.std() < best[1]:
            best = (seg.mean(), seg.std())
    return best


@pytest.mark.parametrize("name", ["single-cmj.csv", "single-sj.csv", "single-dj.csv"])
def test_jumps_onset_peak_impulse_hand_checked(name):
    d = np.loadtxt(JUMPS / name, delimiter=",", skiprows=1)
    f = d[:, 1]
    rate = 1000.0
    cons = detect_contractions(f, rate)
    first = cons[0]
    # Hand check of the first effort: baseline, threshold, onset, peak.
    trig = int(np.argmax(f > (f[:1500].mean() + 20.0)))  # first sample clearly above quiet stance
    mean, sd = _hand_baseline(f, trig, rate)
    thr = mean + max(5 * sd, 20.0)
    assert first.baseline_n == pytest.approx(mean, abs=1e-6)
    # takeoff: first sample (after the effort starts) where the plate is unloaded
    big = trig + int(np.argmax(f[trig:] > mean + 500.0))
    takeoff = big + int(np.argmax(f[big:] < 20.0))
    peak = f[trig:takeoff].max()
    assert first.peak_force_n == pytest.approx(peak)
    half = mean + 0.5 * (peak - mean)
    rise = trig + int(np.argmax(f[trig:] >= half))
    onset = rise
    while f[onset - 1] > thr:
        onset -= 1
    # the onset sample's crossing, interpolated from the sample before it
    assert onset / rate - 1 / rate <= first.onset_s <= onset / rate
    f0, f1 = f[onset - 1], f[onset]
    assert first.onset_s == pytest.approx((onset - 1 + (thr - f0) / (f1 - f0)) / rate)
    # Impulse over the contraction, by hand (trapezoid of f - baseline from onset to end).
    end = round(first.end_s * rate)
    g = f[onset : end + 1] - mean
    # (from the onset sample; the kernel starts at the interpolated crossing just before it,
    # a sliver of < 1 ms at ~threshold force)
    assert first.impulse_n_s["contraction"] == pytest.approx(np.trapezoid(g, dx=1 / rate), rel=1e-3)
    if name == "single-dj.csv":
        assert mean < 5.0  # the drop jump starts from an empty plate
    else:
        assert 600 < mean < 700  # body weight
    if name == "single-sj.csv":
        # Squat jump: the net impulse from our onset to takeoff (over our baseline = body
        # weight) equals body mass x takeoff velocity from the flight time.
        land = takeoff + int(np.argmax(f[takeoff:] > 20.0))
        v = 9.80665 * (land - takeoff) / rate / 2
        net = np.trapezoid(f[onset : takeoff + 1] - first.baseline_n, dx=1 / rate)
        assert net == pytest.approx(first.baseline_n / 9.80665 * v, rel=0.05)
        # the contraction ends when force falls back under baseline + 20 N, before takeoff
        assert onset / rate < first.end_s < takeoff / rate
        assert not first.pretensioned
    if name == "single-cmj.csv":
        assert first.pretensioned  # the unweighting dip before the push


@given(st.lists(st.integers(1, 700), min_size=1, max_size=40))
def test_streaming_equals_batch(sizes):
    rate = 320.0
    _, f = exp_rise(rate, noise_n=2.0, total_s=12.0)
    f[int(9 * rate) : int(10 * rate)] += 400.0
    valid = np.ones(f.shape, bool)
    valid[100:103] = False
    det = ContractionDetector(rate)
    batch = det.update(f, valid) + det.finish()
    det2 = ContractionDetector(rate)
    streamed = feed_in_blocks(det2.update, sizes, f, valid) + det2.finish()
    assert streamed == batch
    assert len([e for e in batch if e.kind == "contraction"]) == 2


def test_copy_is_independent():
    rate = 100.0
    _, f = exp_rise(rate)
    det = ContractionDetector(rate)
    det.update(f[:410])
    snap = det.copy()
    a = det.update(f[410:]) + det.finish()
    b = snap.update(f[410:]) + snap.finish()
    assert a == b and len(a) >= 1


def test_bad_input_rejected():
    with pytest.raises(ValueError):
        ContractionDetector(0.0)
    with pytest.raises(ValueError):
        ContractionDetector(100.0).update(np.zeros((3, 2)))
    with pytest.raises(ValueError):
        ContractionDetector(100.0).update(np.zeros(3), np.ones(4, bool))
    assert ForceSettings().samples(0.02, 25.0) == 1
