"""Phases, reps and holds on synthetic movement with analytic answers; streaming equals batch."""

from __future__ import annotations

import numpy as np
import pytest
from core_detect_synth import Segment, cosine_moves, feed_in_blocks, hinge_set
from hypothesis import given
from hypothesis import strategies as st
from spinecoach.core.detect import (
    HoldDetector,
    PhaseDetector,
    RepTracker,
    count_reps,
    detect_phases,
)
from spinecoach.core.results import MotionSettings


def smooth(x: np.ndarray, rate: float, fc: float = 15.0) -> np.ndarray:
    """Zero-phase moving average of about 1/fc s (test-side noise reduction only)."""
    n = max(1, int(rate / fc) | 1)
    return np.convolve(x, np.ones(n) / n, mode="same")


@pytest.mark.parametrize("rate", [100.0, 285.714, 1000.0])
@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_phase_boundaries_within_20_ms_and_reps_exact(rate, noise):
    _t, angle, omega, edges = cosine_moves(hinge_set(5), rate)
    if noise:
        omega = omega + smooth(np.random.default_rng(3).normal(0, noise * 4, omega.shape), rate)
    reps = count_reps(angle, omega, rate)
    assert len(reps) == 5
    # edges: lead, then per rep [ecc, pause_l, con, pause_s]
    for i, r in enumerate(reps):
        e = edges[1 + 4 * i : 1 + 4 * i + 4]
        assert abs(r.start / rate - e[0]) <= 0.02 + 1e-9
        assert abs(r.away_end / rate - e[1]) <= 0.02 + 1e-9
        assert abs(r.back_start / rate - e[2]) <= 0.02 + 1e-9
        assert abs(r.end / rate - e[3]) <= 0.02 + 1e-9
        assert r.away_dir == 1
        assert r.rest_pause == 0 if i == 0 else abs(r.rest_pause / rate - 1.5) <= 0.04


def test_no_pause_reversal_boundary_at_zero_crossing():
    rate = 500.0
    # fast turns: |ω| < 5 °/s for only ~50 ms around each reversal, under the 100 ms minimum
    segs = [Segment(1.0), Segment(1.0, 40.0), Segment(1.0, 0.0), Segment(1.0, 40.0),
            Segment(1.0, 0.0), Segment(1.0)]
    _t, angle, omega, edges = cosine_moves(segs, rate)
    phases = detect_phases(omega, rate)
    assert [p.phase for p in phases] == [1, -1, 1, -1, 0]
    for p, e in zip(phases, edges[1:6]):
        assert abs(p.boundary / rate - e) <= 1.0 / rate + 1e-9
    reps = count_reps(angle, omega, rate)
    assert len(reps) == 2
    assert reps[1].rest_pause == 0


def test_short_moves_and_small_range_are_not_reps():
    rate = 200.0
    # 10° excursions (under the 15° minimum) and a 60 ms twitch (under the 100 ms minimum phase)
    segs = [Segment(1.0), Segment(1.0, 10.0), Segment(0.5), Segment(1.0, 0.0), Segment(1.0),
            Segment(0.06, 2.0), Segment(1.0)]
    _t, angle, omega, _ = cosine_moves(segs, rate)
    assert count_reps(angle, omega, rate) == []
    phases = detect_phases(omega, rate)
    assert len(phases) == 4  # the two 10° moves and their stops; the twitch is absorbed


def test_negative_direction_and_partial_return():
    rate = 100.0
    segs = [Segment(1.0), Segment(1.0, -30.0), Segment(0.5), Segment(1.0, -20.0),  # returns 10°
            Segment(0.5), Segment(1.0, 0.0), Segment(1.0)]
    _t, angle, omega, edges = cosine_moves(segs, rate)
    reps = count_reps(angle, omega, rate)
    # 30° away; the 10° return is too small, the continued return completes one rep
    assert len(reps) == 1
    assert reps[0].away_dir == -1
    assert abs(reps[0].end / rate - edges[6]) <= 0.02 + 1e-9


def test_min_rom_setting_is_used():
    rate = 100.0
    _t, angle, omega, _ = cosine_moves(hinge_set(3, rom_deg=20.0), rate)
    assert len(count_reps(angle, omega, rate, MotionSettings(min_rom_deg=15.0))) == 3
    assert count_reps(angle, omega, rate, MotionSettings(min_rom_deg=25.0)) == []


@given(st.lists(st.integers(1, 500), min_size=1, max_size=30))
def test_phases_streaming_equals_batch(sizes):
    rate = 250.0
    _t, _angle, omega, _ = cosine_moves(hinge_set(3), rate)
    omega = omega + np.random.default_rng(0).normal(0, 0.8, omega.shape)
    batch = PhaseDetector(rate).update(omega)
    det = PhaseDetector(rate)
    assert feed_in_blocks(det.update, sizes, omega) == batch


def hold_signal(rate: float, enter_s: float = 2.0, leave_s: float = 6.0, total_s: float = 9.0):
    """Angle moves linearly from 0 to 40° (band 35-45°) and back out; exact crossing samples."""
    t = np.arange(int(total_s * rate)) / rate
    angle = np.where(t < enter_s - 0.25, 0.0, np.where(t < enter_s, 40.0 * (t - (enter_s - 0.25)) / 0.25, 40.0))
    angle = np.where(t >= leave_s, 20.0, angle)
    return t, angle


@pytest.mark.parametrize("rate", [25.0, 100.0, 1000.0])
def test_hold_duration_exact_to_one_sample(rate):
    t, angle = hold_signal(rate)
    det = HoldDetector(rate, 35.0, 45.0, debounce_s=0.2, min_hold_s=1.0)
    changes = det.update(angle) + det.finish()
    ends = [c for c in changes if c.kind == "hold_end"]
    assert len(ends) == 1
    first_in = int(np.argmax(angle >= 35.0))
    first_out = int(np.argmax(t >= 6.0))
    assert ends[0].start == first_in
    assert ends[0].end == first_out
    assert ends[0].reason == "left_band"
    # decided after the debounce: more than 0.2 s of samples outside the band
    assert ends[0].decided == first_out + round(0.2 * rate)
    starts = [c for c in changes if c.kind == "hold_start"]
    assert starts[0].decided == first_in + round(rate) - 1


def test_hold_survives_a_dip_shorter_than_debounce_and_force_breaks_it():
    rate = 100.0
    t, angle = hold_signal(rate)
    angle[400:415] = 10.0  # 150 ms out of the band: debounced
    force = np.full(t.shape, 300.0)
    force[500:] = 250.0  # force drops 17 %: the hold ends there
    det = HoldDetector(rate, 35.0, 45.0)
    changes = det.update(angle, force) + det.finish()
    ends = [c for c in changes if c.kind == "hold_end"]
    assert ends[0].end == 500 and ends[0].reason == "force_unstable"


@given(st.lists(st.integers(1, 300), min_size=1, max_size=20))
def test_holds_streaming_equals_batch(sizes):
    rate = 100.0
    _t, angle = hold_signal(rate)
    angle[400:425] = 10.0
    batch = HoldDetector(rate, 35.0, 45.0)
    b = batch.update(angle) + batch.finish()
    det = HoldDetector(rate, 35.0, 45.0)
    assert feed_in_blocks(det.update, sizes, angle) + det.finish() == b
    assert len([c for c in b if c.kind == "hold_end"]) == 2


def test_rep_tracker_ignores_leading_still_and_finishes_open_move():
    rate = 100.0
    segs = [Segment(1.0), Segment(1.0, 30.0), Segment(0.5), Segment(1.0, 0.0)]
    _t, angle, omega, _edges = cosine_moves(segs, rate)
    reps = count_reps(angle, omega, rate)  # data end while still returning: finish() closes it
    assert len(reps) == 1


def test_bad_settings_rejected():
    with pytest.raises(ValueError):
        PhaseDetector(100.0, MotionSettings(moving_threshold_dps=5, still_threshold_dps=10))
    with pytest.raises(ValueError):
        HoldDetector(100.0, 10.0, 5.0)
    with pytest.raises(ValueError):
        HoldDetector.for_target(100.0, MotionSettings())
    with pytest.raises(ValueError):
        PhaseDetector(-1.0)
    assert RepTracker(15.0, lambda i: 0.0, lambda a, b, d: a).oldest_needed is None
