"""Butterworth design and streaming low-pass, Hampel spike rejection."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from spinecoach.core.filters import (
    HampelFilter,
    HampelSettings,
    LowPassFilter,
    LowPassSettings,
    butterworth_lowpass_sos,
    sos_magnitude,
    sos_steady_state,
    sosfilt,
)


def analytic_magnitude(freq_hz: np.ndarray, cutoff_hz: float, rate_hz: float, order: int) -> np.ndarray:
    """|H| of the bilinear-transformed Butterworth: 1/√(1 + (tan(πf/fs)/tan(πfc/fs))^(2N))."""
    ratio = np.tan(np.pi * freq_hz / rate_hz) / np.tan(np.pi * cutoff_hz / rate_hz)
    return 1.0 / np.sqrt(1.0 + ratio ** (2 * order))


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_designed_response_matches_analytic_butterworth(order: int) -> None:
    rate_hz, cutoff_hz = 1000.0, 40.0
    sos = butterworth_lowpass_sos(order, cutoff_hz, rate_hz)
    assert sos.shape == ((order + 1) // 2, 6)
    freqs = np.array([0.0, 5.0, 20.0, 40.0, 80.0, 200.0, 450.0])
    np.testing.assert_allclose(
        sos_magnitude(sos, freqs, rate_hz), analytic_magnitude(freqs, cutoff_hz, rate_hz, order), rtol=1e-9, atol=1e-12
    )
    assert sos_magnitude(sos, [cutoff_hz], rate_hz)[0] == pytest.approx(1 / math.sqrt(2), rel=1e-9)


@pytest.mark.parametrize("freq_hz", [2.0, 10.0, 25.0, 60.0])
def test_kernel_attenuates_sines_as_designed(freq_hz: float) -> None:
    rate_hz, cutoff_hz, order = 500.0, 10.0, 4
    lp = LowPassFilter(rate_hz, LowPassSettings(cutoff_hz, order))
    t = np.arange(int(20 * rate_hz)) / rate_hz
    y = lp.update(np.sin(2 * np.pi * freq_hz * t))
    settled = y[int(10 * rate_hz):]
    amplitude = math.sqrt(2.0 * np.mean(settled**2))
    expected = analytic_magnitude(np.array([freq_hz]), cutoff_hz, rate_hz, order)[0]
    assert amplitude == pytest.approx(expected, rel=2e-3, abs=1e-6)


def test_steady_state_start_has_no_transient() -> None:
    lp = LowPassFilter(320.0, LowPassSettings(20.0, 4))
    y = lp.update(np.full(200, 735.5))
    np.testing.assert_allclose(y, 735.5, rtol=1e-12)
    zi = sos_steady_state(butterworth_lowpass_sos(3, 5.0, 100.0), [1.0, -2.0])
    y2, zf = sosfilt(butterworth_lowpass_sos(3, 5.0, 100.0), np.tile([1.0, -2.0], (50, 1)), zi)
    np.testing.assert_allclose(y2, np.tile([1.0, -2.0], (50, 1)), rtol=1e-12)
    np.testing.assert_allclose(zf, zi, rtol=1e-12)


_RNG = np.random.default_rng(7)
_SIGNAL = np.cumsum(_RNG.normal(size=(1500, 3)), axis=0)
_FORCE = 300.0 + _RNG.normal(0.0, 2.0, 1500)
_FORCE[_RNG.choice(1500, 25, replace=False)] += 400.0
_FORCE[700:] += 250.0


def _chunks(n: int, sizes: list[int]) -> list[slice]:
    out, start, k = [], 0, 0
    while start < n:
        stop = min(n, start + sizes[k % len(sizes)])
        out.append(slice(start, stop))
        start, k = stop, k + 1
    return out


@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=30))
def test_lowpass_blocks_equal_whole_bit_for_bit(sizes: list[int]) -> None:
    whole = LowPassFilter(200.0, LowPassSettings(12.0, 5), channels=3).update(_SIGNAL)
    lp = LowPassFilter(200.0, LowPassSettings(12.0, 5), channels=3)
    parts = [lp.update(_SIGNAL[s]) for s in _chunks(_SIGNAL.shape[0], sizes)]
    assert np.concatenate(parts).tobytes() == whole.tobytes()


@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=30))
def test_hampel_blocks_equal_whole_bit_for_bit(sizes: list[int]) -> None:
    y_whole, r_whole = HampelFilter(HampelSettings(7, 3.0)).update(_FORCE)
    hf = HampelFilter(HampelSettings(7, 3.0))
    parts = [hf.update(_FORCE[s]) for s in _chunks(_FORCE.shape[0], sizes)]
    assert np.concatenate([p[0] for p in parts]).tobytes() == y_whole.tobytes()
    assert np.array_equal(np.concatenate([p[1] for p in parts]), r_whole)


def test_hampel_removes_a_spike_and_keeps_a_step() -> None:
    x = np.concatenate([np.full(50, 100.0), np.full(50, 600.0)])
    x += np.tile([0.0, 1.0, -1.0, 0.5, -0.5], 20)
    x[20] += 900.0  # single-sample spike
    x[80] -= 700.0
    hf = HampelFilter(HampelSettings(5, 3.0))
    y, replaced = hf.update(x)
    d = hf.delay_samples
    assert d == 2
    assert np.flatnonzero(replaced).tolist() == [20 + d, 80 + d]
    assert abs(y[20 + d] - 100.0) < 2.0 and abs(y[80 + d] - 600.0) < 2.0
    # The step at sample 50 comes through unchanged, at exactly the delay.
    clean = x.copy()
    clean[[20, 80]] = y[[20 + d, 80 + d]]
    np.testing.assert_array_equal(y[d:], clean[:-d])
    np.testing.assert_array_equal(y[:d], x[0])


def test_hampel_floor_keeps_small_deviations_on_flat_signals() -> None:
    x = np.array([5.0, 5.0, 5.0, 6.0, 5.0, 5.0, 5.0, 5.0])
    assert HampelFilter(HampelSettings(5, 3.0)).update(x)[1].any()
    assert not HampelFilter(HampelSettings(5, 3.0, floor=2.0)).update(x)[1].any()


def test_copies_are_independent() -> None:
    lp = LowPassFilter(100.0, LowPassSettings(5.0))
    lp.update(np.arange(10.0))
    twin = lp.copy()
    assert lp.update([3.0]).tobytes() == twin.update([3.0]).tobytes()
    hf = HampelFilter()
    hf.update(np.arange(10.0))
    hf_twin = hf.copy()
    assert hf.update([3.0])[0].tobytes() == hf_twin.update([3.0])[0].tobytes()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: butterworth_lowpass_sos(2, 600.0, 1000.0), "Nyquist"),
        (lambda: butterworth_lowpass_sos(0, 10.0, 1000.0), "order"),
        (lambda: LowPassSettings(0.0), "cutoff_hz"),
        (lambda: HampelSettings(window_samples=4), "odd"),
        (lambda: LowPassFilter(100.0, LowPassSettings(5.0), channels=2).update(np.zeros(5)), r"\(n, 2\)"),
        (lambda: LowPassFilter(100.0, LowPassSettings(5.0)).update([1.0, math.nan]), "non-finite"),
        (lambda: HampelFilter().update(np.zeros((3, 2))), "one channel"),
        (lambda: sosfilt(np.ones((1, 5)), np.zeros(3), np.zeros((1, 1, 2))), "sections, 6"),
    ],
)
def test_bad_arguments_are_refused(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
