"""STMicroelectronics LSM6DSOX driver: 6-axis IMU read through its tagged FIFO.

Reference: "LSM6DSOX iNEMO inertial module" datasheet DS12814 (cited as DS, by register name
and address as the datasheet indexes them) and application note AN5272 (FIFO use).

The FIFO holds *words* of 7 bytes: a tag byte (TAG_SENSOR[7:3], TAG_CNT[2:1], TAG_PARITY[0])
and 6 data bytes (x, y, z as little-endian int16). Gyroscope and accelerometer are batched at
the output data rate, so every time slot brings one gyro word (tag 0x01) and one accelerometer
word (tag 0x02) carrying the same 2-bit TAG_CNT. :meth:`Lsm6dsox.drain` reads whole words from
FIFO_DATA_OUT_TAG in one burst (the address rolls back from 7Eh to 78h, AN5272), pairs each
slot's two words into a ``gx gy gz ax ay az`` frame, and keeps a word whose partner has not
arrived yet for the next drain. Words are never split, but an overrun drops the oldest words,
so a broken pairing or a TAG_CNT that does not step by one is treated like an overflow.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.bus import I2CBus, read_block
from spinecoach.drivers.imu_config import EMPTY_RAW, FifoImu, check_address, pick_option
from spinecoach.drivers.interfaces import Clock, FifoRead
from spinecoach.errors import ConfigError

CHIP = "LSM6DSOX"

# -- registers (DS12814 register description) ---------------------------------------------
FIFO_CTRL1 = 0x07  # WTM[7:0]
FIFO_CTRL2 = 0x08  # WTM8, STOP_ON_WTM, compression
FIFO_CTRL3 = 0x09  # BDR_GY[7:4], BDR_XL[3:0]
FIFO_CTRL4 = 0x0A  # DEC_TS_BATCH, ODR_T_BATCH, FIFO_MODE[2:0]
WHO_AM_I = 0x0F
CTRL1_XL = 0x10  # ODR_XL[7:4], FS_XL[3:2], LPF2_XL_EN
CTRL2_G = 0x11  # ODR_G[7:4], FS_G[3:2], FS_125
CTRL3_C = 0x12  # BOOT, BDU, H_LACTIVE, PP_OD, SIM, IF_INC, -, SW_RESET
OUT_TEMP_L = 0x20  # OUT_TEMP_L/H 20h-21h, OUTX_L_G 22h-27h, OUTX_L_A 28h-2Dh
OUTX_L_G = 0x22
OUTX_L_A = 0x28
FIFO_STATUS1 = 0x3A  # DIFF_FIFO[7:0]
FIFO_STATUS2 = 0x3B  # WTM_IA, OVR_IA, FULL_IA, COUNTER_BDR_IA, OVR_LATCHED, -, DIFF_FIFO[9:8]
INTERNAL_FREQ_FINE = 0x63  # signed trim of the internal clock: 0.15 % per LSB
FIFO_DATA_OUT_TAG = 0x78  # then FIFO_DATA_OUT_X_L .. Z_H at 79h-7Eh

# -- bits ----------------------------------------------------------------------------------
CTRL3_BDU = 0x40
CTRL3_IF_INC = 0x04
CTRL3_SW_RESET = 0x01
CTRL2_FS_125 = 0x02
FIFO_MODE_BYPASS = 0b000  # FIFO off and emptied
FIFO_MODE_FIFO = 0b001  # collects until full, then stops
FIFO_MODE_CONTINUOUS = 0b110  # collects, overwriting the oldest words when full
STATUS2_WTM_IA = 0x80
STATUS2_OVR_IA = 0x40
STATUS2_OVR_LATCHED = 0x08
STATUS2_OVERRUN = STATUS2_OVR_IA | STATUS2_OVR_LATCHED
STATUS2_DIFF_HIGH = 0x03
TAG_GYRO = 0x01  # TAG_SENSOR: gyroscope NC
TAG_ACCEL = 0x02  # TAG_SENSOR: accelerometer NC

# -- chip facts ----------------------------------------------------------------------------
WHO_AM_I_VALUE = 0x6C
ADDRESSES = (0x6A, 0x6B)  # SA0/SDO low / high
WORD_BYTES = 7
#: Usable FIFO depth in words assumed here (the datasheet gives 9 kbytes; DIFF_FIFO has 10
#: bits). Reaching it is treated as an overrun, which is safe if the real depth is larger.
FIFO_CAPACITY_WORDS = 512
CTRL3_C_RESET = CTRL3_IF_INC  # DS: CTRL3_C reset value 04h
SW_RESET_POLLS = 10
SW_RESET_POLL_S = 0.001
#: Time allowed after configuration before the FIFO starts: the filter chain settles over the
#: first samples after an ODR change (DS: samples to discard); 20 ms covers them at >= 104 Hz.
SETTLE_S = 0.020
#: Internal base rate (Hz): the actual ODR is 6667 * (1 + 0.0015 * INTERNAL_FREQ_FINE) / coeff.
BASE_ODR_HZ = 6667.0
FREQ_FINE_STEP = 0.0015

#: ODR / BDR code -> divider of the base rate (DS: CTRL1_XL ODR table, INTERNAL_FREQ_FINE).
ODR_DIVIDERS: dict[int, int] = {
    1: 512,
    2: 256,
    3: 128,
    4: 64,
    5: 32,
    6: 16,
    7: 8,
    8: 4,
    9: 2,
    10: 1,
}
NOMINAL_RATES = "12.5, 26, 52, 104, 208, 416, 833, 1666, 3333, 6667"
#: Full scale (dps) -> (CTRL2_G FS bits incl. FS_125, mdps per LSB), DS Table 2.
GYRO_SCALES: dict[int, tuple[int, float]] = {
    125: (CTRL2_FS_125, 4.375),
    250: (0b00 << 2, 8.75),
    500: (0b01 << 2, 17.50),
    1000: (0b10 << 2, 35.0),
    2000: (0b11 << 2, 70.0),
}
#: Full scale (g) -> (CTRL1_XL FS bits, mg per LSB), DS Table 2 (XL_FS_MODE = 0).
ACCEL_SCALES: dict[int, tuple[int, float]] = {
    2: (0b00 << 2, 0.061),
    16: (0b01 << 2, 0.488),
    4: (0b10 << 2, 0.122),
    8: (0b11 << 2, 0.244),
}

KNOWN_IDENTITIES = {
    0x69: "LSM6DS3",
    0x6A: "LSM6DSL or LSM6DS3TR-C",
    0x6B: "LSM6DSR or ISM330DHCX",
    0x70: "LSM6DSV",
}


#: Tag bytes with TAG_PARITY cleared (the driver does not check parity).
_WITHOUT_PARITY = bytes(value & 0xFE for value in range(256))
_TAG_SEQUENCES: dict[tuple[int, int], bytes] = {}


def _tag_sequence(first_sensor: int, first_count: int) -> bytes:
    """Tag bytes (parity cleared) of a FIFO holding slots of two words, ``first_sensor``'s word
    first, the first slot with TAG_CNT ``first_count``, long enough for a full FIFO."""
    key = (first_sensor, first_count)
    if key not in _TAG_SEQUENCES:
        second_sensor = TAG_ACCEL if first_sensor == TAG_GYRO else TAG_GYRO
        slots = FIFO_CAPACITY_WORDS // 2 + 2
        _TAG_SEQUENCES[key] = bytes(
            (sensor << 3) | (((first_count + slot) % 4) << 1)
            for slot in range(slots)
            for sensor in (first_sensor, second_sensor)
        )
    return _TAG_SEQUENCES[key]


def odr_hz(code: int, freq_fine: int = 0) -> float:
    """Actual output data rate (Hz) of ODR/BDR ``code`` with the trim ``freq_fine`` (int8)."""
    return BASE_ODR_HZ * (1.0 + FREQ_FINE_STEP * freq_fine) / ODR_DIVIDERS[code]


def odr_code(rate_hz: float) -> int:
    """The ODR code whose untrimmed rate is within 5 % of ``rate_hz`` (nominal names such as
    833 or 12.5 select it), or :class:`ConfigError`."""
    for code in ODR_DIVIDERS:
        if abs(odr_hz(code) - rate_hz) <= 0.05 * odr_hz(code):
            return code
    raise ConfigError(
        f"{CHIP} rate_hz {rate_hz:g} is not an output data rate: use one of {NOMINAL_RATES}"
    )


class Lsm6dsox(FifoImu):
    """An LSM6DSOX at ``address`` (0x6A: SA0 low, 0x6B: SA0 high) streaming through its FIFO.

    ``rate_hz``: output data rate (12.5 .. 6667 Hz; the actual rate, e.g. 833.375 Hz, trimmed
    by the chip's INTERNAL_FREQ_FINE, is in :attr:`info` after :meth:`start`);
    ``gyro_range_dps``: 125/250/500/1000/2000; ``accel_range_g``: 2/4/8/16.
    The datasheet gives no group delay for the gyro's output chain, so :attr:`info` leaves
    ``gyro_delay_s`` unknown and the orientation filter's default applies.
    """

    CHIP = CHIP
    WHO_AM_I_REGISTER = WHO_AM_I
    WHO_AM_I_VALUE = WHO_AM_I_VALUE
    KNOWN_IDENTITIES = KNOWN_IDENTITIES
    ADDRESS_PIN_HINT = "SA0/SDO pin (low = 0x6A, high = 0x6B)"
    FRAME_BYTES = 2 * WORD_BYTES

    def __init__(
        self,
        bus: I2CBus,
        clock: Clock,
        address: int = 0x6A,
        name: str = "trunk",
        rate_hz: float = 833.0,
        gyro_range_dps: int = 2000,
        accel_range_g: int = 8,
    ) -> None:
        check_address(CHIP, address, ADDRESSES, self.ADDRESS_PIN_HINT)
        self._odr_code = odr_code(rate_hz)
        gyro_bits, mdps_per_lsb = pick_option(CHIP, "gyro_range_dps", gyro_range_dps, GYRO_SCALES)
        accel_bits, mg_per_lsb = pick_option(CHIP, "accel_range_g", accel_range_g, ACCEL_SCALES)
        rate_hz = odr_hz(self._odr_code)
        super().__init__(
            bus, clock, address, name, rate_hz, mdps_per_lsb / 1000.0, mg_per_lsb / 1000.0
        )
        odr_bits = self._odr_code << 4
        self.expected_registers = {
            FIFO_CTRL3: self._odr_code << 4 | self._odr_code,  # BDR_GY = BDR_XL = ODR
            FIFO_CTRL4: FIFO_MODE_CONTINUOUS,
            CTRL1_XL: odr_bits | accel_bits,
            CTRL2_G: odr_bits | gyro_bits,
            CTRL3_C: CTRL3_BDU | CTRL3_IF_INC,
        }
        #: A word whose slot partner was not in the FIFO yet (tag byte + 6 data bytes).
        self._waiting_word = b""
        #: TAG_CNT of the last delivered frame (None right after a FIFO restart).
        self._last_tag_count: int | None = None

    def drain(self, max_frames: int | None = None) -> FifoRead:
        """Read every word in the FIFO in one transfer and pair them into frames (at most
        ``max_frames`` frames' words when given; the rest wait, see :attr:`frames_left`).

        Three transactions: FIFO_STATUS1/2 (level and flags), the words, then FIFO_STATUS2
        again: FIFO_OVR_LATCHED latches an overrun since the first read, i.e. one that dropped
        words under the reader, so frames are only delivered when it is clear. An overrun
        (flags, FIFO at capacity, or words that do not pair up slot by slot) restarts the FIFO
        and returns ``overflowed=True`` with no frames. A drain that finds nothing when frames
        are overdue checks the configuration (silent reset).
        """
        self.stats.drains += 1
        if self._fifo_needs_restart():
            return self._overflowed()
        self.frames_left = 0
        status = read_block(self._bus, self._address, FIFO_STATUS1, 2)
        words = ((status[1] & STATUS2_DIFF_HIGH) << 8) | status[0]
        if status[1] & STATUS2_OVERRUN or words >= FIFO_CAPACITY_WORDS:
            return self._overflowed()
        if max_frames is not None and words > 2 * max_frames:
            # Two words (gyro, accel) a frame.
            self.frames_left = (words - 2 * max_frames) // 2
            words = 2 * max_frames
        if words == 0:
            return self._nothing_ready()
        try:
            data = read_block(self._bus, self._address, FIFO_DATA_OUT_TAG, words * WORD_BYTES)
            after = self._bus.read_byte_data(self._address, FIFO_STATUS2)
        except OSError:
            # A failure part-way may have consumed words, or the overrun flag is unread: the
            # pairing is unknown until the FIFO restarts, which the next drain does.
            self._fifo_suspect_until_restarted()
            raise
        if after & STATUS2_OVERRUN:
            return self._overflowed()
        raw = self._pair(self._waiting_word + data)
        if raw is None:
            return self._overflowed()
        return self._delivered(raw)

    def close(self) -> None:
        """Power both sensors down (ODR 0); an absent chip is not an error here."""
        try:
            self._bus.write_i2c_block_data(self._address, CTRL1_XL, [0, 0])
        except OSError:
            pass

    # -- FifoImu -----------------------------------------------------------------------------
    def _read_configuration(self) -> dict[int, int]:
        fifo = read_block(self._bus, self._address, FIFO_CTRL3, 2)
        ctrl = read_block(self._bus, self._address, CTRL1_XL, 3)
        return {
            FIFO_CTRL3: fifo[0],
            FIFO_CTRL4: fifo[1],
            CTRL1_XL: ctrl[0],
            CTRL2_G: ctrl[1],
            CTRL3_C: ctrl[2],
        }

    def _configure(self, found: dict[int, int] | None) -> None:
        # The software reset takes microseconds, so it is done on every (re)initialisation.
        bus, address, expected = self._bus, self._address, self.expected_registers
        bus.write_byte_data(address, CTRL3_C, CTRL3_C_RESET | CTRL3_SW_RESET)
        for _ in range(SW_RESET_POLLS):
            self._clock.sleep(SW_RESET_POLL_S)
            if not bus.read_byte_data(address, CTRL3_C) & CTRL3_SW_RESET:
                break
        else:
            raise self._reset_timeout("software reset")
        bus.write_byte_data(address, CTRL3_C, expected[CTRL3_C])
        trim = bus.read_byte_data(address, INTERNAL_FREQ_FINE)
        self._set_rate_hz(odr_hz(self._odr_code, trim - 256 if trim & 0x80 else trim))
        # CTRL1_XL and CTRL2_G are consecutive: one auto-incrementing (IF_INC) block write.
        bus.write_i2c_block_data(address, CTRL1_XL, [expected[CTRL1_XL], expected[CTRL2_G]])
        bus.write_byte_data(address, FIFO_CTRL3, expected[FIFO_CTRL3])
        self._clock.sleep(SETTLE_S)
        self._restart_fifo()

    def _restart_fifo(self) -> None:
        """Bypass mode empties the FIFO; continuous mode starts it again (AN5272)."""
        self._bus.write_byte_data(self._address, FIFO_CTRL4, FIFO_MODE_BYPASS)
        self._bus.write_byte_data(self._address, FIFO_CTRL4, self.expected_registers[FIFO_CTRL4])
        self._waiting_word = b""
        self._last_tag_count = None
        self._fifo_restarted()

    def _pair(self, data: bytes) -> npt.NDArray[np.int16] | None:
        """Frames from whole FIFO words; None unless the words are gyro/accel pairs whose
        TAG_CNT steps by one from slot to slot."""
        n_pairs = len(data) // (2 * WORD_BYTES)
        self._waiting_word = data[2 * n_pairs * WORD_BYTES :]
        if n_pairs == 0:
            return EMPTY_RAW
        data = data[: 2 * n_pairs * WORD_BYTES]
        tags = data[0::WORD_BYTES].translate(_WITHOUT_PARITY)
        first_sensor, first_count = tags[0] >> 3, (tags[0] >> 1) & 0x03
        if first_sensor not in (TAG_GYRO, TAG_ACCEL):
            return None
        if self._last_tag_count is not None and first_count != (self._last_tag_count + 1) % 4:
            return None  # a slot is missing: words were overwritten
        # Comparing the tag bytes with the one sequence they can have checks the pairing and
        # the slot counter for every word at C speed.
        if tags != _tag_sequence(first_sensor, first_count)[: 2 * n_pairs]:
            return None
        self._last_tag_count = (first_count + n_pairs - 1) % 4
        words = np.frombuffer(data, dtype=np.uint8).reshape(n_pairs, 2, WORD_BYTES)
        values = words[:, :, 1:].copy().view("<i2")  # (n, 2, 3): the slot's two words
        if first_sensor == TAG_ACCEL:
            values = values[:, ::-1]
        return values.reshape(n_pairs, 6).astype(np.int16)
