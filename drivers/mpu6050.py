"""InvenSense MPU-6050 driver: 6-axis IMU read through its 1024-byte FIFO.

References: "MPU-6000 and MPU-6050 Register Map and Descriptions", RM-MPU-6000A-00 rev 4.2
(cited as RM §x.y) and "MPU-6000 and MPU-6050 Product Specification", PS-MPU-6000A-00 rev 3.4
(cited as PS §x.y).

FIFO frame layout (12 bytes, big-endian int16). FIFO_EN selects accelerometer and the three gyro
axes, no temperature; the chip writes the selected data registers in ascending register order
(RM §4.31), so a frame is ``ax ay az gx gy gz`` (ACCEL_XOUT_H 0x3B.. then GYRO_XOUT_H 0x43..).
:meth:`Mpu6050.drain` reorders it to the interface's ``gx gy gz ax ay az``.

The FIFO is a byte stream: the chip drops its *oldest bytes* on overflow (RM §4.31) and 1024
is not a multiple of 12, so after an overflow the frame boundary is lost. The driver therefore
drains whole frames only, and on any sign of overflow resets the FIFO and discards what it held.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spinecoach.drivers.blocks import StreamInfo
from spinecoach.drivers.bus import I2CBus, read_block
from spinecoach.drivers.imu_config import (
    EMPTY_RAW,
    DrainStats,
    check_address,
    may_have_overrun,
    pick_option,
    probe_identity,
)
from spinecoach.drivers.interfaces import Clock, FifoRead
from spinecoach.errors import ConfigError, SensorTimeout, WrongChipError

CHIP = "MPU-6050"

# -- registers (RM-MPU-6000A-00 rev 4.2) ---------------------------------------------------
SMPLRT_DIV = 0x19  # RM §4.2  sample rate = gyro output rate / (1 + SMPLRT_DIV)
CONFIG = 0x1A  # RM §4.3  EXT_SYNC_SET[5:3], DLPF_CFG[2:0]
GYRO_CONFIG = 0x1B  # RM §4.4  FS_SEL[4:3]
ACCEL_CONFIG = 0x1C  # RM §4.5  AFS_SEL[4:3]
FIFO_EN = 0x23  # RM §4.6  which data registers are written to the FIFO
INT_ENABLE = 0x38  # RM §4.15
INT_STATUS = 0x3A  # RM §4.16 cleared by reading it
ACCEL_XOUT_H = 0x3B  # RM §4.17 (0x3B..0x40)
TEMP_OUT_H = 0x41  # RM §4.18 (0x41..0x42)
GYRO_XOUT_H = 0x43  # RM §4.19 (0x43..0x48)
SIGNAL_PATH_RESET = 0x68  # RM §4.26
USER_CTRL = 0x6A  # RM §4.27
PWR_MGMT_1 = 0x6B  # RM §4.28
PWR_MGMT_2 = 0x6C  # RM §4.29
FIFO_COUNTH = 0x72  # RM §4.30 (FIFO_COUNTL = 0x73; reading COUNTH latches both)
FIFO_R_W = 0x74  # RM §4.31 FIFO data port (no address auto-increment)
WHO_AM_I = 0x75  # RM §4.32

# -- bits ----------------------------------------------------------------------------------
PWR_DEVICE_RESET = 0x80  # RM §4.28 bit 7, self-clearing
PWR_SLEEP = 0x40  # RM §4.28 bit 6 (set at power-on)
PWR_CLKSEL_PLL_XGYRO = 0x01  # RM §4.28 CLKSEL=1: PLL on the X gyro (PS §6.3 recommends it)
USER_FIFO_EN = 0x40  # RM §4.27 bit 6
USER_FIFO_RESET = 0x04  # RM §4.27 bit 2, self-clearing; only while FIFO_EN = 0
FIFO_EN_TEMP = 0x80  # RM §4.6
FIFO_EN_XG = 0x40
FIFO_EN_YG = 0x20
FIFO_EN_ZG = 0x10
FIFO_EN_ACCEL = 0x08
FIFO_EN_ACCEL_GYRO = FIFO_EN_XG | FIFO_EN_YG | FIFO_EN_ZG | FIFO_EN_ACCEL
INT_FIFO_OFLOW = 0x10  # RM §4.15 FIFO_OFLOW_EN / RM §4.16 FIFO_OFLOW_INT (bit 4)
INT_DATA_RDY = 0x01  # RM §4.15/§4.16 bit 0

# -- chip facts ----------------------------------------------------------------------------
WHO_AM_I_VALUE = 0x68  # RM §4.32: bits 6:1 of the address; AD0 is not reflected
ADDRESSES = (0x68, 0x69)  # PS §9.2: AD0 low / high
FIFO_CAPACITY_BYTES = 1024  # PS §7.17
FRAME_BYTES = 12
RESET_SETTLE_S = 0.100  # wait after DEVICE_RESET (InvenSense reset sequence: 100 ms)
GYRO_STARTUP_S = 0.030  # PS §6.1 gyroscope start-up time, typ. 30 ms
RESET_POLLS = 5

#: FS_SEL -> sensitivity (LSB per deg/s), PS §6.1.
GYRO_SCALES: dict[int, tuple[int, float]] = {250: (0, 131.0), 500: (1, 65.5), 1000: (2, 32.8), 2000: (3, 16.4)}
#: AFS_SEL -> sensitivity (LSB per g), PS §6.2.
ACCEL_SCALES: dict[int, tuple[int, float]] = {2: (0, 16384.0), 4: (1, 8192.0), 8: (2, 4096.0), 16: (3, 2048.0)}
#: Gyro bandwidth (Hz) -> DLPF_CFG, RM §4.3. 256 Hz is DLPF_CFG=0: filter off, gyro at 8 kHz.
DLPF_CONFIGS: dict[int, int] = {256: 0, 188: 1, 98: 2, 42: 3, 20: 4, 10: 5, 5: 6}
MAX_RATE_HZ = 1000.0  # the accelerometer's output rate (RM §4.2): faster repeats samples

#: What check_configuration reads from a chip that has just powered up (RM §3: every register
#: 0x00 except PWR_MGMT_1 = 0x40, asleep).
POWER_ON_VALUES = {
    SMPLRT_DIV: 0,
    CONFIG: 0,
    GYRO_CONFIG: 0,
    ACCEL_CONFIG: 0,
    FIFO_EN: 0,
    INT_ENABLE: 0,
    USER_CTRL: 0,
    PWR_MGMT_1: PWR_SLEEP,
}

#: Identity values of relatives that answer at the same addresses.
KNOWN_IDENTITIES = {0x70: "MPU-6500", 0x71: "MPU-9250", 0x73: "MPU-9255", 0x74: "MPU-6515", 0x98: "ICM-20689"}


def gyro_output_rate_hz(dlpf_cfg: int) -> float:
    """Gyro output rate (Hz): 8 kHz with the DLPF off (DLPF_CFG 0 or 7), else 1 kHz (RM §4.2)."""
    return 8000.0 if dlpf_cfg in (0, 7) else 1000.0


def sample_rate_divider(rate_hz: float, dlpf_cfg: int) -> int:
    """SMPLRT_DIV giving ``rate_hz`` exactly, or :class:`ConfigError` saying which rates work."""
    base_hz = gyro_output_rate_hz(dlpf_cfg)
    divider = round(base_hz / rate_hz) - 1 if rate_hz > 0 else -1
    if (
        0 <= divider <= 255
        and abs(base_hz / (1 + divider) - rate_hz) <= 1e-6 * rate_hz
        and rate_hz <= MAX_RATE_HZ
    ):
        return divider
    raise ConfigError(
        f"{CHIP} rate_hz {rate_hz:g} is not available with this DLPF setting: use "
        f"{base_hz:g}/(1+n) Hz for n = 0..255, at most {MAX_RATE_HZ:g} Hz "
        "(e.g. 1000, 500, 250, 200, 100)"
    )


class Mpu6050:
    """An MPU-6050 at ``address`` (0x68: AD0 low, 0x69: AD0 high) streaming through its FIFO.

    ``rate_hz``: output data rate, 1000/(1+n) Hz (or 8000/(1+n) Hz up to 1 kHz with
    ``dlpf_hz=256``, the filter off); ``gyro_range_dps``: 250/500/1000/2000;
    ``accel_range_g``: 2/4/8/16; ``dlpf_hz``: gyro low-pass bandwidth 256 (off)/188/98/42/20/10/5.
    """

    def __init__(
        self,
        bus: I2CBus,
        clock: Clock,
        address: int = 0x68,
        name: str = "trunk",
        rate_hz: float = 1000.0,
        gyro_range_dps: int = 2000,
        accel_range_g: int = 8,
        dlpf_hz: int = 98,
    ) -> None:
        check_address(CHIP, address, ADDRESSES, "AD0 pin low = 0x68, high = 0x69")
        self._bus = bus
        self._clock = clock
        self._address = address
        self._dlpf_cfg = pick_option(CHIP, "dlpf_hz", dlpf_hz, DLPF_CONFIGS)
        self._divider = sample_rate_divider(rate_hz, self._dlpf_cfg)
        fs_sel, gyro_lsb_per_dps = pick_option(CHIP, "gyro_range_dps", gyro_range_dps, GYRO_SCALES)
        afs_sel, accel_lsb_per_g = pick_option(CHIP, "accel_range_g", accel_range_g, ACCEL_SCALES)
        self._rate_hz = gyro_output_rate_hz(self._dlpf_cfg) / (1 + self._divider)
        #: Configuration as it must read back (register -> value); USER_CTRL's reset bits
        #: clear themselves so the enabled FIFO reads back as FIFO_EN alone.
        self.expected_registers: dict[int, int] = {
            SMPLRT_DIV: self._divider,
            CONFIG: self._dlpf_cfg,
            GYRO_CONFIG: fs_sel << 3,
            ACCEL_CONFIG: afs_sel << 3,
            FIFO_EN: FIFO_EN_ACCEL_GYRO,
            INT_ENABLE: INT_FIFO_OFLOW,
            USER_CTRL: USER_FIFO_EN,
            PWR_MGMT_1: PWR_CLKSEL_PLL_XGYRO,
        }
        self._info = StreamInfo(
            name=name,
            kind="imu",
            rate_hz=self._rate_hz,
            chip=CHIP,
            gyro_dps_per_lsb=1.0 / gyro_lsb_per_dps,
            accel_g_per_lsb=1.0 / accel_lsb_per_g,
        )
        self._started = False
        self._fifo_suspect = False
        self._fifo_started_s = 0.0
        self._last_data_s = 0.0
        self.stats = DrainStats()

    # -- ImuDriver ---------------------------------------------------------------------------
    @property
    def info(self) -> StreamInfo:
        """Stream identity and scales; ``t0_s`` is the clock time the FIFO first started."""
        return self._info

    @property
    def address(self) -> int:
        return self._address

    @property
    def fifo_started_s(self) -> float:
        """Clock time (s) of the latest FIFO (re)start: the first frame after it is sampled
        at or after this time (after an overflow or re-initialisation the caller places the
        next frames with it)."""
        return self._fifo_started_s

    def start(self) -> None:
        """Check identity, reset, wake on the gyro PLL, configure, enable and clear the FIFO.

        Raises :class:`SensorError` for an absent chip, :class:`WrongChipError` for another
        chip at the address, :class:`SensorTimeout` if the reset never completes.
        """
        self._initialise()
        if not self._started:
            self._info = dataclasses.replace(self._info, t0_s=self._fifo_started_s)
            self._started = True

    def drain(self) -> FifoRead:
        """Read every whole frame in the FIFO (one transfer), leaving a partial frame behind.

        Three transactions: INT_STATUS, FIFO_COUNT, then the frames. An overflow (flag set,
        count at capacity, or so little room that the chip may have overwritten bytes during
        this drain) resets the FIFO and returns ``overflowed=True`` with no frames. A drain
        that finds nothing when frames are overdue checks the configuration, so a silent
        reset is caught within a few sample periods.
        """
        self.stats.drains += 1
        if self._fifo_suspect:
            return self._overflowed()
        t_begin = self._clock.monotonic_s()
        status = self._bus.read_byte_data(self._address, INT_STATUS)
        level = read_block(self._bus, self._address, FIFO_COUNTH, 2)
        count = (level[0] << 8) | level[1]
        if status & INT_FIFO_OFLOW or count >= FIFO_CAPACITY_BYTES:
            return self._overflowed()
        n_bytes = count - count % FRAME_BYTES
        if n_bytes == 0:
            return self._nothing_ready()
        try:
            data = read_block(self._bus, self._address, FIFO_R_W, n_bytes)
        except OSError:
            # Some bytes may have left the FIFO before the failure: its frame boundary is
            # unknown until it is reset, which the next drain does.
            self._fifo_suspect = True
            raise
        t_end = self._clock.monotonic_s()
        if may_have_overrun(count, FIFO_CAPACITY_BYTES, FRAME_BYTES, self._rate_hz, t_end - t_begin):
            return self._overflowed()
        self._last_data_s = t_end
        frames = np.frombuffer(data, dtype=">i2").reshape(-1, 6)
        raw = frames[:, [3, 4, 5, 0, 1, 2]].astype(np.int16)
        self.stats.frames += raw.shape[0]
        return FifoRead(raw=raw)

    def check_configuration(self) -> bool:
        """Read the configuration back; if it is not what :meth:`start` wrote (a brown-out put
        the chip back at its power-on defaults: asleep, FIFO off), start again and return True."""
        block = read_block(self._bus, self._address, SMPLRT_DIV, FIFO_EN - SMPLRT_DIV + 1)
        power = read_block(self._bus, self._address, USER_CTRL, 2)
        int_enable = self._bus.read_byte_data(self._address, INT_ENABLE)
        found = {
            SMPLRT_DIV: block[0],
            CONFIG: block[CONFIG - SMPLRT_DIV],
            GYRO_CONFIG: block[GYRO_CONFIG - SMPLRT_DIV],
            ACCEL_CONFIG: block[ACCEL_CONFIG - SMPLRT_DIV],
            FIFO_EN: block[FIFO_EN - SMPLRT_DIV],
            INT_ENABLE: int_enable,
            USER_CTRL: power[0],
            PWR_MGMT_1: power[1],
        }
        if found == self.expected_registers:
            return False
        # A chip found exactly at its power-on defaults has just reset itself: skip the
        # DEVICE_RESET and its 100 ms wait (the other sensors on the bus are waiting too).
        self._initialise(reset=found != POWER_ON_VALUES)
        self.stats.reinitialisations += 1
        return True

    def close(self) -> None:
        """Put the chip to sleep (PWR_MGMT_1 SLEEP); an absent chip is not an error here."""
        try:
            self._bus.write_byte_data(self._address, PWR_MGMT_1, PWR_SLEEP)
        except OSError:
            pass

    # -- internals ---------------------------------------------------------------------------
    def _initialise(self, reset: bool = True) -> None:
        identity = probe_identity(self._bus, self._address, WHO_AM_I, CHIP, self._info.name)
        if identity != WHO_AM_I_VALUE:
            raise WrongChipError(self._wrong_chip_message(identity))
        bus, address = self._bus, self._address
        if reset:
            self._reset_device()
        bus.write_byte_data(address, PWR_MGMT_1, PWR_CLKSEL_PLL_XGYRO)
        # The PLL and gyros need their start-up time before the first frame is worth keeping.
        self._clock.sleep(GYRO_STARTUP_S)
        expected = self.expected_registers
        # SMPLRT_DIV..ACCEL_CONFIG are consecutive: one auto-incrementing block write.
        bus.write_i2c_block_data(
            address,
            SMPLRT_DIV,
            [expected[SMPLRT_DIV], expected[CONFIG], expected[GYRO_CONFIG], expected[ACCEL_CONFIG]],
        )
        bus.write_byte_data(address, INT_ENABLE, expected[INT_ENABLE])
        bus.write_byte_data(address, FIFO_EN, expected[FIFO_EN])
        self._restart_fifo()

    def _reset_device(self) -> None:
        bus, address = self._bus, self._address
        bus.write_byte_data(address, PWR_MGMT_1, PWR_DEVICE_RESET)
        self._clock.sleep(RESET_SETTLE_S)
        for _ in range(RESET_POLLS):
            if not bus.read_byte_data(address, PWR_MGMT_1) & PWR_DEVICE_RESET:
                return
            self._clock.sleep(RESET_SETTLE_S)
        raise SensorTimeout(
            f"{CHIP} ({self._info.name}) at 0x{address:02X} did not finish its reset: "
            "power-cycle the sensor and check its supply voltage"
        )

    def _restart_fifo(self) -> None:
        """Disable + reset the FIFO, enable it again, clear a stale overflow flag."""
        self._bus.write_byte_data(self._address, USER_CTRL, USER_FIFO_RESET)
        self._bus.write_byte_data(self._address, USER_CTRL, USER_FIFO_EN)
        self._fifo_started_s = self._clock.monotonic_s()
        self._last_data_s = self._fifo_started_s
        self._bus.read_byte_data(self._address, INT_STATUS)
        self._fifo_suspect = False

    def _overflowed(self) -> FifoRead:
        self._fifo_suspect = True  # stays set if the restart fails on the bus
        self._restart_fifo()
        self.stats.overflows += 1
        return FifoRead(raw=EMPTY_RAW, overflowed=True)

    def _nothing_ready(self) -> FifoRead:
        overdue_s = max(5.0 / self._rate_hz, 0.005)
        if self._clock.monotonic_s() - self._last_data_s > overdue_s and self.check_configuration():
            return FifoRead(raw=EMPTY_RAW, reinitialised=True)
        return FifoRead(raw=EMPTY_RAW)

    def _wrong_chip_message(self, identity: int) -> str:
        relative = KNOWN_IDENTITIES.get(identity)
        what = f"an {relative}" if relative else "not an MPU-6050"
        return (
            f"the chip at 0x{self._address:02X} ({self._info.name}) reports WHO_AM_I 0x{identity:02X}, "
            f"{what} (an MPU-6050 reports 0x68): fit an MPU-6050 or configure the right chip; "
            "check the AD0 pin (low = 0x68, high = 0x69) and that no other device shares the address"
        )
