"""Register-level LSM6DSOX simulator (implements :class:`~spinecoach.drivers.sim.bus.SimChip`).

Modelled from datasheet DS12814 and AN5272:

- registers start at their reset values (0x00 except PIN_CTRL = 3Fh, CTRL3_C = 04h with IF_INC
  set, WHO_AM_I = 6Ch, and the factory trim INTERNAL_FREQ_FINE); CTRL3_C SW_RESET and
  :meth:`Lsm6dsoxChip.power_on_reset` restore them (sensors powered down, FIFO in bypass);
- with IF_INC the register address increments in a burst, and a burst on the FIFO output rolls
  back from FIFO_DATA_OUT_Z_H (7Eh) to FIFO_DATA_OUT_TAG (78h): reading the tag byte takes the
  next word out of the FIFO;
- in FIFO or continuous mode, gyroscope and accelerometer words are batched at their BDR (both
  at the same rate, or one of them alone), slot k at ``t_anchor + k / rate`` with TAG_CNT =
  k mod 4; ``t_anchor`` is the latest FIFO start or rate change. The actual rate is
  6667 Hz * (1 + 0.0015 * INTERNAL_FREQ_FINE) / divider. Words are generated lazily, the
  signal called once per access for every slot that came due;
- the FIFO holds :data:`FIFO_CAPACITY_WORDS` words. In continuous mode the oldest words are
  overwritten when it is full and FIFO_OVR_IA (until the FIFO is reset in bypass mode) and
  FIFO_OVR_LATCHED (until FIFO_STATUS2 is read) are set; in FIFO mode collection stops; a burst
  takes the words the FIFO held when it began (placed from its length at ``bus_hz``), words
  arriving during it are stored after it;
- codes are the signal times the datasheet sensitivity, rounded and saturated to int16.

Not modelled: TAG_PARITY (written 0), timestamp/temperature batching, compression, the trigger
modes (they behave as bypass), FIFO_FULL_IA, BDU, and different gyro and accelerometer BDRs
(refused with ValueError). An empty FIFO reads as zero words.
"""

from __future__ import annotations

import math

import numpy as np
from spinecoach.drivers.lsm6dsox import (
    ACCEL_SCALES,
    CTRL1_XL,
    CTRL2_FS_125,
    CTRL2_G,
    CTRL3_C,
    CTRL3_C_RESET,
    CTRL3_IF_INC,
    CTRL3_SW_RESET,
    FIFO_CAPACITY_WORDS,
    FIFO_CTRL1,
    FIFO_CTRL2,
    FIFO_CTRL3,
    FIFO_CTRL4,
    FIFO_DATA_OUT_TAG,
    FIFO_MODE_BYPASS,
    FIFO_MODE_CONTINUOUS,
    FIFO_MODE_FIFO,
    FIFO_STATUS1,
    FIFO_STATUS2,
    GYRO_SCALES,
    INTERNAL_FREQ_FINE,
    ODR_DIVIDERS,
    OUT_TEMP_L,
    OUTX_L_A,
    OUTX_L_G,
    STATUS2_OVR_IA,
    STATUS2_OVR_LATCHED,
    STATUS2_WTM_IA,
    TAG_ACCEL,
    TAG_GYRO,
    WHO_AM_I,
    WHO_AM_I_VALUE,
    WORD_BYTES,
    odr_hz,
)
from spinecoach.drivers.sim.mpu6050_chip import (
    REGISTER_SPACE,
    ROOM_TEMPERATURE_C,
    ImuSignal,
    SimImuChip,
    at_rest,
    quantise,
)

PIN_CTRL = 0x02
PIN_CTRL_RESET = 0x3F
FIFO_DATA_OUT_LAST = FIFO_DATA_OUT_TAG + WORD_BYTES - 1
OUTPUT_END = OUTX_L_A + 6  # OUT_TEMP_L .. OUTZ_H_A
READ_ONLY = frozenset(
    {WHO_AM_I, FIFO_STATUS1, FIFO_STATUS2, INTERNAL_FREQ_FINE, *range(OUT_TEMP_L, OUTPUT_END)}
    | set(range(FIFO_DATA_OUT_TAG, FIFO_DATA_OUT_LAST + 1))
)
SCHEDULE_REGISTERS = frozenset({CTRL1_XL, CTRL2_G, FIFO_CTRL3, FIFO_CTRL4})
GYRO_FULL_SCALES = (250, 500, 1000, 2000)
ACCEL_FULL_SCALES = (2, 16, 4, 8)  # FS_XL 00, 01, 10, 11
TEMP_LSB_PER_C = 256.0  # DS: temperature sensitivity, 0 LSB at 25 degC


class Lsm6dsoxChip(SimImuChip):
    """Simulated LSM6DSOX at ``address`` measuring ``signal`` (default: at rest, z up).

    ``freq_fine``: the chip's INTERNAL_FREQ_FINE trim (int8, 0.15 % per LSB);
    ``accel_first``: the accelerometer word of a slot comes before the gyro word;
    ``second_word_lag_s``: the second word of a slot appears that long after the first (so a
    reader can find a slot half written). ``register_writes`` logs every write.
    """

    def __init__(
        self,
        address: int = 0x6A,
        signal: ImuSignal = at_rest,
        who_am_i: int = WHO_AM_I_VALUE,
        freq_fine: int = 0,
        accel_first: bool = False,
        second_word_lag_s: float = 0.0,
        temperature_c: float = ROOM_TEMPERATURE_C,
    ) -> None:
        super().__init__(address, signal, who_am_i, temperature_c)
        self.freq_fine = freq_fine
        self.accel_first = accel_first
        self.second_word_lag_s = second_word_lag_s
        self._slot_sensors: list[int] = []
        self._slot_columns: list[int] = []
        self._slot_tags = np.zeros((4, 0), dtype=np.uint8)
        self._lsb_per_unit = np.ones(6)
        self._current_word = bytes(WORD_BYTES)
        self._output_anchor_s = 0.0
        self._reset_registers()

    # -- SimChip -----------------------------------------------------------------------------
    def read(self, register: int, length: int, now_s: float) -> bytes:
        increments = bool(self.regs[CTRL3_C] & CTRL3_IF_INC)
        if FIFO_DATA_OUT_TAG <= register <= FIFO_DATA_OUT_LAST:
            return self._read_fifo_output(register, length, increments, now_s)
        regs = self.regs
        pending = self._pending_words(now_s)
        if pending and self._stored_words() + pending > FIFO_CAPACITY_WORDS:
            self._advance(now_s)
            pending = 0
        last = register + (length - 1 if increments else 0)
        if register <= FIFO_STATUS2 and last >= FIFO_STATUS1:
            self._refresh_status(self._stored_words() + pending - self._unwritten_words(now_s))
        if register < OUTPUT_END and last >= OUT_TEMP_L:
            self._refresh_outputs(now_s)
        if not increments:
            out = bytes([regs[register]]) * length
        elif last < REGISTER_SPACE:
            out = bytes(regs[register : last + 1])
        else:
            out = bytes(regs[(register + i) % REGISTER_SPACE] for i in range(length))
        if register <= FIFO_STATUS2 <= last:
            regs[FIFO_STATUS2] &= ~STATUS2_OVR_LATCHED
        return out

    def write(self, register: int, data: bytes, now_s: float) -> None:
        self.register_writes.append((register, bytes(data)))
        self._advance(now_s)
        increments = bool(self.regs[CTRL3_C] & CTRL3_IF_INC)
        for offset, value in enumerate(data):
            target = (register + offset) % REGISTER_SPACE if increments else register
            self._write_register(target, value, now_s)

    @property
    def fifo_mode(self) -> int:
        return self.regs[FIFO_CTRL4] & 0x07

    # -- internals ---------------------------------------------------------------------------
    def _reset_registers(self) -> None:
        regs = self.regs
        regs[:] = bytes(REGISTER_SPACE)
        regs[PIN_CTRL] = PIN_CTRL_RESET
        regs[CTRL3_C] = CTRL3_C_RESET
        regs[WHO_AM_I] = self.who_am_i
        regs[INTERNAL_FREQ_FINE] = self.freq_fine & 0xFF
        self.fifo.clear()
        self._slot_sensors = []
        self._schedule.stop()

    def _write_register(self, register: int, value: int, now_s: float) -> None:
        if register in READ_ONLY:
            return
        if register == CTRL3_C and value & CTRL3_SW_RESET:
            self._reset_registers()
            return
        if register == CTRL3_C:
            value &= 0x7F  # BOOT clears itself; the memory content it reloads is not modelled
        self.regs[register] = value
        if register in (CTRL1_XL, CTRL2_G):
            self._output_anchor_s = now_s
        if register == FIFO_CTRL4 and value & 0x07 == FIFO_MODE_BYPASS:
            self.fifo.clear()
            self.regs[FIFO_STATUS2] &= ~(STATUS2_OVR_IA | STATUS2_OVR_LATCHED)
        if register in SCHEDULE_REGISTERS:
            self._configure_batching(now_s)

    def _configure_batching(self, now_s: float) -> None:
        """Which words each slot carries and at what rate, from ODRs, BDRs and FIFO mode."""
        regs = self.regs
        gyro_bdr, accel_bdr = regs[FIFO_CTRL3] >> 4, regs[FIFO_CTRL3] & 0x0F
        gyro_on = gyro_bdr in ODR_DIVIDERS and regs[CTRL2_G] >> 4 in ODR_DIVIDERS
        accel_on = accel_bdr in ODR_DIVIDERS and regs[CTRL1_XL] >> 4 in ODR_DIVIDERS
        collecting = self.fifo_mode in (FIFO_MODE_FIFO, FIFO_MODE_CONTINUOUS)
        if not collecting or not (gyro_on or accel_on):
            self._slot_sensors = []
            self._schedule.stop()
            return
        if gyro_on and accel_on and gyro_bdr != accel_bdr:
            raise ValueError("the simulator batches gyroscope and accelerometer at one BDR only")
        sensors = ([TAG_GYRO] if gyro_on else []) + ([TAG_ACCEL] if accel_on else [])
        self._slot_sensors = sensors[::-1] if self.accel_first else sensors
        # Columns of gx gy gz ax ay az in word order (configure runs on every range change).
        self._slot_columns = [
            3 * (sensor - TAG_GYRO) + axis for sensor in self._slot_sensors for axis in range(3)
        ]
        self._lsb_per_unit = np.array(
            [self._gyro_lsb_per_dps()] * 3 + [self._accel_lsb_per_g()] * 3
        )
        # Tag byte of each word of a slot, by TAG_CNT (parity not modelled: 0).
        self._slot_tags = np.array(
            [[(sensor << 3) | (count << 1) for sensor in self._slot_sensors] for count in range(4)],
            dtype=np.uint8,
        )
        rate_hz = odr_hz(gyro_bdr if gyro_on else accel_bdr, self._trim())
        self._schedule.restart(now_s, rate_hz)

    def _trim(self) -> int:
        trim = self.regs[INTERNAL_FREQ_FINE]
        return trim - 256 if trim & 0x80 else trim

    def _stored_words(self) -> int:
        return len(self.fifo) // WORD_BYTES

    def _pending_words(self, now_s: float) -> int:
        """Words of the slots that came due but are not generated yet."""
        schedule = self._schedule
        if not schedule.running:
            return 0
        return max(0, schedule.last_due(now_s) - schedule.next_k + 1) * len(self._slot_sensors)

    def _unwritten_words(self, now_s: float) -> int:
        """1 while the second word of the latest slot is still within its lag, else 0."""
        schedule = self._schedule
        if self.second_word_lag_s <= 0.0 or not schedule.running or len(self._slot_sensors) < 2:
            return 0
        latest = schedule.last_due(now_s)
        if latest < 0:
            return 0
        return int(now_s < schedule.anchor_s + latest / schedule.rate_hz + self.second_word_lag_s)

    def _advance(self, now_s: float) -> None:
        """Write the words of every slot due by ``now_s`` into the FIFO."""
        schedule = self._schedule
        if not schedule.running or schedule.last_due(now_s) < schedule.next_k:
            return
        per_slot = len(self._slot_sensors)
        k, skipped = schedule.take_due(now_s, FIFO_CAPACITY_WORDS // per_slot + 2)
        if skipped and self.fifo_mode == FIFO_MODE_CONTINUOUS:
            self.fifo.clear()  # all of it is overwritten by the slots kept
        gyro_dps, accel_g = self.signal(schedule.times(k))
        physical = np.concatenate((gyro_dps, accel_g), axis=1)  # gx gy gz ax ay az
        codes = quantise(physical, self._lsb_per_unit)[:, self._slot_columns].astype(
            "<i2", order="C"
        )
        words = np.empty((k.shape[0], per_slot, WORD_BYTES), dtype=np.uint8)
        words[:, :, 0] = self._slot_tags[k & 3]
        words[:, :, 1:] = codes.view(np.uint8).reshape(k.shape[0], per_slot, 6)
        self._store(words.tobytes())

    def _store(self, data: bytes) -> None:
        fifo = self.fifo
        room = FIFO_CAPACITY_WORDS * WORD_BYTES - len(fifo)
        if len(data) <= room:
            fifo += data
            return
        self.overflows += 1
        if self.fifo_mode == FIFO_MODE_FIFO:
            fifo += data[:room]  # FIFO mode: collection stops when full
            return
        fifo += data
        del fifo[: len(fifo) - FIFO_CAPACITY_WORDS * WORD_BYTES]
        self.regs[FIFO_STATUS2] |= STATUS2_OVR_IA | STATUS2_OVR_LATCHED

    def _refresh_status(self, words: int) -> None:
        regs = self.regs
        diff = min(words, 0x3FF)
        watermark = ((regs[FIFO_CTRL2] & 0x01) << 8) | regs[FIFO_CTRL1]
        flags = regs[FIFO_STATUS2] & (STATUS2_OVR_IA | STATUS2_OVR_LATCHED)
        if watermark and words >= watermark:
            flags |= STATUS2_WTM_IA
        regs[FIFO_STATUS1] = diff & 0xFF
        regs[FIFO_STATUS2] = flags | (diff >> 8)

    def _read_fifo_output(
        self, register: int, length: int, increments: bool, now_s: float
    ) -> bytes:
        began_s = self._burst_began_s(length, now_s)
        self._advance(began_s)
        readable = max(0, self._stored_words() - self._unwritten_words(began_s))
        if register == FIFO_DATA_OUT_TAG and increments:
            # The usual burst: whole words from the tag byte, rolling back at 7Eh.
            n_words = min(math.ceil(length / WORD_BYTES), readable)
            taken = bytes(self.fifo[: n_words * WORD_BYTES])
            del self.fifo[: n_words * WORD_BYTES]
            if taken:
                self._current_word = taken[-WORD_BYTES:]
            stream = bytearray(taken + bytes(max(0, length - len(taken))))[:length]
        else:
            stream = self._read_fifo_bytes(register, length, increments, readable)
        # Words due during the burst stay pending until the next access.
        return bytes(stream)

    def _read_fifo_bytes(
        self, register: int, length: int, increments: bool, readable: int
    ) -> bytearray:
        """Any other FIFO output access, byte by byte: reading the tag takes the next word."""
        stream = bytearray()
        position = register
        for _ in range(length):
            if position == FIFO_DATA_OUT_TAG:
                if readable:
                    self._current_word = bytes(self.fifo[:WORD_BYTES])
                    del self.fifo[:WORD_BYTES]
                    readable -= 1
                else:
                    self._current_word = bytes(WORD_BYTES)
            stream.append(self._current_word[position - FIFO_DATA_OUT_TAG])
            if increments:
                position = FIFO_DATA_OUT_TAG if position == FIFO_DATA_OUT_LAST else position + 1
        return stream

    def _refresh_outputs(self, now_s: float) -> None:
        """Output registers hold the latest sample of each powered sensor, little-endian;
        a powered-down sensor's registers keep their last values."""
        regs = self.regs
        sensors = (
            (CTRL2_G, OUTX_L_G, 0, self._gyro_lsb_per_dps()),
            (CTRL1_XL, OUTX_L_A, 1, self._accel_lsb_per_g()),
        )
        for ctrl, register, which, lsb_per_unit in sensors:
            code = regs[ctrl] >> 4
            if code not in ODR_DIVIDERS:
                continue
            rate_hz = odr_hz(code, self._trim())
            latest = max(0, math.floor((now_s - self._output_anchor_s) * rate_hz + 1e-9))
            values = self.signal(np.array([self._output_anchor_s + latest / rate_hz]))[which]
            codes = quantise(np.asarray(values, dtype=np.float64), lsb_per_unit)
            regs[register : register + 6] = codes.astype("<i2").tobytes()
        temp = np.array([(self.temperature_c - 25.0) * TEMP_LSB_PER_C])
        regs[OUT_TEMP_L : OUT_TEMP_L + 2] = quantise(temp, 1.0).astype("<i2").tobytes()

    def _gyro_lsb_per_dps(self) -> float:
        ctrl = self.regs[CTRL2_G]
        full_scale = 125 if ctrl & CTRL2_FS_125 else GYRO_FULL_SCALES[(ctrl >> 2) & 3]
        return 1000.0 / GYRO_SCALES[full_scale][1]

    def _accel_lsb_per_g(self) -> float:
        return 1000.0 / ACCEL_SCALES[ACCEL_FULL_SCALES[(self.regs[CTRL1_XL] >> 2) & 3]][1]
