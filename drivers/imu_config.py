"""What the two IMU drivers share: their configuration record, option checking, the identity
probe and the :class:`FifoImu` base class.

:class:`ImuConfig` is what a backend reads from its configuration to build a driver with
:func:`open_imu`; the drivers themselves take plain keyword arguments.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.blocks import StreamInfo
from spinecoach.drivers.bus import I2CBus
from spinecoach.drivers.interfaces import Clock, FifoRead
from spinecoach.errors import ConfigError, SensorError, SensorTimeout, WrongChipError

if TYPE_CHECKING:
    from spinecoach.drivers.interfaces import ImuDriver

ImuChip = Literal["mpu6050", "lsm6dsox"]

#: A drain that found nothing: zero frames of gx gy gz ax ay az codes.
EMPTY_RAW: npt.NDArray[np.int16] = np.empty((0, 6), dtype=np.int16)
EMPTY_RAW.flags.writeable = False

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


def _common_options(
    config: ImuConfig, default_address: int, default_rate_hz: float
) -> dict[str, Any]:
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
        raise ConfigError(
            f"{chip} {option} {value!r} is not supported: use one of {allowed}"
        ) from None


def check_address(chip: str, address: int, allowed: tuple[int, ...], pin_hint: str) -> None:
    """Raise :class:`ConfigError` for an address the chip cannot have."""
    if address not in allowed:
        choices = " or ".join(f"0x{a:02X}" for a in allowed)
        raise ConfigError(
            f"{chip} address 0x{address:02X} is impossible: use {choices} ({pin_hint})"
        )


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


@dataclass
class DrainStats:
    """Counters of one IMU driver since construction."""

    drains: int = 0
    frames: int = 0
    overflows: int = 0
    reinitialisations: int = 0


class FifoImu(ABC):
    """What the MPU-6050 and LSM6DSOX drivers share: identity check, stream info, FIFO restart
    bookkeeping, overflow and silent-reset handling, configuration read-back.

    A subclass sets the class constants and implements :meth:`_configure` (everything after
    the identity check), :meth:`_restart_fifo` (which ends with :meth:`_fifo_restarted`) and
    :meth:`_read_configuration`; ``expected_registers`` is what the latter must return.
    """

    CHIP = ""
    WHO_AM_I_REGISTER = 0
    WHO_AM_I_VALUE = 0
    #: Identity values of relatives that answer at the same addresses -> their names.
    KNOWN_IDENTITIES: Mapping[int, str] = {}
    #: What to check on the board when the address or identity is wrong.
    ADDRESS_PIN_HINT = ""
    #: Bytes one frame (gyro + accel) takes in a FIFO read.
    FRAME_BYTES = 12

    def __init__(
        self,
        bus: I2CBus,
        clock: Clock,
        address: int,
        name: str,
        rate_hz: float,
        gyro_dps_per_lsb: float,
        accel_g_per_lsb: float,
        gyro_delay_s: float | None = None,
    ) -> None:
        """``gyro_delay_s``: the configured gyro low-pass's group delay (s), None if the
        datasheet gives none (see :class:`~spinecoach.drivers.blocks.StreamInfo`)."""
        self._bus: I2CBus = bus
        self._clock: Clock = clock
        self._address: int = address
        self._info = StreamInfo(
            name=name,
            kind="imu",
            rate_hz=rate_hz,
            chip=self.CHIP,
            gyro_dps_per_lsb=gyro_dps_per_lsb,
            accel_g_per_lsb=accel_g_per_lsb,
            gyro_delay_s=gyro_delay_s,
        )
        #: The configuration as it must read back (register -> value).
        self.expected_registers: dict[int, int] = {}
        self._started: bool = False
        self._fifo_suspect = False
        self._fifo_started_s: float = 0.0
        self._last_data_s: float = 0.0
        self.stats: DrainStats = DrainStats()
        #: Whole frames a bounded drain (``max_frames``) left in the FIFO.
        self.frames_left: int = 0

    @property
    def info(self) -> StreamInfo:
        """Stream identity and scales; ``t0_s`` is the clock time the FIFO first started."""
        return self._info

    @property
    def address(self) -> int:
        return self._address

    @property
    def fifo_started_s(self) -> float:
        """Clock time (s) of the latest FIFO (re)start: the first frame after it is sampled at
        or after this time (after an overflow or re-initialisation the caller places the next
        frames with it)."""
        return self._fifo_started_s

    def start(self) -> None:
        """Check identity, reset, configure ranges/filter/rate, start the FIFO empty.

        Raises :class:`SensorError` for an absent chip, :class:`WrongChipError` for another
        chip at the address, :class:`SensorTimeout` if the reset never completes.
        """
        self._initialise()
        if not self._started:
            self._info = dataclasses.replace(self._info, t0_s=self._fifo_started_s)
            self._started = True

    def check_configuration(self) -> bool:
        """Read the configuration back; if it is not what :meth:`start` wrote (a brown-out put
        the chip back at its power-on defaults), configure it again and return True."""
        found = self._read_configuration()
        if found == self.expected_registers:
            return False
        self._initialise(found)
        self.stats.reinitialisations += 1
        return True

    # -- for subclasses ----------------------------------------------------------------------
    def _initialise(self, found: dict[int, int] | None = None) -> None:
        """Identity check, then the chip's own configuration; ``found`` is the configuration
        read back when this is a re-initialisation."""
        identity = probe_identity(
            self._bus, self._address, self.WHO_AM_I_REGISTER, self.CHIP, self._info.name
        )
        if identity != self.WHO_AM_I_VALUE:
            relative = self.KNOWN_IDENTITIES.get(identity)
            what = f"an {relative}" if relative else f"not an {self.CHIP}"
            raise WrongChipError(
                f"the chip at 0x{self._address:02X} ({self._info.name}) reports WHO_AM_I "
                f"0x{identity:02X}, {what} "
                f"(an {self.CHIP} reports 0x{self.WHO_AM_I_VALUE:02X}): "
                f"fit an {self.CHIP} or configure the right chip; "
                f"check the {self.ADDRESS_PIN_HINT} "
                "and that no other device shares the address"
            )
        self._configure(found)

    @abstractmethod
    def _configure(self, found: dict[int, int] | None) -> None:
        """Write this chip's configuration registers (``found``: values read back, if any)."""

    @abstractmethod
    def _restart_fifo(self) -> None:
        """Clear and re-enable this chip's FIFO."""

    @abstractmethod
    def _read_configuration(self) -> dict[int, int]:
        """The configuration registers as the chip reports them (register -> value)."""

    def _reset_timeout(self, what: str) -> SensorTimeout:
        return SensorTimeout(
            f"{self.CHIP} ({self._info.name}) at 0x{self._address:02X} did not finish its {what}: "
            "power-cycle the sensor and check its supply voltage"
        )

    def _fifo_suspect_until_restarted(self) -> None:
        """A transfer failed part-way: the FIFO's frame boundary is unknown until it restarts."""
        self._fifo_suspect = True

    def _fifo_needs_restart(self) -> bool:
        return self._fifo_suspect

    def _set_rate_hz(self, rate_hz: float) -> None:
        """The chip's actual output rate (e.g. after reading its clock trim)."""
        self._info = dataclasses.replace(self._info, rate_hz=rate_hz)

    def _fifo_restarted(self) -> None:
        self._fifo_started_s = self._clock.monotonic_s()
        self._last_data_s = self._fifo_started_s
        self._fifo_suspect = False

    def _delivered(self, raw: npt.NDArray[np.int16]) -> FifoRead:
        if raw.shape[0]:
            self._last_data_s = self._clock.monotonic_s()
        self.stats.frames += raw.shape[0]
        return FifoRead(raw=raw)

    def _overflowed(self) -> FifoRead:
        """Restart the FIFO; its content is dropped (the caller records a gap)."""
        self._fifo_suspect = True  # stays set if the restart fails on the bus
        self._restart_fifo()
        self.stats.overflows += 1
        return FifoRead(raw=EMPTY_RAW, overflowed=True)

    def _nothing_ready(self) -> FifoRead:
        """An empty drain; if frames are overdue (more than 5 periods, at least 5 ms), the chip
        may have reset silently: check its configuration."""
        overdue_s = max(5.0 / self._info.rate_hz, 0.005)
        if self._clock.monotonic_s() - self._last_data_s > overdue_s and self.check_configuration():
            return FifoRead(raw=EMPTY_RAW, reinitialised=True)
        return FifoRead(raw=EMPTY_RAW)
