"""The fast paths of the core give bit for bit what the plain numpy formulations gave.

Each C pass or shortcut (force-angle bins, the stabilisation search, the force lookup at IMU
times, batched contraction windows, the all-valid block path of the pipeline) is compared here
with the numpy code it replaced, on random data including edge cases, with exact equality.
"""

from __future__ import annotations

import numpy as np
import pytest
from core_detect_synth import cosine_moves, hinge_set, imu_from_angle
from hypothesis import given, settings
from hypothesis import strategies as st
from spinecoach.core import force as force_mod
from spinecoach.core import metrics
from spinecoach.core._lookup import interp_on_grid, latest_at, latest_on_grid
from spinecoach.core._metrics import add_reduce, bell_fit_profile, mean_of
from spinecoach.core._repfit import abs_vertical_rates, peak_of
from spinecoach.core.pipeline import Pipeline
from spinecoach.core.results import MotionSettings
from spinecoach.drivers.blocks import StreamInfo as Info

RNG_SEEDS = range(40)


def numpy_force_angle_curve(a: np.ndarray, f: np.ndarray, bin_deg: float) -> dict[float, float]:
    ok = np.isfinite(a) & np.isfinite(f)
    a, f = a[ok], f[ok]
    if a.size == 0:
        return {}
    bins = np.floor(a / bin_deg).astype(np.int64)
    lo = int(bins.min())
    sums = np.bincount(bins - lo, weights=f)
    counts = np.bincount(bins - lo)
    used = np.flatnonzero(counts)
    return dict(zip(((lo + used) * bin_deg).tolist(), (sums[used] / counts[used]).tolist()))


def numpy_stabilisation(a: np.ndarray, settled: float, rate: float, band: float, keep_s: float):
    keep = max(1, round(keep_s * rate))
    if a.size < keep:
        return None
    inside = np.concatenate(([0], np.cumsum(np.abs(a - settled) <= band)))
    hit = np.flatnonzero((inside[keep:] - inside[:-keep]) == keep)
    return None if hit.size == 0 else float(hit[0] / rate)


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_force_angle_bins_and_stabilisation_equal_the_numpy_forms(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 300))
    a = rng.normal(0.0, 30.0, n) * rng.choice([1e-3, 1.0, 10.0])
    f = rng.normal(100.0, 50.0, n)
    if n and seed % 3 == 0:
        a[rng.integers(0, n, 3)] = np.nan
        f[rng.integers(0, n, 2)] = np.inf
    bin_deg = float(rng.choice([0.5, 2.0, 3.7]))
    got = metrics.force_angle_curve(a, f, bin_deg)
    assert list(got.items()) == list(numpy_force_angle_curve(a, f, bin_deg).items())
    walk = np.cumsum(rng.normal(0.0, 0.3, n))
    settled, rate = float(rng.normal()), float(rng.choice([25.0, 100.0, 1000.0]))
    assert metrics.stabilisation_time_s(walk, 0, settled, rate) == numpy_stabilisation(
        walk, settled, rate, metrics.STABILISATION_BAND_DEG, metrics.STABILISATION_KEEP_S)


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_mean_curve_equals_np_mean_per_bin(seed):
    rng = np.random.default_rng(seed)
    curves = [{2.0 * k: float(v) for k, v in zip(rng.choice(20, 12, replace=False), rng.normal(100, 30, 12))}
              for _ in range(int(rng.integers(1, 15 if seed % 2 else 300)))]
    acc: dict[float, list[float]] = {}
    for c in curves:
        for k, v in c.items():
            acc.setdefault(k, []).append(v)
    want = {k: float(np.mean(v)) for k, v in sorted(acc.items())}
    assert list(metrics.mean_curve(curves).items()) == list(want.items())


def lookup_case(rng: np.random.Generator) -> tuple[float, float, int, int, np.ndarray]:
    """A force stream for the lookups: rate, t0, index0, first kept sample, kept values."""
    rate, t0, index0 = float(rng.choice([80.0, 320.0, 1000.0])), float(rng.uniform(-1, 1)), int(rng.integers(0, 50))
    return rate, t0, index0, int(rng.integers(0, 100)), rng.normal(size=int(rng.integers(1, 200)))


def test_add_reduce_is_numpys_sum_bit_for_bit():
    rng = np.random.default_rng(3)
    for n in [*range(300), 511, 512, 513, 1000, 4099]:
        a = rng.normal(size=n) * 10.0 ** rng.uniform(-8, 8, n)
        assert add_reduce(a) == np.add.reduce(a)
    for n in (1, 3, 9):
        assert repr(add_reduce(np.full(n, -0.0))) == repr(float(np.add.reduce(np.full(n, -0.0))))


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_latest_at_equals_the_numpy_lookup(seed):
    rng = np.random.default_rng(seed)
    rate, t0, index0, first, values = lookup_case(rng)
    # IMU-like sample times around and beyond the force samples, including exact sample instants
    t = t0 + (index0 + rng.integers(-20, 400) + np.arange(int(rng.integers(0, 300))) * rate / 1000.0) / rate
    n = np.floor((t - t0) * rate + 1e-9).astype(np.int64) - index0
    want = values[np.clip(n - first, 0, len(values) - 1)].copy()
    want[n < 0] = np.nan
    got = np.empty(len(t))
    latest_at(t, t0, rate, index0, values, first, got)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_latest_on_grid_equals_latest_at_on_numpy_times(seed):
    rng = np.random.default_rng(seed)
    rate, t0, index0, first, values = lookup_case(rng)
    grid_rate = float(rng.choice([25.0, 100.0, 1000.0, 1666.0]))
    t_first = t0 + float(rng.uniform(-0.5, 2.0))
    n = int(rng.integers(0, 3000))
    want = np.empty(n)
    latest_at(t_first + np.arange(n) / grid_rate, t0, rate, index0, values, first, want)
    got = np.empty(n)
    latest_on_grid(t_first, grid_rate, t0, rate, index0, values, first, got)
    np.testing.assert_array_equal(got, want)


def numpy_interp(t_s, f, at_s):
    if at_s < t_s[0] - 1e-12 or at_s > t_s[-1] + 1e-12:
        return None
    return float(np.interp(at_s, t_s, f))


def numpy_impulse(t_s, f, t_from, t_to):
    if t_to > t_s[-1] + 1e-12 or t_from < t_s[0] - 1e-12:
        return None
    inside = (t_s > t_from) & (t_s < t_to)
    tt = np.concatenate(([t_from], t_s[inside], [t_to]))
    ff = np.concatenate(([np.interp(t_from, t_s, f)], f[inside], [np.interp(t_to, t_s, f)]))
    return float(np.sum(0.5 * (ff[1:] + ff[:-1]) * np.diff(tt)))


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_batched_contraction_windows_equal_point_by_point(seed):
    rng = np.random.default_rng(seed)
    rate = float(rng.choice([80.0, 320.0, 1000.0]))
    t = (int(rng.integers(0, 1000)) + np.arange(int(rng.integers(2, 400)), dtype=np.float64)) / rate
    f = np.cumsum(rng.normal(0.0, 5.0, len(t)))
    at = list(rng.uniform(t[0] - 0.05, t[-1] + 0.05, 6)) + [float(t[0]), float(t[-1])]
    assert force_mod._interp_at(t, f, at) == [numpy_interp(t, f, a) for a in at]
    for a, b in zip(at, at[1:] + at[:1]):
        fa, fb = np.interp([a, b], t, f).tolist()
        assert force_mod._impulse(t, f, a, b, fa, fb) == numpy_impulse(t, f, a, b)


def _session(rate=200.0, force_rate=80.0):
    t, angle, omega, _ = cosine_moves(hinge_set(3), rate)
    gyro, accel = imu_from_angle(angle, omega)
    tf = np.arange(int(t[-1] * force_rate)) / force_rate
    return gyro, accel, 150.0 + 5.0 * np.interp(tf, t, angle)


@pytest.mark.parametrize("block", [1, 7, 64])
def test_all_valid_blocks_give_what_flagged_blocks_give(block):
    """valid=None takes the shortcut (no gap filling, masks or validity queue); an explicit
    all-True ``valid`` takes the general path: events and results must not differ."""
    gyro, accel, force = _session()
    outs = []
    for flags in (False, True):
        p = Pipeline([Info("trunk", "imu", 200.0), Info("force", "force", 80.0)],
                     MotionSettings(primary_axis=(0.0, 1.0, 0.0), eccentric_sign=1, hold_target_deg=40.0))
        events, j = [], 0
        for i in range(0, len(gyro), block):
            sl = slice(i, i + block)
            idx = np.arange(len(gyro))[sl]
            events += p.feed_imu("trunk", idx, gyro[sl], accel[sl], np.ones(len(idx), bool) if flags else None)
            k = min(len(force), (i + block) * 80 // 200)
            if k > j:
                fidx = np.arange(j, k)
                events += p.feed_force("force", fidx, force[j:k], np.ones(k - j, bool) if flags else None)
                j = k
        outs.append((repr(events), repr(p.finish())))
    assert outs[0] == outs[1]


def numpy_arc_length(freq_hz: np.ndarray, mag: np.ndarray, amplitude_threshold: float) -> float:
    """SPARC's arc length (negated) of the normalised magnitude up to the last bin at or above
    the threshold, in numpy array operations."""
    above = np.flatnonzero(mag >= amplitude_threshold)
    last = int(above[-1]) if above.size else 0
    f_sel, m_sel = freq_hz[: last + 1], mag[: last + 1]
    if f_sel.size < 2:
        return 0.0
    df = np.diff(f_sel) / (f_sel[-1] - f_sel[0])
    dm = np.diff(m_sel)
    return float(-np.sum(np.sqrt(df * df + dm * dm)))


def numpy_sparc(v: np.ndarray, rate: float, s: metrics.SparcSettings) -> float:
    """SPARC with the magnitude, the cut-off mask and the arc length over the whole spectrum."""
    n_fft = int(2 ** (np.ceil(np.log2(v.size)) + s.pad_level))
    mag = np.abs(np.fft.rfft(v, n_fft))
    freq = np.arange(mag.size) * rate / n_fft
    mag = mag / mag[0]
    sel = freq <= s.fc_max_hz
    return numpy_arc_length(freq[sel], mag[sel], s.amplitude_threshold)


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_sparc_on_the_spectrum_prefix_equals_the_full_spectrum_form(seed):
    rng = np.random.default_rng(seed)
    speed = np.abs(np.cumsum(rng.normal(0.0, 1.0, int(rng.integers(2, 600))))) + rng.uniform(0.1, 5.0)
    rate = float(rng.choice([25.0, 100.0, 333.3, 1000.0]))
    settings = metrics.SparcSettings(fc_max_hz=float(rng.choice([0.0, 3.3, 10.0, 1e6])))
    assert metrics.sparc(speed, rate, settings) == numpy_sparc(speed, rate, settings)


def test_sparc_equals_the_numpy_form_over_many_profiles_and_thresholds():
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(2, 400))
        speed = np.abs(np.cumsum(rng.normal(0.0, 1.0, n))) + rng.uniform(0.01, 5.0)
        rate = float(rng.choice([25.0, 100.0, 200.0, 333.3, 1000.0]))
        settings = metrics.SparcSettings(fc_max_hz=float(rng.choice([0.0, 0.5, 10.0, 40.0, 1e6])),
                                         amplitude_threshold=float(rng.choice([0.0, 0.05, 0.5, 2.0])))
        assert metrics.sparc(speed, rate, settings) == numpy_sparc(speed, rate, settings)


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_peak_of_kept_vertical_rates_equals_the_rotation_speed(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 500))
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    gyro = rng.normal(0.0, 200.0, (n, 3))
    if seed % 4 == 0:
        gyro[rng.integers(0, n, 2)] = np.nan
    rates = np.empty(n)
    abs_vertical_rates(q, gyro, rates)
    split = int(rng.integers(0, n))  # a rep's span is any slice of the kept rates
    assert peak_of(rates[split:]) == metrics.rotation_speed_dps(q[split:], gyro[split:])


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_bell_fit_profile_equals_the_numpy_chain(seed):
    rng = np.random.default_rng(seed)
    q = int(rng.choice([1, 3, 8, 10, 17, 40]))
    rate_dps = rng.normal(0.0, 50.0, q * int(rng.integers(0, 80)))
    rate_dps[rng.random(rate_dps.size) < 0.1] = 0.0
    direction, t_first, rate = int(rng.choice([-1, 1])), float(rng.uniform(-5, 50)), float(rng.choice([100.0, 1000.0]))
    speed = np.clip(rate_dps * direction, 0.0, None).reshape(-1, q).mean(axis=1)
    t = t_first + (np.arange(len(speed)) * q + 0.5 * (q - 1)) / rate
    got_t, got_speed = np.empty(len(speed)), np.empty(len(speed))
    total = bell_fit_profile(rate_dps, float(direction), q, t_first, rate, got_t, got_speed)
    np.testing.assert_array_equal(got_speed, speed)
    np.testing.assert_array_equal(got_t, t)
    assert total == float(np.sum(speed))


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_interp_on_grid_equals_np_interp(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n = int(rng.integers(1, 300))
        t_first, rate = float(rng.uniform(-10, 100)), float(rng.choice([25.0, 100.0, 333.3, 1000.0, 1666.0]))
        values = rng.normal(size=n)
        if seed % 5 == 0:
            values[rng.integers(0, n, 3)] = rng.choice([np.nan, np.inf, -np.inf])
        grid = t_first + np.arange(n) / rate
        x = np.concatenate([rng.uniform(grid[0] - 0.1, grid[-1] + 0.1, 50), grid[rng.integers(0, n, 10)], [np.nan]])
        got = np.empty(len(x))
        interp_on_grid(x, t_first, rate, values, got)
        np.testing.assert_array_equal(got, np.interp(x, grid, values))


def test_mean_of_is_the_ndarray_mean_bit_for_bit():
    rng = np.random.default_rng(11)
    for n in [*range(1, 300), 1000, 4097]:
        a = rng.normal(100.0, 50.0, n) * 10.0 ** rng.uniform(-6, 6)
        assert mean_of(a) == a.mean()
    assert np.isnan(mean_of(np.zeros(0)))
