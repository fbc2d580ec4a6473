"""Chip codes to SI values, the one place both the sampler and the recording reader use.

Keeping a single definition makes replay bit-identical to the live run: a native recording stores
only the raw codes when the SI values are exactly these functions of them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.blocks import StreamInfo


def imu_si(
    raw: npt.NDArray[np.int16], info: StreamInfo
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Angular rate (°/s) and specific force (g) of IMU codes ``raw`` (n×6: gx gy gz ax ay az)."""
    codes = raw.astype(np.float64)
    return codes[:, :3] * info.gyro_dps_per_lsb, codes[:, 3:] * info.accel_g_per_lsb


def force_si(raw: npt.NDArray[np.int32], info: StreamInfo) -> npt.NDArray[np.float64]:
    """Force (N) of load-cell codes ``raw`` after the tare offset and the scale."""
    return (raw.astype(np.float64) - info.force_offset_counts) * info.force_n_per_count
