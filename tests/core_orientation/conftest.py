"""Shared data for the orientation, filter and calibration tests: synthetic motion and BROAD."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

_REPO = Path(__file__).resolve().parents[2]
#: BROAD trial 07 with its reference: a copy in the fixtures if one holds the reference, else the
#: shared real recordings next to the repository (../shared/realdata, see its README).
BROAD_CANDIDATES = (
    _REPO / "tests" / "fixtures" / "realdata" / "broad-07-fast-rotation",
    _REPO.parent / "shared" / "realdata" / "broad-07-fast-rotation",
    Path("/work/shared/realdata/broad-07-fast-rotation"),
)


def quat_from_rotvec(rotvec: np.ndarray) -> np.ndarray:
    """Unit quaternions [w, x, y, z] of (n, 3) rotation vectors (rad)."""
    angle = np.linalg.norm(rotvec, axis=1)
    safe = np.where(angle > 0, angle, 1.0)
    half = 0.5 * angle
    return np.concatenate([np.cos(half)[:, None], rotvec * (np.sin(half) / safe)[:, None]], axis=1)


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ])


def up_in_sensor(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q.T
    return np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z], 1)


@dataclass(frozen=True)
class Motion:
    """A synthetic IMU recording with its true orientation (gyro includes ``bias_dps``)."""

    rate_hz: float
    gyro_dps: np.ndarray
    accel_g: np.ndarray
    q_true: np.ndarray


def synthetic_motion(
    rate_hz: float,
    rates_dps: np.ndarray,
    q0: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0),
    bias_dps: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Motion:
    """Integrate body rates exactly (constant over each sample period) from the attitude q0.

    The accelerometer sees gravity only: earth-up in the sensor frame, +1 g when level.
    """
    rates = np.asarray(rates_dps, dtype=np.float64)
    steps = quat_from_rotvec(np.radians(rates) / rate_hz)
    q = np.asarray(q0, dtype=np.float64)
    q_true = np.empty((rates.shape[0], 4))
    for i in range(rates.shape[0]):
        q = quat_mul(q, steps[i])
        q /= math.sqrt(float(q @ q))
        q_true[i] = q
    return Motion(rate_hz, rates + np.asarray(bias_dps), up_in_sensor(q_true), q_true)


def smooth_rates_dps(rate_hz: float, duration_s: float, seed: int, peak_dps: float) -> np.ndarray:
    """Body rates made of a few random sinusoids per axis (a wobbling, tumbling movement)."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(duration_s * rate_hz)) / rate_hz
    rates = np.zeros((t.size, 3))
    for axis in range(3):
        for _ in range(3):
            freq = rng.uniform(0.1, 1.5)
            rates[:, axis] += rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.3))
    return rates * (peak_dps / np.abs(rates).max())


@dataclass(frozen=True)
class Broad:
    """BROAD trial 07: IMU samples, reference quaternions and the evaluation mask."""

    rate_hz: float
    gyro_dps: np.ndarray
    accel_g: np.ndarray
    q_ref: np.ndarray
    evaluate: np.ndarray


@pytest.fixture(scope="session")
def broad() -> Broad:
    found = [d for d in BROAD_CANDIDATES if (d / "imu.csv").is_file() and (d / "reference.csv").is_file()]
    if not found:
        pytest.skip("BROAD trial 07 with reference.csv not found in " + ", ".join(map(str, BROAD_CANDIDATES)))
    imu = np.loadtxt(found[0] / "imu.csv", delimiter=",", skiprows=1)
    ref = np.genfromtxt(found[0] / "reference.csv", delimiter=",", skip_header=1)
    rate_hz = 1.0 / float(np.median(np.diff(imu[:, 0])))
    evaluate = (ref[:, 5] == 1) & np.isfinite(ref[:, 1:5]).all(axis=1)
    return Broad(
        rate_hz,
        np.ascontiguousarray(imu[:, 1:4]),
        np.ascontiguousarray(imu[:, 4:7]),
        ref[:, 1:5],
        evaluate,
    )
