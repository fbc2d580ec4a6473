"""The streaming pipeline end to end on synthetic IMU + load-cell data with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from core_detect_synth import Segment, cosine_moves, hinge_set, imu_from_angle
from hypothesis import given, settings
from hypothesis import strategies as st
from spinecoach.core.pipeline import Pipeline
from spinecoach.core.results import MotionSettings
from spinecoach.drivers.blocks import StreamInfo as Info

HINGE = MotionSettings(primary_axis=(0.0, 1.0, 0.0), eccentric_sign=1)


def session(rate=200.0, force_rate=80.0, n_reps=4, k_n_per_deg=5.0, f0_n=150.0, **tempo):
    t, angle, omega, edges = cosine_moves(hinge_set(n_reps, **tempo), rate)
    gyro, accel = imu_from_angle(angle, omega)
    tf = np.arange(int(t[-1] * force_rate)) / force_rate
    force = f0_n + k_n_per_deg * np.interp(tf, t, angle)
    return t, angle, gyro, accel, tf, force, edges


def run(p: Pipeline, gyro, accel, force, imu_block: int, force_block: int) -> list:
    """Feed IMU and force alternately in the given block sizes (interleaving varies with them)."""
    events = []
    i = j = 0
    while i < len(gyro) or (force is not None and j < len(force)):
        if i < len(gyro):
            sl = slice(i, i + imu_block)
            events += p.feed_imu("trunk", np.arange(len(gyro))[sl], gyro[sl], accel[sl])
            i += imu_block
        if force is not None and j < len(force):
            sl = slice(j, j + force_block)
            events += p.feed_force("force", np.arange(len(force))[sl], force[sl])
            j += force_block
    return events


def streams(rate=200.0, force_rate=80.0, force=True):
    s = [Info("trunk", "imu", rate)]
    if force:
        s.append(Info("force", "force", force_rate))
    return s


def test_hinge_set_reps_tempo_and_force_curve():
    rate = 200.0
    _t, _angle, gyro, accel, _tf, force, edges = session(rate)
    p = Pipeline(streams(rate), HINGE)
    events = run(p, gyro, accel, force, 50, 20)
    res = p.finish()
    assert len(res.reps) == 4
    assert [e.kind for e in events].count("rep") == 4
    for i, r in enumerate(res.reps):
        e = edges[1 + 4 * i : 1 + 4 * i + 4]
        assert abs(r.start_s - e[0]) <= 0.02 and abs(r.end_s - e[3]) <= 0.02
        assert r.tempo.eccentric_s == pytest.approx(2.0, abs=0.04)
        assert r.tempo.pause_lengthened_s == pytest.approx(1.0, abs=0.04)
        assert r.tempo.concentric_s == pytest.approx(1.0, abs=0.04)
        assert r.rom_deg == pytest.approx(60.0, abs=1.0)
        assert r.band_stiffness_n_per_deg == pytest.approx(5.0, rel=0.02)
        assert r.peak_force_n == pytest.approx(150.0 + 5.0 * 60.0, rel=0.02)
        assert r.angle_at_peak_force_deg == pytest.approx(60.0, abs=1.0)
        for lo, f in r.force_angle["concentric"]:
            if 2.0 <= lo <= 56.0:
                assert f == pytest.approx(150.0 + 5.0 * (lo + 1.0), rel=0.02)
        assert r.eccentric_sparc is not None and r.eccentric_sparc < 0
        assert r.eccentric_first
    assert res.streams == {"trunk": rate, "force": 80.0}
    assert res.summary["band_stiffness_n_per_deg"] == pytest.approx(5.0, rel=0.02)
    assert res.movement_onsets_s[0] == pytest.approx(2.0, abs=0.02)
    phases = [e.data for e in events if e.kind == "phase"]
    assert phases[:4] == ["eccentric", "still", "concentric", "still"]


def test_no_exercise_counts_reps_about_the_axis_of_largest_excursion():
    rate = 100.0
    _t, angle, omega, _ = cosine_moves(hinge_set(3, rom_deg=40.0), rate)
    gyro, accel = imu_from_angle(angle, omega, axis="z")
    p = Pipeline(streams(rate, force=False), None)
    run(p, gyro, accel, None, 64, 0)
    res = p.finish()
    assert len(res.reps) == 3
    assert abs(abs(p.primary_axis[2]) - 1.0) < 0.05
    assert all(r.rom_deg == pytest.approx(40.0, abs=1.5) for r in res.reps)


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 400), st.integers(1, 200))
def test_pipeline_streaming_equals_batch(imu_block, force_block):
    rate = 100.0
    _t, _angle, gyro, accel, _tf, force, _ = session(rate, 50.0, n_reps=2)
    force = force.copy()
    force[int(1.0 * 50) : int(1.5 * 50)] += 400.0  # a contraction too
    ref = Pipeline(streams(rate, 50.0), HINGE)
    ref.feed_force("force", np.arange(len(force)), force)
    ref.feed_imu("trunk", np.arange(len(gyro)), gyro, accel)
    p = Pipeline(streams(rate, 50.0), HINGE)
    run(p, gyro, accel, force, imu_block, force_block)
    assert p.finish() == ref.finish()


def test_holds_with_force_and_gaps():
    rate = 100.0
    segs = [Segment(1.0), Segment(1.0, -10.0), Segment(5.0), Segment(1.0, 0.0), Segment(1.0)]
    t, angle, omega, _edges = cosine_moves(segs, rate)
    gyro, accel = imu_from_angle(angle, omega)
    motion = MotionSettings(primary_axis=(0, 1, 0), hold_target_deg=-10.0, hold_tolerance_deg=5.0,
                            min_rom_deg=5.0)
    force_rate = 50.0
    tf = np.arange(int(t[-1] * force_rate)) / force_rate
    force = np.full(tf.shape, 200.0)
    p = Pipeline(streams(rate, force_rate), motion)
    idx = np.arange(len(gyro))
    keep = (idx < 400) | (idx >= 405)  # a 5-sample hole in the IMU stream
    events = p.feed_imu("trunk", idx[keep], gyro[keep], accel[keep])
    events += p.feed_force("force", np.arange(len(force)), force)
    res = p.finish()
    assert len(res.holds) == 1
    h = res.holds[0]
    # the band is -15..-5°: entered on the way down, left on the way back up
    inside = np.flatnonzero(angle <= -5.0)
    assert h.start_s == pytest.approx(inside[0] / rate, abs=1.5 / rate)
    assert h.end_s == pytest.approx((inside[-1] + 1) / rate, abs=1.5 / rate)
    assert h.mean_force_n == pytest.approx(200.0)
    assert [e.kind for e in events].count("hold_start") == 1


def test_live_snapshot_and_limits():
    rate = 100.0
    t, angle, omega, _ = cosine_moves(hinge_set(1, rom_deg=50.0), rate)
    gyro, accel = imu_from_angle(angle, omega)
    p = Pipeline(streams(rate, force=False),
                 MotionSettings(primary_axis=(0, 1, 0), flexion_limit_deg=45.0))
    events = p.feed_imu("trunk", np.arange(300), gyro[:300], accel[:300])
    live = p.live
    assert live["t_s"] == pytest.approx(2.99)
    assert live["angle_deg"] == pytest.approx(angle[299], abs=0.5)
    assert live["phase"] == "eccentric"
    events += p.feed_imu("trunk", np.arange(300, len(gyro)), gyro[300:], accel[300:])
    limits = [e for e in events if e.kind == "limit"]
    assert len(limits) == 1 and limits[0].data["limit_deg"] == 45.0
    assert limits[0].t_s == pytest.approx(t[np.argmax(angle > 45.0)], abs=0.03)


def test_force_only_recording_and_bad_streams():
    p = Pipeline([Info("force", "force", 1000.0)])
    f = np.full(6000, 10.0)
    f[3000:3500] = 500.0
    ev = p.feed_force("force", np.arange(6000), f)
    assert [e.kind for e in ev] == ["contraction_onset", "contraction"]
    res = p.finish()
    assert len(res.contractions) == 1 and res.reps == []
    with pytest.raises(ValueError):
        p.feed_imu("trunk", [0], [[0, 0, 0]], [[1, 0, 0]])
    with pytest.raises(ValueError):
        Pipeline([Info("x", "sonar", 10.0)])
    with pytest.raises(ValueError):
        p.feed_force("force", [0], [1.0])  # index goes backwards
