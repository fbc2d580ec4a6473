"""Register-level simulator of the Nuvoton NAU7802 24-bit bridge ADC.

It implements :class:`~spinecoach.drivers.sim.bus.SimChip`, so the real
:class:`~spinecoach.drivers.nau7802.Nau7802` driver runs against it unchanged. Modelled:

- reset values and ``RR`` register reset; power-up: ``PUR`` reads 1 ``power_up_s`` (about
  200 µs, datasheet §9.1) after ``PUD`` is set;
- conversions at the programmed rate (CTRL2.CRS) while PUD, PUA, PUR and CS are set and no
  calibration runs: conversion k is ready at ``t_start + (k + 1) / rate``. ``CR`` is set while a
  conversion is unread and cleared when ADCO is read; a conversion overwritten by the next one
  before it was read is counted in :attr:`missed_conversions`;
- the force signal ``signal(t_s) -> force_n`` (evaluated in vectorised chunks) becomes codes:
  ``gain * (counts_per_n * force_n + offset_counts) + adc_offset`` plus optional white noise,
  rounded and clipped to the 24-bit rails. ``counts_per_n`` and ``offset_counts`` are input
  referred (PGA gain 1) so the programmed gain multiplies them, as the PGA does;
  ``adc_offset_counts`` is the converter's own offset, removed by a successful internal
  offset calibration;
- ``clock_error``: the internal RC oscillator's fractional error; every conversion and the
  calibration run that much faster (positive) or slower than nominal;
- internal calibration (CTRL2.CALS, about 4 conversion periods), the first
  ``fail_calibrations`` of which end with ``CAL_ERR`` set;
- :meth:`power_on_reset` (a brown-out: every register back to its reset value, conversions
  stop) and a :attr:`register_writes` log of every byte written, for exact write-sequence tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.nau7802 import (
    ADC_FULL_SCALE_MAX,
    ADC_FULL_SCALE_MIN,
    CTRL1_GAINS_MASK,
    CTRL2_CAL_ERR,
    CTRL2_CALS,
    CTRL2_CRS_MASK,
    CTRL2_CRS_SHIFT,
    DEVICE_REVISION_ID,
    PU_CTRL_CR,
    PU_CTRL_CS,
    PU_CTRL_PUA,
    PU_CTRL_PUD,
    PU_CTRL_PUR,
    PU_CTRL_RR,
    RATE_CODES,
    REG_ADCO_B0,
    REG_ADCO_B2,
    REG_CTRL1,
    REG_CTRL2,
    REG_DEVICE_REV,
    REG_GCAL1_B3,
    REG_PU_CTRL,
)

ForceSignal = Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]

#: Conversion rate (SPS) of each CTRL2.CRS code; the reserved codes 4-6 behave as 320 SPS.
_RATE_BY_CODE: dict[int, float] = {code: float(sps) for sps, code in RATE_CODES.items()}

#: Conversions computed per vectorised chunk of the force signal.
CHUNK_CONVERSIONS = 2048

#: Internal offset calibration lasts this many conversion periods (≈ 344 ms at 10 SPS).
CALIBRATION_PERIODS = 4.0

_REGISTER_COUNT = 0x20


def _reset_registers(revision: int) -> bytearray:
    """Register file after a power-on or RR reset (datasheet §11 reset values)."""
    regs = bytearray(_REGISTER_COUNT)
    # GCAL1 resets to 0x00800000: unity gain calibration.
    regs[REG_GCAL1_B3 + 1] = 0x80
    regs[REG_DEVICE_REV] = revision
    return regs


def no_force(t_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """An unloaded load cell: 0 N at every time."""
    return np.zeros_like(t_s)


@dataclass(frozen=True)
class RegisterWrite:
    """One byte written to the chip: virtual time (s), register address, value."""

    t_s: float
    register: int
    value: int


class Nau7802Chip:
    """A simulated NAU7802 at ``address`` (see the module docstring for the model)."""

    def __init__(
        self,
        signal: ForceSignal = no_force,
        counts_per_n: float = 17.11,
        offset_counts: float = 0.0,
        adc_offset_counts: float = 0.0,
        noise_counts: float = 0.0,
        fail_calibrations: int = 0,
        power_up_s: float = 200e-6,
        clock_error: float = 0.0,
        address: int = 0x2A,
        revision: int = DEVICE_REVISION_ID,
        seed: int = 0,
    ) -> None:
        self.address = address
        self.signal = signal
        self.counts_per_n = counts_per_n
        self.offset_counts = offset_counts
        self.adc_offset_counts = adc_offset_counts
        self.noise_counts = noise_counts
        self.fail_calibrations = fail_calibrations
        self.power_up_s = power_up_s
        self.clock_error = clock_error
        self.revision = revision
        self._rng = np.random.default_rng(seed)
        self.register_writes: list[RegisterWrite] = []
        #: Conversions overwritten before they were read (ground truth for gap accounting).
        self.missed_conversions = 0
        #: Conversions read through ADCO.
        self.conversions_read = 0
        #: Completed calibrations and how many of them failed.
        self.calibrations = 0
        self.calibration_errors = 0
        self.resets = 0
        self._power_on(0.0)

    # -- state ------------------------------------------------------------------------------
    def _power_on(self, now_s: float) -> None:
        self._regs = _reset_registers(self.revision)
        self._pud_at_s: float | None = None
        self._cal_end_s: float | None = None
        self._calibrated = False
        self._running = False
        self._t_start_s = 0.0
        self._rate_sps = 10.0
        self._gain = 1
        self._last_read_k = -1
        self._last_code = 0
        self._chunk_k0 = 0
        #: Codes of conversions ``_chunk_k0`` onwards, as Python ints (read one at a time).
        self._chunk: list[int] = []

    def power_on_reset(self, now_s: float) -> None:
        """A silent brown-out at ``now_s``: every register back to its reset value."""
        self.resets += 1
        self._power_on(now_s)

    @property
    def rate_sps(self) -> float:
        """Programmed conversion rate (SPS)."""
        return _RATE_BY_CODE.get((self._regs[REG_CTRL2] & CTRL2_CRS_MASK) >> CTRL2_CRS_SHIFT, 320.0)

    @property
    def gain(self) -> int:
        """Programmed PGA gain."""
        return 1 << (self._regs[REG_CTRL1] & CTRL1_GAINS_MASK)

    @property
    def converting(self) -> bool:
        """True while conversions are scheduled (powered, CS set, not calibrating)."""
        return self._running

    def _pur_at_s(self) -> float | None:
        return None if self._pud_at_s is None else self._pud_at_s + self.power_up_s

    def _finish_calibration(self, now_s: float) -> None:
        if self._cal_end_s is None or now_s < self._cal_end_s:
            return
        end_s = self._cal_end_s
        self._cal_end_s = None
        self.calibrations += 1
        self._regs[REG_CTRL2] &= ~CTRL2_CALS & 0xFF
        if self.fail_calibrations > 0:
            self.fail_calibrations -= 1
            self.calibration_errors += 1
            self._regs[REG_CTRL2] |= CTRL2_CAL_ERR
        else:
            self._regs[REG_CTRL2] &= ~CTRL2_CAL_ERR & 0xFF
            self._calibrated = True
        self._schedule(end_s)

    def _schedule(self, now_s: float) -> None:
        """Restart the conversion cycle if the configuration allows converting."""
        pu = self._regs[REG_PU_CTRL]
        needed = PU_CTRL_PUD | PU_CTRL_PUA | PU_CTRL_CS
        pur_at = self._pur_at_s()
        self._running = pu & needed == needed and pur_at is not None and self._cal_end_s is None
        if self._running:
            assert pur_at is not None
            self._t_start_s = max(now_s, pur_at)
            self._rate_sps = self.rate_sps * (1.0 + self.clock_error)
            self._gain = self.gain
            self._last_read_k = -1
            self._chunk = []

    def _ready_index(self, now_s: float) -> int:
        """Index of the newest completed conversion at ``now_s`` (-1 if none)."""
        if self._cal_end_s is not None:
            self._finish_calibration(now_s)
        if not self._running:
            return -1
        return int((now_s - self._t_start_s) * self._rate_sps) - 1

    def _code(self, k: int) -> int:
        offset = k - self._chunk_k0
        if offset < 0 or offset >= len(self._chunk):
            self._fill_chunk(k)
            offset = 0
        return self._chunk[offset]

    def _fill_chunk(self, k0: int) -> None:
        k = np.arange(k0, k0 + CHUNK_CONVERSIONS, dtype=np.float64)
        t_s = self._t_start_s + (k + 1.0) / self._rate_sps
        force_n = np.asarray(self.signal(t_s), dtype=np.float64)
        codes = self._gain * (self.counts_per_n * force_n + self.offset_counts)
        if not self._calibrated:
            codes = codes + self.adc_offset_counts
        if self.noise_counts > 0:
            codes = codes + self._rng.normal(0.0, self.noise_counts, codes.shape)
        np.clip(np.rint(codes), ADC_FULL_SCALE_MIN, ADC_FULL_SCALE_MAX, out=codes)
        self._chunk = codes.astype(np.int64).tolist()
        self._chunk_k0 = k0

    # -- SimChip ----------------------------------------------------------------------------
    def read(self, register: int, length: int, now_s: float) -> bytes:
        # Fast paths for the two reads of every poll: the status byte and the 24-bit result.
        if register == REG_PU_CTRL and length == 1:
            return bytes((self._pu_ctrl(now_s),))
        if register == REG_ADCO_B2 and length == 3:
            return (self._read_conversion(now_s) & 0xFFFFFF).to_bytes(3, "big")
        end = register + length
        out = bytearray(self._regs[r] if r < _REGISTER_COUNT else 0 for r in range(register, end))
        if register <= REG_PU_CTRL < end:
            out[REG_PU_CTRL - register] = self._pu_ctrl(now_s)
        if register <= REG_CTRL2 < end:
            self._finish_calibration(now_s)
            out[REG_CTRL2 - register] = self._regs[REG_CTRL2]
        if register <= REG_ADCO_B0 and end > REG_ADCO_B2:
            code = self._read_conversion(now_s) & 0xFFFFFF
            for i, reg in enumerate((REG_ADCO_B2, REG_ADCO_B2 + 1, REG_ADCO_B0)):
                if register <= reg < end:
                    out[reg - register] = (code >> (16 - 8 * i)) & 0xFF
        return bytes(out)

    def _pu_ctrl(self, now_s: float) -> int:
        # :meth:`_pur_at_s` and :meth:`_ready_index` written out: read on every poll.
        value = self._regs[REG_PU_CTRL]
        pud_at = self._pud_at_s
        if pud_at is not None and now_s >= pud_at + self.power_up_s:
            value |= PU_CTRL_PUR
        if self._cal_end_s is not None:
            self._finish_calibration(now_s)
        # Not running: no conversion (``_last_read_k`` is never below -1).
        if (
            self._running
            and int((now_s - self._t_start_s) * self._rate_sps) - 1 > self._last_read_k
        ):
            value |= PU_CTRL_CR
        return value

    def _read_conversion(self, now_s: float) -> int:
        k = self._ready_index(now_s)
        if k > self._last_read_k:
            self.missed_conversions += k - self._last_read_k - 1
            self.conversions_read += 1
            self._last_read_k = k
            self._last_code = self._code(k)
        return self._last_code

    def write(self, register: int, data: bytes, now_s: float) -> None:
        for i, value in enumerate(data):
            self._write_register(register + i, value, now_s)

    def _write_register(self, register: int, value: int, now_s: float) -> None:
        self.register_writes.append(RegisterWrite(now_s, register, value))
        if register >= _REGISTER_COUNT or register == REG_DEVICE_REV:
            return
        if register == REG_PU_CTRL:
            self._write_pu_ctrl(value, now_s)
        elif register == REG_CTRL2:
            self._finish_calibration(now_s)
            # CAL_ERR is read-only; CALS starts a calibration and self-clears.
            kept = self._regs[REG_CTRL2] & CTRL2_CAL_ERR
            self._regs[REG_CTRL2] = (value & ~CTRL2_CAL_ERR & 0xFF) | kept
            if value & CTRL2_CALS and self._cal_end_s is None:
                rate = self.rate_sps * (1.0 + self.clock_error)
                self._cal_end_s = now_s + CALIBRATION_PERIODS / rate
            self._schedule(now_s)
        elif REG_ADCO_B2 <= register <= REG_ADCO_B0:
            return  # conversion result registers are read-only
        else:
            self._regs[register] = value
            if register == REG_CTRL1:
                self._schedule(now_s)

    def _write_pu_ctrl(self, value: int, now_s: float) -> None:
        if value & PU_CTRL_RR:
            self._power_on(now_s)
            self._regs[REG_PU_CTRL] = PU_CTRL_RR
            return
        # PUR and CR are read-only status bits.
        value &= ~(PU_CTRL_PUR | PU_CTRL_CR) & 0xFF
        if value & PU_CTRL_PUD:
            if self._pud_at_s is None:
                self._pud_at_s = now_s
        else:
            self._pud_at_s = None
        self._regs[REG_PU_CTRL] = value
        self._schedule(now_s)
