"""Per-rep kernels (spinecoach.core._repfit) against closed forms and the numpy definitions."""

from __future__ import annotations

import numpy as np
import pytest
from spinecoach.core import metrics
from spinecoach.core._repfit import axis_tilt_rms, fit_bell, peak_vertical_rate
from spinecoach.core.angles import up_in_sensor


def _min_jerk_speed(t: np.ndarray, t0: float, dur: float, delta: float) -> np.ndarray:
    u = (t - t0) / dur
    return np.where((u > 0) & (u < 1), delta / dur * 30 * u * u * (1 - u) ** 2, 0.0)


@pytest.mark.parametrize(("t0", "dur"), [(1.0, 2.0), (0.73, 1.21)])
def test_bell_fit_recovers_a_minimum_jerk_movement(t0, dur):
    t = np.arange(0.0, 4.0, 0.01)
    v = _min_jerk_speed(t, t0, dur, 60.0)
    # started from deliberately late threshold-like bounds
    fit = fit_bell(t, v, 60.0, t0 + 0.15, dur - 0.3, 0)
    assert fit is not None
    assert fit[0] == pytest.approx(t0, abs=1e-4)
    assert fit[1] == pytest.approx(dur, abs=1e-4)
    assert fit[2] == pytest.approx(0.0, abs=1e-6) and fit[3] == 60.0
    got = metrics.fit_movement_bounds(t, v, 60.0, t0 + 0.15, t0 + dur - 0.15)
    assert got is not None and got[3] == "min_jerk"
    assert got[0] == pytest.approx(t0, abs=1e-4) and got[1] == pytest.approx(t0 + dur, abs=1e-4)


@pytest.mark.parametrize("noise_dps", [0.0, 0.5])
def test_a_half_cosine_movement_gets_the_cosine_bell(noise_dps):
    t = np.arange(0.0, 4.0, 0.01)
    t0, dur = 0.9, 2.2
    u = (t - t0) / dur
    v = np.where((u > 0) & (u < 1), 60.0 / dur * np.pi / 2 * np.sin(np.pi * u), 0.0)
    v += np.random.default_rng(2).normal(0.0, noise_dps, t.size)
    got = metrics.fit_movement_bounds(t, v, 60.0, t0 + 0.15, t0 + dur - 0.15)
    assert got is not None and got[3] == "cosine"
    assert got[0] == pytest.approx(t0, abs=0.01) and got[1] == pytest.approx(t0 + dur, abs=0.01)


def test_a_cosine_bell_that_fits_only_a_little_better_does_not_replace_minimum_jerk():
    # A minimum-jerk movement under a slow wobble that suits the narrower cosine bell: the
    # cosine's error is a little below minimum jerk's, not a third of it.
    t = np.arange(0.0, 7.0, 0.01)
    t0, dur = 1.5, 4.0
    v = _min_jerk_speed(t, t0, dur, 40.0)
    wobble = -0.8 * np.where((t > t0) & (t < t0 + dur), np.sin(np.pi * (t - t0) / dur) ** 8, 0.0)
    v = v + 4.0 * wobble
    fits = {kind: fit_bell(t, v, 40.0, t0 + 0.4, dur - 0.8, kind, free_amplitude=True)
            for kind in (0, 1)}
    assert fits[0] is not None and fits[1] is not None
    assert metrics.BELL_COSINE_SSE_SHARE < fits[1][2] / fits[0][2] < 1.0
    got = metrics.fit_movement_bounds(t, v, 40.0, t0 + 0.4, t0 + dur - 0.4)
    assert got is not None and got[3] == "min_jerk"
    assert got[0] == pytest.approx(fits[0][0]) and got[1] == pytest.approx(fits[0][0] + fits[0][1])


def test_bell_fit_refuses_noise():
    rng = np.random.default_rng(1)
    t = np.arange(0.0, 4.0, 0.01)
    assert metrics.fit_movement_bounds(t, rng.normal(0, 5, t.size), 60.0, 1.0, 3.0) is None


def _random_quats(n: int, seed: int) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True))


def test_peak_vertical_rate_equals_the_numpy_definition():
    q = _random_quats(500, 2)
    g = np.random.default_rng(3).normal(0, 100, (500, 3))
    assert peak_vertical_rate(q, g) == pytest.approx(
        float(np.max(np.abs(metrics.vertical_rate_dps(q, g)))), rel=1e-12)


def test_axis_tilt_rms_equals_the_numpy_definition():
    q = _random_quats(700, 4)
    axis = np.array([0.2, 0.9, -0.1])
    axis /= np.linalg.norm(axis)
    tilt = np.degrees(np.arcsin(np.clip(up_in_sensor(q) @ axis, -1, 1)))
    assert axis_tilt_rms(q, *axis) == pytest.approx(metrics.sway_rms_deg(tilt), rel=1e-9)
