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

import numpy as np
from spinecoach.drivers.bus import I2CBus, read_block
from spinecoach.drivers.imu_config import FifoImu, check_address, pick_option
from spinecoach.drivers.interfaces import Clock, FifoRead
from spinecoach.errors import ConfigError

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
#: The FIFO's byte order (RM §4.31: high byte first).
_BIG_ENDIAN_INT16 = np.dtype(">i2")
RESET_SETTLE_S = 0.100  # wait after DEVICE_RESET (InvenSense reset sequence: 100 ms)
GYRO_STARTUP_S = 0.030  # PS §6.1 gyroscope start-up time, typ. 30 ms
RESET_POLLS = 5

#: FS_SEL -> sensitivity (LSB per deg/s), PS §6.1.
GYRO_SCALES: dict[int, tuple[int, float]] = {
    250: (0, 131.0),
    500: (1, 65.5),
    1000: (2, 32.8),
    2000: (3, 16.4),
}
#: AFS_SEL -> sensitivity (LSB per g), PS §6.2.
ACCEL_SCALES: dict[int, tuple[int, float]] = {
    2: (0, 16384.0),
    4: (1, 8192.0),
    8: (2, 4096.0),
    16: (3, 2048.0),
}
#: Gyro bandwidth (Hz) -> DLPF_CFG, RM §4.3. 256 Hz is DLPF_CFG=0: filter off, gyro at 8 kHz.
DLPF_CONFIGS: dict[int, int] = {256: 0, 188: 1, 98: 2, 42: 3, 20: 4, 10: 5, 5: 6}
#: DLPF_CFG -> the gyro low-pass's group delay (s), RM §4.3's table (0.98 ms with the filter
#: off is the 8 kHz path's own delay). The accelerometer's differs by at most 1 ms (0 ms with
#: the filter off, 2.0 .. 19.0 ms), which the orientation filter's 2 s accelerometer low-pass
#: does not see.
GYRO_DELAY_S: dict[int, float] = {
    0: 0.00098, 1: 0.0019, 2: 0.0028, 3: 0.0048, 4: 0.0083, 5: 0.0134, 6: 0.0186,
}
MAX_RATE_HZ = 1000.0  # the accelerometer's output rate (RM §4.2): faster repeats samples

#: What check_configuration reads from a chip that has just powered up (RM §4: every register
#: 0x00 except PWR_MGMT_1 = 0x40, asleep).
POWER_ON_VALUES = {
    SMPLRT_DIV: 0,
    CONFIG: 0,
    GYRO_CONFIG: 0,
    ACCEL_CONFIG: 0,
    FIFO_EN: 0,
    USER_CTRL: 0,
    PWR_MGMT_1: PWR_SLEEP,
}

#: Identity values of relatives that answer at the same addresses.
KNOWN_IDENTITIES = {
    0x70: "MPU-6500",
    0x71: "MPU-9250",
    0x73: "MPU-9255",
    0x74: "MPU-6515",
    0x98: "ICM-20689",
}


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


class Mpu6050(FifoImu):
    """An MPU-6050 at ``address`` (0x68: AD0 low, 0x69: AD0 high) streaming through its FIFO.

    ``rate_hz``: output data rate, 1000/(1+n) Hz (or 8000/(1+n) Hz up to 1 kHz with
    ``dlpf_hz=256``, the filter off); ``gyro_range_dps``: 250/500/1000/2000;
    ``accel_range_g``: 2/4/8/16; ``dlpf_hz``: gyro low-pass bandwidth 256 (off)/188/98/42/20/10/5.
    """

    CHIP = CHIP
    WHO_AM_I_REGISTER = WHO_AM_I
    WHO_AM_I_VALUE = WHO_AM_I_VALUE
    KNOWN_IDENTITIES = KNOWN_IDENTITIES
    ADDRESS_PIN_HINT = "AD0 pin (low = 0x68, high = 0x69)"
    FRAME_BYTES = FRAME_BYTES

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
        check_address(CHIP, address, ADDRESSES, self.ADDRESS_PIN_HINT)
        dlpf_cfg = pick_option(CHIP, "dlpf_hz", dlpf_hz, DLPF_CONFIGS)
        divider = sample_rate_divider(rate_hz, dlpf_cfg)
        fs_sel, gyro_lsb_per_dps = pick_option(CHIP, "gyro_range_dps", gyro_range_dps, GYRO_SCALES)
        afs_sel, accel_lsb_per_g = pick_option(CHIP, "accel_range_g", accel_range_g, ACCEL_SCALES)
        rate_hz = gyro_output_rate_hz(dlpf_cfg) / (1 + divider)
        super().__init__(
            bus, clock, address, name, rate_hz, 1.0 / gyro_lsb_per_dps, 1.0 / accel_lsb_per_g,
            gyro_delay_s=GYRO_DELAY_S[dlpf_cfg],
        )
        # USER_CTRL's reset bits clear themselves: the running FIFO reads back as FIFO_EN.
        self.expected_registers = {
            SMPLRT_DIV: divider,
            CONFIG: dlpf_cfg,
            GYRO_CONFIG: fs_sel << 3,
            ACCEL_CONFIG: afs_sel << 3,
            FIFO_EN: FIFO_EN_ACCEL_GYRO,
            USER_CTRL: USER_FIFO_EN,
            PWR_MGMT_1: PWR_CLKSEL_PLL_XGYRO,
        }

    def drain(self, max_frames: int | None = None) -> FifoRead:
        """Read every whole frame in the FIFO (one transfer), leaving a partial frame behind;
        at most ``max_frames`` frames when given (the rest stay for the next drain, counted
        in :attr:`frames_left`), so a caller sharing the bus can bound the transfer.

        Three transactions: FIFO_COUNT, the frames, then INT_STATUS. The overflow flag is read
        *after* the frames: it latches any overflow since the previous drain's read, including
        one that happened between the count and the frames (the oldest bytes dropped under the
        reader), so frames are only delivered when it is clear. An overflow (count at
        capacity, or the flag) resets the FIFO and returns ``overflowed=True`` with no frames.
        A drain that finds nothing when frames are overdue checks the configuration, so a
        silent reset is caught within a few sample periods.
        """
        self.stats.drains += 1
        if self._fifo_needs_restart():
            return self._overflowed()
        self.frames_left = 0
        level = read_block(self._bus, self._address, FIFO_COUNTH, 2)
        count = (level[0] << 8) | level[1]
        if count >= FIFO_CAPACITY_BYTES:  # after an overflow the FIFO stays full
            return self._overflowed()
        n_frames = count // FRAME_BYTES
        if max_frames is not None and n_frames > max_frames:
            self.frames_left = n_frames - max_frames
            n_frames = max_frames
        n_bytes = n_frames * FRAME_BYTES
        if n_bytes == 0:
            return self._nothing_ready()
        try:
            data = read_block(self._bus, self._address, FIFO_R_W, n_bytes)
            status = self._bus.read_byte_data(self._address, INT_STATUS)
        except OSError:
            # Bytes may have left the FIFO before the failure, or its overflow flag is unread:
            # the frame boundary is unknown until the FIFO is reset, which the next drain does.
            self._fifo_suspect_until_restarted()
            raise
        if status & INT_FIFO_OFLOW:
            return self._overflowed()
        # The frames as gyro half then accel half (a strided view of the big-endian bytes: the
        # gyro half starts 6 bytes into a frame), made native gx gy gz ax ay az in one copy:
        # no index array, no fancy indexing. Numpy calls cost far more than their work here
        # when the sampler has just woken up with cold caches, so the fewer the better.
        halves = np.ndarray(
            (n_frames, 2, 3), dtype=_BIG_ENDIAN_INT16, buffer=data, offset=6, strides=(12, -6, 2)
        )
        return self._delivered(halves.astype(np.int16).reshape(n_frames, 6))

    def close(self) -> None:
        """Put the chip to sleep (PWR_MGMT_1 SLEEP); an absent chip is not an error here."""
        try:
            self._bus.write_byte_data(self._address, PWR_MGMT_1, PWR_SLEEP)
        except OSError:
            pass

    # -- FifoImu -----------------------------------------------------------------------------
    def _read_configuration(self) -> dict[int, int]:
        # Two reads: SMPLRT_DIV..FIFO_EN in one burst (the registers between are harmless to
        # read), then USER_CTRL and PWR_MGMT_1.
        block = read_block(self._bus, self._address, SMPLRT_DIV, FIFO_EN - SMPLRT_DIV + 1)
        power = read_block(self._bus, self._address, USER_CTRL, 2)
        found = {
            register: block[register - SMPLRT_DIV]
            for register in (SMPLRT_DIV, CONFIG, GYRO_CONFIG, ACCEL_CONFIG, FIFO_EN)
        }
        found[USER_CTRL], found[PWR_MGMT_1] = power[0], power[1]
        return found

    def _configure(self, found: dict[int, int] | None) -> None:
        bus, address, expected = self._bus, self._address, self.expected_registers
        # A chip found exactly at its power-on defaults has just reset itself: skip the
        # DEVICE_RESET and its 100 ms wait (the other sensors on the bus are waiting too).
        if found != POWER_ON_VALUES:
            self._reset_device()
        bus.write_byte_data(address, PWR_MGMT_1, PWR_CLKSEL_PLL_XGYRO)
        # The PLL and gyros need their start-up time before the first frame is worth keeping.
        self._clock.sleep(GYRO_STARTUP_S)
        # SMPLRT_DIV..ACCEL_CONFIG are consecutive: one auto-incrementing block write.
        bus.write_i2c_block_data(
            address,
            SMPLRT_DIV,
            [expected[SMPLRT_DIV], expected[CONFIG], expected[GYRO_CONFIG], expected[ACCEL_CONFIG]],
        )
        # Not read back: without it an overflow still shows as a full FIFO count.
        bus.write_byte_data(address, INT_ENABLE, INT_FIFO_OFLOW)
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
        raise self._reset_timeout("reset")

    def _restart_fifo(self) -> None:
        """Disable + reset the FIFO, enable it again, clear a stale overflow flag."""
        self._bus.write_byte_data(self._address, USER_CTRL, USER_FIFO_RESET)
        self._bus.write_byte_data(self._address, USER_CTRL, USER_FIFO_EN)
        self._fifo_restarted()
        self._bus.read_byte_data(self._address, INT_STATUS)
