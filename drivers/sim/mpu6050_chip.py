"""Register-level MPU-6050 simulator (implements :class:`~spinecoach.drivers.sim.bus.SimChip`).

Modelled from RM-MPU-6000A-00 rev 4.2 (RM) and PS-MPU-6000A-00 rev 3.4 (PS):

- registers start at their reset values (RM §4: 0x00 except PWR_MGMT_1 = 0x40, asleep, and
  WHO_AM_I = 0x68); DEVICE_RESET and :meth:`Mpu6050Chip.power_on_reset` restore them;
- burst accesses auto-increment the register address, except on FIFO_R_W (RM §4.31);
- while awake, samples are taken at ``t = t_anchor + k / rate`` (k = 0, 1, ...) where the rate
  is gyro output rate / (1 + SMPLRT_DIV) and ``t_anchor`` is the latest wake, FIFO enable or
  reset, or rate change; the FIFO receives the FIFO_EN-selected data registers of each sample
  in ascending register order, big-endian, generated lazily on the next access (one call of the
  signal per access for every sample that came due);
- the FIFO holds 1024 bytes (PS §7.17). On overflow the *oldest bytes* are dropped and new
  data keeps being written (RM §4.31), so the byte count stays at 1024 and the frame boundary
  moves; FIFO_OFLOW_INT is set in INT_STATUS when FIFO_OFLOW_EN is set in INT_ENABLE (the
  stricter reading of RM §4.16) and cleared by reading INT_STATUS;
- FIFO_COUNT is latched when FIFO_COUNTH is read (RM §4.30); reading an empty FIFO returns the
  last byte read (RM §4.31); a FIFO burst takes what the FIFO held when the burst began (placed
  from its length at ``bus_hz``), samples arriving during it are stored after it;
- the FIFO bytes of the coming samples are computed ``FRAMES_AHEAD`` at a time (one call of the
  signal per block instead of per access; every value is the same as computed one by one, the
  signal being a function of each sample time alone) and recomputed whenever the schedule,
  the full-scale ranges, FIFO_EN or the signal change;
- codes are the signal times the datasheet sensitivity of the configured full scale, rounded
  and saturated to int16;
- the DLPF is modelled by its group delay (RM §4.3, ``GYRO_DELAY_S`` for the configured
  DLPF_CFG): a signal that can be delayed (the rig's, :meth:`ImuSignal.delayed`) is sampled
  as it was that long before each sample time; one that cannot (a test's function) as given.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.mpu6050 import (
    ACCEL_CONFIG,
    ACCEL_SCALES,
    ACCEL_XOUT_H,
    CONFIG,
    FIFO_CAPACITY_BYTES,
    FIFO_COUNTH,
    FIFO_EN,
    FIFO_EN_ACCEL,
    FIFO_EN_TEMP,
    FIFO_EN_XG,
    FIFO_EN_YG,
    FIFO_EN_ZG,
    FIFO_R_W,
    GYRO_CONFIG,
    GYRO_DELAY_S,
    GYRO_SCALES,
    GYRO_XOUT_H,
    INT_DATA_RDY,
    INT_ENABLE,
    INT_FIFO_OFLOW,
    INT_STATUS,
    PWR_DEVICE_RESET,
    PWR_MGMT_1,
    PWR_SLEEP,
    SMPLRT_DIV,
    USER_CTRL,
    USER_FIFO_EN,
    USER_FIFO_RESET,
    WHO_AM_I,
    WHO_AM_I_VALUE,
    gyro_output_rate_hz,
)

FloatArray = npt.NDArray[np.float64]

#: The physical signal at the sensor in its own axes: ``signal(t_s)`` for n times (s) returns
#: ``(gyro_dps, accel_g)``, each (n, 3).
ImuSignal = Callable[[FloatArray], tuple[FloatArray, FloatArray]]

#: Register addresses of the simulated map (0x00..0x75 used, the rest reads 0).
REGISTER_SPACE = 256
READ_ONLY = frozenset(
    {INT_STATUS, *range(ACCEL_XOUT_H, GYRO_XOUT_H + 6), FIFO_COUNTH, FIFO_COUNTH + 1, WHO_AM_I}
)
#: Writes to these change the sample schedule.
SCHEDULE_REGISTERS = frozenset({SMPLRT_DIV, CONFIG, FIFO_EN, USER_CTRL, PWR_MGMT_1})
ROOM_TEMPERATURE_C = 25.0
#: FIFO frames computed ahead in one call of the signal (a second at 1 kHz: the dozens of
#: numpy calls of one computation cost most right after the sampler wakes up, so rarely).
FRAMES_AHEAD = 1024


def at_rest(t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
    """A sensor lying still with its z axis up: no rotation, 1 g along +z."""
    n = t_s.shape[0]
    accel = np.zeros((n, 3))
    accel[:, 2] = 1.0
    return np.zeros((n, 3)), accel


def quantise(values: FloatArray, lsb_per_unit: float | FloatArray) -> npt.NDArray[np.int16]:
    """Chip codes: ``values * lsb_per_unit`` rounded to nearest, saturated to int16."""
    scaled = np.rint(values * lsb_per_unit)
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    return scaled.astype(np.int16)


class SampleSchedule:
    """Sample k of a run is taken at ``anchor_s + k / rate_hz``; tracks which are still due."""

    def __init__(self) -> None:
        self.running = False
        self.anchor_s = 0.0
        self.rate_hz = 1.0
        self.next_k = 0

    def restart(self, now_s: float, rate_hz: float) -> None:
        self.running = True
        self.anchor_s = now_s
        self.rate_hz = rate_hz
        self.next_k = 0

    def stop(self) -> None:
        self.running = False

    def last_due(self, now_s: float) -> int:
        """Index of the latest sample taken at or before ``now_s`` (-1 before the first)."""
        # The small epsilon keeps a sample that falls exactly on now_s despite rounding.
        return math.floor((now_s - self.anchor_s) * self.rate_hz + 1e-9)

    def take_due(self, now_s: float, keep: int) -> tuple[npt.NDArray[np.int64], int]:
        """Indices of the samples that came due since the last call (at most the last
        ``keep``) and how many earlier ones were passed over."""
        if not self.running:
            return np.empty(0, dtype=np.int64), 0
        last = self.last_due(now_s)
        first = self.next_k
        if last < first:
            return np.empty(0, dtype=np.int64), 0
        self.next_k = last + 1
        skipped = max(0, last - first + 1 - keep)
        return np.arange(first + skipped, last + 1, dtype=np.int64), skipped

    def times(self, k: npt.NDArray[np.int64]) -> FloatArray:
        """Sample times (s) of indices ``k`` of the current run."""
        return self.anchor_s + k / self.rate_hz


class SimImuChip(ABC):
    """What both IMU simulators share: address, identity, the measured signal, a register file,
    the FIFO bytes, the sample schedule, the write log and the silent power-on reset."""

    def __init__(
        self, address: int, signal: ImuSignal, who_am_i: int, temperature_c: float
    ) -> None:
        self.address = address
        self.signal = signal
        self.who_am_i = who_am_i
        self.temperature_c = temperature_c
        #: Every write as (first register, bytes), for tests.
        self.register_writes: list[tuple[int, bytes]] = []
        #: How many times the FIFO overflowed.
        self.overflows = 0
        self.regs = bytearray(REGISTER_SPACE)
        self.fifo = bytearray()
        self._schedule = SampleSchedule()
        #: SCL rate (Hz) the chip assumes to place a burst read in time (see
        #: :meth:`_burst_began_s`); the simulated bus's default.
        self.bus_hz = 400_000.0

    def power_on_reset(self, now_s: float) -> None:
        """A silent brown-out: every register back to its reset value (the chip asleep or
        powered down, the FIFO off and empty); the data registers keep nothing."""
        self._advance(now_s)
        self._reset_registers()

    def catch_up(self, now_s: float) -> None:
        """Store every sample due by ``now_s`` in the FIFO now (the chip otherwise does it on
        the next access that needs it); for tests that look into :attr:`fifo`."""
        self._advance(now_s)

    def _burst_began_s(self, length: int, now_s: float) -> float:
        """When a FIFO burst of ``length`` bytes that ends at ``now_s`` began.

        The simulated bus hands the chip the time at the end of a transfer. A long FIFO read
        empties the FIFO faster than samples arrive, so samples are stored up to the start of
        the burst, the burst takes what was there, and the samples that arrived during it are
        stored after: storing them all first would overflow a nearly full FIFO that the real
        chip never overflows. (1 register byte + the data, 2 address bytes; 9 clocks a byte.)
        """
        return now_s - ((length + 3) * 9 + 2) / self.bus_hz

    @abstractmethod
    def _advance(self, now_s: float) -> None:
        """Sample and fill the FIFO up to virtual time ``now_s`` (s)."""

    @abstractmethod
    def _reset_registers(self) -> None:
        """Put every register back to its datasheet reset value."""


class Mpu6050Chip(SimImuChip):
    """Simulated MPU-6050 at ``address`` measuring ``signal`` (default: at rest, z up).

    ``who_am_i`` lets tests impersonate a relative (0x70: MPU-6500); ``clock_error_ppm`` makes
    the chip's sample clock run fast (+) or slow (-); ``frame_write_s`` is how long the chip
    takes to write one frame into the FIFO byte by byte (0: at once), so that a reader can see a
    partial frame. ``register_writes`` logs every write as (first register, bytes).
    """

    def __init__(
        self,
        address: int = 0x68,
        signal: ImuSignal = at_rest,
        who_am_i: int = WHO_AM_I_VALUE,
        clock_error_ppm: float = 0.0,
        temperature_c: float = ROOM_TEMPERATURE_C,
        frame_write_s: float = 0.0,
    ) -> None:
        super().__init__(address, signal, who_am_i, temperature_c)
        self.frame_write_s = frame_write_s
        self.clock_error_ppm = clock_error_ppm
        self._last_fifo_byte = 0
        self._columns: list[int] = []
        #: FIFO bytes of samples ``_ahead_k0`` onwards of the run described by ``_ahead_key``.
        self._ahead = b""
        self._ahead_k0 = 0
        self._ahead_key: tuple[object, ...] = ()
        self._reset_registers()

    # -- SimChip -----------------------------------------------------------------------------
    def read(self, register: int, length: int, now_s: float) -> bytes:
        if register == FIFO_R_W:
            return self._pop_fifo(length, now_s)
        regs = self.regs
        # Status and level reads need only the number of samples that came due; they are
        # generated when the FIFO is read (or would overflow), once per drain.
        pending = self._pending_bytes(now_s)
        if pending:
            if len(self.fifo) + pending > FIFO_CAPACITY_BYTES:
                self._advance(now_s)
                pending = 0
            elif regs[INT_ENABLE] & INT_DATA_RDY:
                regs[INT_STATUS] |= INT_DATA_RDY
        end = register + length
        if register <= FIFO_COUNTH < end:
            count = len(self.fifo) + pending - self._unwritten_bytes(now_s)
            regs[FIFO_COUNTH] = count >> 8
            regs[FIFO_COUNTH + 1] = count & 0xFF
        if register < GYRO_XOUT_H + 6 and end > ACCEL_XOUT_H:
            self._refresh_data_registers(now_s)
        if end <= REGISTER_SPACE:
            out = bytes(regs[register:end])
        else:
            out = bytes(regs[(register + i) % REGISTER_SPACE] for i in range(length))
        if register <= INT_STATUS < end:
            regs[INT_STATUS] = 0
        return out

    def write(self, register: int, data: bytes, now_s: float) -> None:
        self.register_writes.append((register, bytes(data)))
        self._advance(now_s)
        for offset, value in enumerate(data):
            self._write_register((register + offset) % REGISTER_SPACE, value, now_s)

    @property
    def sample_rate_hz(self) -> float:
        """Current output rate of the chip's own sample clock (Hz)."""
        base_hz = gyro_output_rate_hz(self.regs[CONFIG] & 0x07)
        return base_hz / (1 + self.regs[SMPLRT_DIV]) * (1.0 + self.clock_error_ppm * 1e-6)

    @property
    def asleep(self) -> bool:
        return bool(self.regs[PWR_MGMT_1] & PWR_SLEEP)

    @property
    def fifo_writing(self) -> bool:
        regs = self.regs
        return bool(regs[USER_CTRL] & USER_FIFO_EN and self._columns
                    and not regs[PWR_MGMT_1] & PWR_SLEEP)

    # -- internals ---------------------------------------------------------------------------
    def _reset_registers(self) -> None:
        self.regs[:] = bytes(REGISTER_SPACE)
        self.regs[PWR_MGMT_1] = PWR_SLEEP
        self.regs[WHO_AM_I] = self.who_am_i
        self.fifo.clear()
        self._columns = []
        self._schedule.stop()

    def _write_register(self, register: int, value: int, now_s: float) -> None:
        if register in READ_ONLY:
            return
        if register == FIFO_R_W:
            self._append_fifo(bytes([value]))
            return
        if register == PWR_MGMT_1 and value & PWR_DEVICE_RESET:
            self._reset_registers()
            return
        if register == USER_CTRL:
            if value & USER_FIFO_RESET and not value & USER_FIFO_EN:  # RM §4.27
                self.fifo.clear()
            value &= ~0x07  # FIFO_RESET, I2C_MST_RESET, SIG_COND_RESET clear themselves
        self.regs[register] = value
        if register == FIFO_EN:
            self._columns = self._fifo_columns(value)
        if register in SCHEDULE_REGISTERS:
            if self.asleep:
                self._schedule.stop()
            else:
                self._schedule.restart(now_s, self.sample_rate_hz)

    @staticmethod
    def _fifo_columns(fifo_en: int) -> list[int]:
        """Columns of [ax ay az temp gx gy gz] written to the FIFO, in register order."""
        columns: list[int] = []
        if fifo_en & FIFO_EN_ACCEL:
            columns += [0, 1, 2]
        if fifo_en & FIFO_EN_TEMP:
            columns.append(3)
        for bit, column in ((FIFO_EN_XG, 4), (FIFO_EN_YG, 5), (FIFO_EN_ZG, 6)):
            if fifo_en & bit:
                columns.append(column)
        return columns

    def _codes(self, t_s: FloatArray) -> npt.NDArray[np.int16]:
        """(n, 7) codes ax ay az temp gx gy gz for samples at ``t_s``."""
        gyro_dps, accel_g = self._filtered_signal()(t_s)
        gyro_lsb = GYRO_SCALES[(250, 500, 1000, 2000)[(self.regs[GYRO_CONFIG] >> 3) & 3]][1]
        accel_lsb = ACCEL_SCALES[(2, 4, 8, 16)[(self.regs[ACCEL_CONFIG] >> 3) & 3]][1]
        physical = np.empty((t_s.shape[0], 7))
        physical[:, 0:3] = accel_g
        physical[:, 3] = (self.temperature_c - 36.53) * 340.0  # RM §4.18, already in LSB
        physical[:, 4:7] = gyro_dps
        scale = np.array([accel_lsb] * 3 + [1.0] + [gyro_lsb] * 3)
        return quantise(physical, scale)

    def _filtered_signal(self) -> ImuSignal:
        """The signal behind the configured DLPF (its group delay), if it can be delayed."""
        delayed = getattr(self.signal, "delayed", None)
        if delayed is None:
            return self.signal
        # DLPF_CFG 7 is reserved; the gyro then runs at 8 kHz as with the filter off (RM §4.2).
        return delayed(GYRO_DELAY_S.get(self.regs[CONFIG] & 0x07, GYRO_DELAY_S[0]))

    # :attr:`fifo_writing` and :meth:`SampleSchedule.last_due` are written out in the next two
    # methods: they run on every register access of a drain.
    def _pending_bytes(self, now_s: float) -> int:
        """FIFO bytes of the samples that came due but are not generated yet."""
        schedule = self._schedule
        if not schedule.running:
            return 0
        regs = self.regs
        if not (regs[USER_CTRL] & USER_FIFO_EN and self._columns
                and not regs[PWR_MGMT_1] & PWR_SLEEP):
            return 0
        last = math.floor((now_s - schedule.anchor_s) * schedule.rate_hz + 1e-9)
        due = last - schedule.next_k + 1
        return due * 2 * len(self._columns) if due > 0 else 0

    def _advance(self, now_s: float) -> None:
        """Write every sample due by ``now_s`` into the FIFO (if it is collecting)."""
        schedule = self._schedule
        if not schedule.running:
            return
        last = math.floor((now_s - schedule.anchor_s) * schedule.rate_hz + 1e-9)
        if last < schedule.next_k:
            return
        regs = self.regs
        if not (regs[USER_CTRL] & USER_FIFO_EN and self._columns
                and not regs[PWR_MGMT_1] & PWR_SLEEP):
            schedule.next_k = last + 1
            return
        frame_bytes = 2 * len(self._columns)
        # Only the samples that can still be in a full FIFO are generated.
        keep = FIFO_CAPACITY_BYTES // frame_bytes + 2
        first = max(schedule.next_k, last + 1 - keep)
        if first > schedule.next_k:
            # Everything older is overwritten anyway; appending the kept samples overflows.
            self.fifo.clear()
        schedule.next_k = last + 1
        self._append_fifo(self._frame_bytes(first, last + 1, frame_bytes))
        if self.regs[INT_ENABLE] & INT_DATA_RDY:
            self.regs[INT_STATUS] |= INT_DATA_RDY

    def _frame_bytes(self, first: int, stop: int, frame_bytes: int) -> bytes:
        """FIFO bytes of samples ``first``..``stop - 1`` of the current run."""
        schedule, regs = self._schedule, self.regs
        key = (schedule.anchor_s, schedule.rate_hz, regs[GYRO_CONFIG], regs[ACCEL_CONFIG],
               regs[CONFIG], tuple(self._columns), self.signal, self.temperature_c)
        k0 = self._ahead_k0
        if key != self._ahead_key or first < k0 or (stop - k0) * frame_bytes > len(self._ahead):
            k = np.arange(first, max(stop, first + FRAMES_AHEAD), dtype=np.int64)
            frames = self._codes(schedule.times(k))[:, self._columns].astype(">i2")
            self._ahead, self._ahead_k0, self._ahead_key = frames.tobytes(), first, key
            k0 = first
        return self._ahead[(first - k0) * frame_bytes : (stop - k0) * frame_bytes]

    def _append_fifo(self, data: bytes) -> None:
        fifo = self.fifo
        fifo += data
        excess = len(fifo) - FIFO_CAPACITY_BYTES
        if excess > 0:
            del fifo[:excess]
            self._mark_overflow()

    def _mark_overflow(self) -> None:
        self.overflows += 1
        if self.regs[INT_ENABLE] & INT_FIFO_OFLOW:
            self.regs[INT_STATUS] |= INT_FIFO_OFLOW

    def _unwritten_bytes(self, now_s: float) -> int:
        """Bytes of the latest due frame the chip has not written yet (see ``frame_write_s``)."""
        schedule = self._schedule
        if self.frame_write_s <= 0.0 or not schedule.running or not self.fifo_writing:
            return 0
        latest = schedule.last_due(now_s)
        if latest < 0:
            return 0
        frame_bytes = 2 * len(self._columns)
        age_s = now_s - (schedule.anchor_s + latest / schedule.rate_hz)
        written = min(frame_bytes, math.floor(age_s / self.frame_write_s * frame_bytes))
        return max(0, frame_bytes - max(written, 0))

    def _pop_fifo(self, length: int, now_s: float) -> bytes:
        began_s = self._burst_began_s(length, now_s)
        self._advance(began_s)
        fifo = self.fifo
        unwritten = self._unwritten_bytes(began_s) if self.frame_write_s > 0.0 else 0
        readable = max(0, len(fifo) - unwritten)
        taken = bytes(fifo[: min(length, readable)])
        del fifo[: len(taken)]  # samples due during the burst stay pending until the next access
        if taken:
            self._last_fifo_byte = taken[-1]
        if len(taken) < length:
            taken += bytes([self._last_fifo_byte]) * (length - len(taken))
        return taken

    def _refresh_data_registers(self, now_s: float) -> None:
        """Data registers hold the latest sample while awake and freeze while asleep."""
        schedule = self._schedule
        if self.asleep or not schedule.running:
            return
        latest = schedule.last_due(now_s)
        if latest < 0:
            return
        codes = self._codes(np.array([schedule.anchor_s + latest / schedule.rate_hz]))[0]
        self.regs[ACCEL_XOUT_H : GYRO_XOUT_H + 6] = codes.astype(">i2").tobytes()
