"""Synthetic movement with analytic phase boundaries, for the detection tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Segment:
    """``duration_s`` of motion from the current angle to ``to_deg`` (None = still)."""

    duration_s: float
    to_deg: float | None = None


def cosine_moves(segments: list[Segment], rate_hz: float, start_deg: float = 0.0):
    """Angle (°), angular velocity (°/s) and the true boundary times (s) of each segment.

    Each move follows a half-cosine position profile (speed starts and ends at zero).
    """
    t_edges = [0.0]
    for s in segments:
        t_edges.append(t_edges[-1] + s.duration_s)
    n = round(t_edges[-1] * rate_hz)
    t = np.arange(n) / rate_hz
    angle = np.full(n, start_deg)
    omega = np.zeros(n)
    cur = start_deg
    for s, t0, t1 in zip(segments, t_edges[:-1], t_edges[1:]):
        m = (t >= t0) & (t < t1)
        if s.to_deg is not None:
            T = s.duration_s
            u = (t[m] - t0) / T
            angle[m] = cur + (s.to_deg - cur) * (1 - np.cos(np.pi * u)) / 2
            omega[m] = (s.to_deg - cur) * np.pi / (2 * T) * np.sin(np.pi * u)
            cur = s.to_deg
        else:
            angle[m] = cur
    return t, angle, omega, t_edges


def hinge_set(n_reps: int, ecc_s=2.0, pause_l_s=1.0, con_s=1.0, pause_s_s=1.5, rom_deg=60.0,
              lead_s=2.0, tail_s=2.0, start_deg=0.0):
    """A set of hip-hinge reps (flexion positive = eccentric) with a known tempo."""
    segs = [Segment(lead_s)]
    for i in range(n_reps):
        segs += [Segment(ecc_s, start_deg + rom_deg), Segment(pause_l_s),
                 Segment(con_s, start_deg)]
        segs.append(Segment(pause_s_s if i < n_reps - 1 else tail_s))
    return segs


def feed_in_blocks(update, sizes: list[int], *arrays: np.ndarray) -> list:
    """Call ``update`` on consecutive slices of ``arrays`` with block sizes cycling through
    ``sizes``; return the concatenated outputs."""
    out: list = []
    pos = i = 0
    n_total = len(arrays[0])
    while pos < n_total:
        n = sizes[i % len(sizes)]
        out += update(*(a[pos : pos + n] for a in arrays))
        pos += n
        i += 1
    return out


def imu_from_angle(angle_deg: np.ndarray, omega_dps: np.ndarray, axis: str = "y"):
    """Gyro (°/s) and accelerometer (g) of a trunk IMU rotating by ``angle_deg`` about one sensor
    axis from upright (sensor x up the spine, y left, z posterior; no linear acceleration)."""
    n = len(angle_deg)
    th = np.radians(angle_deg)
    c, s = np.cos(th), np.sin(th)
    gyro = np.zeros((n, 3))
    # R0 maps sensor x to earth up, y to y, z to -x; up in sensor frame at rest is +x.
    up = np.zeros((n, 3))
    if axis == "y":
        gyro[:, 1] = omega_dps
        # R = R0 Ry(th): up_sensor = Ry(th)^T (1, 0, 0) = (c, 0, s)
        up[:, 0], up[:, 2] = c, s
    elif axis == "z":
        gyro[:, 2] = omega_dps
        # Rz(th)^T (1, 0, 0) = (c, -s, 0)
        up[:, 0], up[:, 1] = c, -s
    else:
        raise ValueError(axis)
    return gyro, up.copy()
