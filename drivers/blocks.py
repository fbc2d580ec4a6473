"""Blocks of samples: what every backend (chips, simulated rig, recording) delivers.

A sample's time comes from the sample clock, never the wall clock:
``t_s = t0_s + index / rate_hz``. Samples that were expected but not delivered are counted in
:class:`Gap` records, so for every stream ``delivered + sum(gap.count) == expected`` exactly.
Detection code therefore gives bit-identical results live and in replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

StreamKind = Literal["imu", "force"]

#: Why samples are missing. ``fifo_overflow``: the chip's FIFO filled before it was drained;
#: ``bus_error``: transfers failed after retries; ``chip_reset``: the chip lost its
#: configuration; ``missed_conversion``: a polled ADC result was overwritten before it was read;
#: ``stall``: the reader fell behind; ``outage``: the bus was unavailable; ``source``: the
#: recording itself has a hole (e.g. an imported CSV with missing rows).
GapReason = Literal[
    "fifo_overflow", "bus_error", "chip_reset", "missed_conversion", "stall", "outage", "source"
]


@dataclass(frozen=True)
class StreamInfo:
    """Identity and scaling of one sample stream.

    ``name`` is the placement ("trunk", "pelvis", "implement") for an IMU or "force" for the
    load cell. ``rate_hz`` is the nominal output data rate; ``t0_s`` the time of index 0.
    Raw-code scales convert chip codes to SI values: ``gyro_dps_per_lsb``/``accel_g_per_lsb``
    for an IMU, ``force_n_per_count`` and ``force_offset_counts`` (the tare) for a load cell;
    they are 0 when the stream has no raw codes (an imported CSV).

    An IMU's calibration in effect (``spinecoach.core.imu_calibration.ImuCalibration``, applied
    by the measurement pipeline, never to the samples themselves): ``mount_wxyz`` the mounting
    quaternion (w, x, y, z, body -> sensor), ``gyro_bias_dps``, ``accel_offset_g`` and
    ``accel_scale`` per axis (measured = scale · true + offset), and ``gyro_bias_sd_dps`` the
    gyro bias's uncertainty (°/s, None: unknown). The defaults are the identity, so stream
    tables written before these fields existed read as uncalibrated.

    ``gyro_delay_s``: group delay (s) of the IMU's internal gyro low-pass as configured (e.g.
    2.8 ms for an MPU-6050 at 98 Hz bandwidth), which the orientation filter predicts over;
    None when the source does not know it (an imported CSV, a chip whose datasheet gives no
    figure), and then the filter's own default applies.
    """

    name: str
    kind: StreamKind
    rate_hz: float
    chip: str = ""
    t0_s: float = 0.0
    gyro_dps_per_lsb: float = 0.0
    accel_g_per_lsb: float = 0.0
    force_n_per_count: float = 0.0
    force_offset_counts: float = 0.0
    mount_wxyz: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    gyro_bias_dps: tuple[float, float, float] = (0.0, 0.0, 0.0)
    accel_offset_g: tuple[float, float, float] = (0.0, 0.0, 0.0)
    accel_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gyro_bias_sd_dps: float | None = None
    gyro_delay_s: float | None = None

    def __post_init__(self) -> None:
        # Stream tables come back from JSON with lists: tuples keep the info hashable.
        for name in ("mount_wxyz", "gyro_bias_dps", "accel_offset_g", "accel_scale"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(float(v) for v in value))

    @property
    def period_s(self) -> float:
        """Nominal sample period (s)."""
        return 1.0 / self.rate_hz


@dataclass(frozen=True)
class Gap:
    """``count`` expected samples of ``stream`` starting at sample ``start_index`` are missing."""

    stream: str
    start_index: int
    count: int
    reason: GapReason


def _cached_times(block: ImuBlock | ForceBlock) -> npt.NDArray[np.float64]:
    """A block's sample times, computed on first use and kept in the instance (outside its
    fields, so equality and ``replace`` ignore it; ``functools.cached_property`` takes a lock
    per read on Python 3.11)."""
    cache = block.__dict__
    t_s = cache.get("_t_s")
    if t_s is None:
        t_s = cache["_t_s"] = _times(block.info, block.index)
    return t_s


def _times(info: StreamInfo, index: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    t_s = info.t0_s + index.astype(np.float64) / info.rate_hz
    # Computed once per block and shared by every reader (session, engine, sensor monitor):
    # read-only, so no reader can change what the others see.
    t_s.flags.writeable = False
    return t_s


@dataclass(frozen=True)
class ImuBlock:
    """Consecutive delivered samples of one IMU stream (n samples).

    ``index`` (int64, n): sample-clock indices, strictly increasing (holes are gaps).
    ``raw`` (int16, n×6): gx, gy, gz, ax, ay, az chip codes, or None for imported data.
    ``gyro_dps`` (float64, n×3) angular rate in °/s; ``accel_g`` (float64, n×3) specific force in g.
    ``valid`` (bool, n): False for samples that must not be used (e.g. a frozen register after a
    silent chip reset). ``gaps``: gaps found since the previous block of this stream.
    """

    info: StreamInfo
    index: npt.NDArray[np.int64]
    gyro_dps: npt.NDArray[np.float64]
    accel_g: npt.NDArray[np.float64]
    valid: npt.NDArray[np.bool_]
    raw: npt.NDArray[np.int16] | None = None
    gaps: tuple[Gap, ...] = field(default=())

    @property
    def t_s(self) -> npt.NDArray[np.float64]:
        """Sample times (s) from the sample clock (read-only, computed once)."""
        return _cached_times(self)

    def __len__(self) -> int:
        return int(self.index.shape[0])


@dataclass(frozen=True)
class ForceBlock:
    """Consecutive delivered samples of one load-cell stream (n samples).

    ``raw`` (int32, n): signed 24-bit ADC codes, or None for imported data.
    ``force_n`` (float64, n): force in N after tare and scale. ``valid`` (bool, n): False for
    saturated ADC codes and conversions taken while the chip was resetting.
    """

    info: StreamInfo
    index: npt.NDArray[np.int64]
    force_n: npt.NDArray[np.float64]
    valid: npt.NDArray[np.bool_]
    raw: npt.NDArray[np.int32] | None = None
    gaps: tuple[Gap, ...] = field(default=())

    @property
    def t_s(self) -> npt.NDArray[np.float64]:
        """Sample times (s) from the sample clock (read-only, computed once)."""
        return _cached_times(self)

    def __len__(self) -> int:
        return int(self.index.shape[0])


Block = ImuBlock | ForceBlock
