"""What the two IMU drivers share: their configuration record, option checking, the identity
probe, drain statistics and the overrun bound.

:class:`ImuConfig` is what a backend reads from its configuration to build a driver with
:func:`open_imu`; the drivers themselves take plain keyword arguments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from spinecoach.errors import ConfigError, SensorError

if TYPE_CHECKING:
    from spinecoach.drivers.bus import I2CBus
    from spinecoach.drivers.interfaces import Clock, ImuDriver

ImuChip = Literal["mpu6050", "lsm6dsox"]

#: A drain that found nothing: zero frames of gx gy gz ax ay az codes.
EMPTY_RAW: npt.NDArray[np.int16] = np.empty((0, 6), dtype=np.int16)
EMPTY_RAW.flags.writeable = False

#: Relative tolerance of a chip's sample clock used when bounding how many samples can have
#: arrived in a time window (MPU-6050 PLL: +-1 % over temperature; LSM6DSOX ODR: +-1 % typ.).
#: 5 % leaves room for both without making the bound useless.
SAMPLE_CLOCK_TOLERANCE = 0.05

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class ImuConfig:
    """One IMU on the bus.

    ``chip``: "mpu6050" or "lsm6dsox"; ``address``: 7-bit I2C address (None: the chip's
    default, 0x68 / 0x6A); ``name``: placement ("trunk", "pelvis", "implement");
    ``rate_hz``: output data rate; ``gyro_range_dps`` / ``accel_range_g``: full scales;
    ``dlpf_hz``: MPU-6050 gyro low-pass bandwidth (ignored by the LSM6DSOX, whose filter
    follows the ODR).
    """

    chip: ImuChip = "mpu6050"
    address: int | None = None
    name: str = "trunk"
    rate_hz: float | None = None
    gyro_range_dps: int = 2000
    accel_range_g: int = 8
    dlpf_hz: int = 98


def open_imu(bus: I2CBus, clock: Clock, config: ImuConfig) -> ImuDriver:
    """Build (not start) the driver described by ``config``."""
    # Imported here: the driver modules import this one.
    if config.chip == "mpu6050":
        from spinecoach.drivers.mpu6050 import Mpu6050

        return Mpu6050(bus, clock, dlpf_hz=config.dlpf_hz, **_common_options(config, 0x68, 1000.0))
    if config.chip == "lsm6dsox":
        from spinecoach.drivers.lsm6dsox import Lsm6dsox

        return Lsm6dsox(bus, clock, **_common_options(config, 0x6A, 833.0))
    raise ConfigError(f"unknown IMU chip {config.chip!r}: use 'mpu6050' or 'lsm6dsox'")


def _common_options(config: ImuConfig, default_address: int, default_rate_hz: float) -> dict[str, Any]:
    return {
        "address": default_address if config.address is None else config.address,
        "name": config.name,
        "rate_hz": default_rate_hz if config.rate_hz is None else config.rate_hz,
        "gyro_range_dps": config.gyro_range_dps,
        "accel_range_g": config.accel_range_g,
    }


def pick_option(chip: str, option: str, value: K, table: Mapping[K, V]) -> V:
    """``table[value]`` or a :class:`ConfigError` listing the values the chip supports."""
    try:
        return table[value]
    except (KeyError, TypeError):
        allowed = ", ".join(str(key) for key in table)
        raise ConfigError(f"{chip} {option} {value!r} is not supported: use one of {allowed}") from None


def check_address(chip: str, address: int, allowed: tuple[int, ...], pin_hint: str) -> None:
    """Raise :class:`ConfigError` for an address the chip cannot have."""
    if address not in allowed:
        choices = " or ".join(f"0x{a:02X}" for a in allowed)
        raise ConfigError(f"{chip} address 0x{address:02X} is impossible: use {choices} ({pin_hint})")


def probe_identity(bus: I2CBus, address: int, register: int, chip: str, name: str) -> int:
    """Read the identity register; an absent chip becomes a :class:`SensorError` saying what
    to check (a bus with retries has already retried the transient errors)."""
    try:
        return bus.read_byte_data(address, register)
    except OSError as error:
        raise SensorError(
            f"no {chip} ({name}) answers at 0x{address:02X}: check the wiring, power and pull-ups, "
            f"and that `i2cdetect -y 1` lists 0x{address:02X}"
        ) from error


def may_have_overrun(
    bytes_seen: int, capacity_bytes: int, frame_bytes: int, rate_hz: float, window_s: float
) -> bool:
    """True when the FIFO may have overrun during a drain.

    ``bytes_seen`` were in the FIFO when its level was read; ``window_s`` is the time from the
    start of the status read to the end of the data read. If the samples that can have arrived
    in that window (rate with :data:`SAMPLE_CLOCK_TOLERANCE`, plus one) would not have fitted,
    the chip may have dropped its oldest bytes under the read, so the data cannot be trusted.
    """
    arrivals = math.ceil(max(window_s, 0.0) * rate_hz * (1.0 + SAMPLE_CLOCK_TOLERANCE)) + 1
    return bytes_seen + arrivals * frame_bytes > capacity_bytes


@dataclass
class DrainStats:
    """Counters of one IMU driver since construction."""

    drains: int = 0
    frames: int = 0
    overflows: int = 0
    reinitialisations: int = 0
