"""Shortcuts in the per-sample kernels give bit for bit what their plain formulations gave.

The primary angle skips the unwrap's division and the projection's square root where their
outcome is known, the Hampel filter steps its ring positions on instead of dividing them out
(and takes a window of three by selections), a single biquad keeps its state in locals, and the
bell fit visits only the samples its current bell covers. Each is compared here with a plain
Python transcription of the formula it replaced, on random data that also takes the slow
branches, with exact equality. A pipeline must be freed as soon as its last reference goes (no
reference cycle keeping its buffers for the collector).
"""

from __future__ import annotations

import gc
import math
import weakref

import numpy as np
import pytest
from core_detect_synth import cosine_moves, hinge_set, imu_from_angle
from spinecoach.core._filters import hampel, sosfilt
from spinecoach.core._primary import PrimaryAngleState, primary_step
from spinecoach.core._repfit import fit_bell
from spinecoach.core.pipeline import Pipeline
from spinecoach.core.results import MotionSettings
from spinecoach.drivers.blocks import StreamInfo as Info


def plain_primary(q: np.ndarray, gyro: np.ndarray, rate_hz: float, ref, ortho, axis,
                  min_norm: float) -> tuple[list[float], list[float]]:
    """The primary-angle recursion as first written: sqrt test, unwrap by floor division."""
    angles, rates = [], []
    last, have_last, on_gyro = 0.0, False, False
    to_deg = 180.0 / math.pi
    for (w, x, y, z), (g0, g1, g2) in zip(q.tolist(), gyro.tolist()):
        n2 = w * w + x * x + y * y + z * z
        u0 = 2.0 * (x * z - w * y) / n2
        u1 = 2.0 * (y * z + w * x) / n2
        u2 = (w * w - x * x - y * y + z * z) / n2
        po = u0 * ortho[0] + u1 * ortho[1] + u2 * ortho[2]
        pr = u0 * ref[0] + u1 * ref[1] + u2 * ref[2]
        if math.sqrt(po * po + pr * pr) < min_norm and have_last:
            r = g0 * axis[0] + g1 * axis[1] + g2 * axis[2]
            last = last + r / rate_hz
            angles.append(last)
            rates.append(r)
            on_gyro = True
            continue
        a = -math.atan2(po, pr) * to_deg
        if have_last:
            prev = last
            a += 360.0 * math.floor((prev - a) / 360.0 + 0.5)
        else:
            prev = a
            have_last = True
        angles.append(a)
        if on_gyro:
            rates.append(g0 * axis[0] + g1 * axis[1] + g2 * axis[2])
            on_gyro = False
        else:
            rates.append((a - prev) * rate_hz)
        last = a
    return angles, rates


def random_walk_quaternions(rng: np.random.Generator, n: int, step: float) -> np.ndarray:
    """Unit-ish quaternions drifting by ``step`` rad per sample (large steps wrap the angle)."""
    q = np.empty((n, 4))
    cur = np.array([1.0, 0.0, 0.0, 0.0])
    for i in range(n):
        d = rng.normal(0.0, step, 3)
        dq = np.array([1.0, *(d / 2)])
        w0, x0, y0, z0 = cur
        w1, x1, y1, z1 = dq
        cur = np.array([w0 * w1 - x0 * x1 - y0 * y1 - z0 * z1, w0 * x1 + x0 * w1 + y0 * z1 - z0 * y1,
                        w0 * y1 - x0 * z1 + y0 * w1 + z0 * x1, w0 * z1 + x0 * y1 - y0 * x1 + z0 * w1])
        cur /= np.linalg.norm(cur)
        q[i] = cur * (1.0 + rng.normal(0.0, 1e-9))  # not exactly unit, as a filter's output
    return q


@pytest.mark.parametrize("seed", range(12))
def test_primary_step_equals_the_plain_recursion(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    # small steps (the usual branch), steps that wrap past ±180° and pass near the axis
    q = random_walk_quaternions(rng, n, step=[0.01, 0.6, 2.0][seed % 3])
    gyro = rng.normal(0.0, 50.0, (n, 3))
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    ref = np.cross(axis, rng.normal(size=3))
    ref /= np.linalg.norm(ref)
    ortho = np.cross(axis, ref)
    min_norm = [0.34, 0.9, 0.0, 0.99][seed % 4]
    want_a, want_r = plain_primary(q, gyro, 1000.0, ref, ortho, axis, min_norm)
    st = PrimaryAngleState(ref, ortho, axis, min_norm)
    got_a, got_r = np.empty(n), np.empty(n)
    cuts = [0, *sorted(rng.choice(np.arange(1, n), 5, replace=False).tolist()), n]
    for a, b in zip(cuts[:-1], cuts[1:]):  # in blocks: the state carries the running angle
        primary_step(st, q[a:b], gyro[a:b], 1000.0, got_a[a:b], got_r[a:b])
    assert np.array_equal(got_a, np.array(want_a)) and np.array_equal(got_r, np.array(want_r))
    assert got_a.tobytes() == np.array(want_a).tobytes()  # signed zeros too


def plain_hampel(x: np.ndarray, state: np.ndarray, half: int, threshold: float, floor: float):
    """The Hampel filter as first written: ring slot and centre divided out per sample."""
    w = 2 * half + 1
    ring = state[1:]
    y, replaced = np.empty(len(x)), np.zeros(len(x), bool)
    for i, v_in in enumerate(x.tolist()):
        seen = int(state[0])
        if seen == 0:
            ring[:] = v_in
        else:
            ring[seen % w] = v_in
        state[0] = seen + 1
        centre = (seen - half) % w
        med = sorted(ring.tolist())[half]
        mad = sorted(abs(r - med) for r in ring.tolist())[half]
        limit = threshold * 1.4826 * mad
        limit = max(limit, floor)
        v = float(ring[centre])
        if abs(v - med) > limit:
            y[i], replaced[i] = med, True
        else:
            y[i] = v
    return y, replaced


@pytest.mark.parametrize("half", [1, 2, 3, 7])
def test_hampel_equals_the_plain_filter_in_any_blocks(half: int) -> None:
    rng = np.random.default_rng(half)
    n = 2000
    x = 100.0 + np.cumsum(rng.normal(0.0, 1.0, n))
    spikes = rng.choice(n, 40, replace=False)
    x[spikes] += rng.choice([-1.0, 1.0], 40) * rng.uniform(5.0, 80.0, 40)
    x[300:340] = 0.0  # ties in the window
    x[341] = -0.0
    # signed zeros tie in the median (which one wins shows in the replaced spikes' bits)
    x[400:1000] = rng.choice([0.0, -0.0], 600)
    x[400:1000:5] = rng.uniform(20.0, 60.0, 120)
    w = 2 * half + 1
    want_y, want_r = plain_hampel(x, np.zeros(1 + w), half, 3.0, 2.0)
    state = np.zeros(1 + w)
    got_y, got_r = np.empty(n), np.zeros(n, np.uint8)
    cuts = [0, 1, 2, *sorted(rng.choice(np.arange(3, n), 9, replace=False).tolist()), n]
    for a, b in zip(cuts[:-1], cuts[1:]):
        hampel(x[a:b], got_y[a:b], got_r[a:b], state, half, 3.0, 2.0)
    hampel(x[:0], got_y[:0], got_r[:0], state, half, 3.0, 2.0)  # an empty block changes nothing
    assert got_y.tobytes() == want_y.tobytes()
    assert np.array_equal(got_r.view(bool), want_r)
    assert int(state[0]) == n


def test_a_pipeline_is_freed_without_the_cycle_collector() -> None:
    t, angle, omega, _ = cosine_moves(hinge_set(3), 1000.0)
    gyro, accel = imu_from_angle(angle, omega)
    force = 150.0 + 5.0 * angle[::25]  # 40 SPS, the same span
    fidx = np.arange(len(force))
    motion = MotionSettings(primary_axis=(0.0, 1.0, 0.0), eccentric_sign=1, hold_target_deg=60.0)
    p = Pipeline([Info("trunk", "imu", 1000.0), Info("force", "force", 40.0)], motion)
    p.feed_imu("trunk", np.arange(len(t)), gyro, accel)
    p.feed_force("force", fidx, force)
    assert p.finish().reps
    alive = weakref.ref(p)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        del p
        assert alive() is None, "a reference cycle keeps the pipeline (and its buffers) alive"
    finally:
        if was_enabled:
            gc.enable()


def plain_fit_bell(t: list[float], v: list[float], delta: float, start_s: float, length_s: float,
                   kind: int, max_iter: int = 12, free_amplitude: bool = True):
    """The bell fit's Gauss-Newton as first written: every sample visited in every step."""
    def shape(u: float) -> float:
        return 30.0 * u * u * (1.0 - u) * (1.0 - u) if kind == 0 else 0.5 * math.pi * math.sin(math.pi * u)

    def dshape(u: float) -> float:
        return (60.0 * u * (1.0 - u) * (1.0 - 2.0 * u) if kind == 0
                else 0.5 * math.pi * math.pi * math.cos(math.pi * u))

    t0, dur, amp, lim = start_s - 0.05 * length_s, 1.1 * length_s, delta, 0.2 * length_s
    for _ in range(max_iter):
        a00 = a01 = a02 = a11 = a12 = a22 = g0 = g1 = g2 = 0.0
        k = amp / (dur * dur)
        for ti, vi in zip(t, v):
            u = (ti - t0) / dur
            r = -vi
            if 0.0 < u < 1.0:
                sh, dsh = shape(u), dshape(u)
                r += amp / dur * sh
                j0, j1, j2 = -k * dsh, -k * (sh + u * dsh), sh / dur
                a00 += j0 * j0
                a01 += j0 * j1
                a11 += j1 * j1
                a02 += j0 * j2
                a12 += j1 * j2
                a22 += j2 * j2
                g0 -= j0 * r
                g1 -= j1 * r
                g2 -= j2 * r
        if free_amplitude:
            c00, c01, c02 = a11 * a22 - a12 * a12, a02 * a12 - a01 * a22, a01 * a12 - a02 * a11
            c11, c12, c22 = a00 * a22 - a02 * a02, a01 * a02 - a00 * a12, a00 * a11 - a01 * a01
            det = a00 * c00 + a01 * c01 + a02 * c02
            if not abs(det) > 1e-12 * (max(1e-300, a00 * a11 * a22)):
                break
            s0 = (c00 * g0 + c01 * g1 + c02 * g2) / det
            s1 = (c01 * g0 + c11 * g1 + c12 * g2) / det
            s2 = (c02 * g0 + c12 * g1 + c22 * g2) / det
        else:
            det = a00 * a11 - a01 * a01
            if not det > 1e-12 * (max(1e-300, a00 * a11)):
                break
            s0, s1, s2 = (a11 * g0 - a01 * g1) / det, (a00 * g1 - a01 * g0) / det, 0.0
        s0 = lim if s0 > lim else (max(s0, -lim))
        s1 = lim if s1 > lim else (max(s1, -lim))
        t0, dur, amp = t0 + s0, dur + s1, amp + s2
        if dur <= 0.1 * length_s or amp * delta <= 0.0:
            break
        if abs(s0) < 1e-5 and abs(s1) < 1e-5 and abs(s2) < 1e-5 * abs(delta):
            break
    return (t0, dur, amp) if not (dur <= 0.1 * length_s or amp * delta <= 0.0) else None


@pytest.mark.parametrize("seed", range(8))
def test_bell_fit_over_the_covered_samples_equals_the_fit_over_all(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = 3.0 + np.arange(300) * 0.01 + 0.005
    true_t0, true_dur = 3.5 + rng.uniform(0, 0.5), rng.uniform(1.0, 2.0)
    u = (t - true_t0) / true_dur
    v = np.where((u > 0) & (u < 1), 60.0 / true_dur * 1.5 * np.pi / 2 * np.sin(np.pi * u), 0.0)
    v += rng.normal(0.0, [0.5, 5.0][seed % 2], t.size)
    for kind in (0, 1):
        for free in (True, False):
            start = true_t0 + rng.uniform(-0.3, 0.3)
            length = true_dur * rng.uniform(0.6, 1.3)
            got = fit_bell(t, v, 60.0, start, length, kind, free_amplitude=free)
            want = plain_fit_bell(t.tolist(), v.tolist(), 60.0, start, length, kind,
                                  free_amplitude=free)
            assert (got is None) == (want is None)
            if got is not None:
                assert (got[0], got[1], got[3]) == want


@pytest.mark.parametrize("channels", [1, 3])
def test_one_biquad_equals_the_plain_recursion_in_any_blocks(channels: int) -> None:
    rng = np.random.default_rng(channels)
    sos = np.array([[0.02, 0.04, 0.02, 1.0, -1.56, 0.64]]) * rng.uniform(0.9, 1.1, 6)
    n = 1500
    x = rng.normal(0.0, 30.0, (n, channels))
    zi0 = rng.normal(0.0, 1.0, (1, channels, 2))
    want = np.empty((n, channels))
    for ch in range(channels):
        z0, z1 = zi0[0, ch]
        b0, b1, b2, _, a1, a2 = sos[0].tolist()
        for i, v in enumerate(x[:, ch].tolist()):
            out = b0 * v + z0
            z0 = b1 * v - a1 * out + z1
            z1 = b2 * v - a2 * out
            want[i, ch] = out
    zi = zi0.copy()
    got = np.empty((n, channels))
    for a, b in [(0, 1), (1, 700), (700, 701), (701, n)]:
        sosfilt(sos, np.ascontiguousarray(x[a:b]), zi, got[a:b])
    assert got.tobytes() == want.tobytes()
