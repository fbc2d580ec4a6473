"""Driver of the Nuvoton NAU7802 24-bit bridge ADC (the load cell inline with the band/chain).

Register names and bit positions follow the NAU7802 datasheet (Nuvoton, revision 1.7,
§10 summary register map and §11 register details); the power-up order follows §9.1 "power on
sequencing" and the channel-2 capacitor the §9.14 application circuit note.

Initialisation is a small state machine so the same code runs blocking in :meth:`start` and
step by step inside :meth:`poll` when a silent chip reset is found: the sampler thread keeps
draining the IMU FIFO while the load cell powers up and calibrates again.

A typical :meth:`poll` is one transaction (``PU_CTRL``: conversion ready? chip still
configured?) or two (plus the 3-byte ``ADCO`` block read); polls within 0.9 of a conversion
period after the previous conversion do not touch the bus at all.
"""

from __future__ import annotations

import enum
import math

from spinecoach.drivers.blocks import StreamInfo
from spinecoach.drivers.bus import I2CBus
from spinecoach.drivers.interfaces import AdcRead, Clock
from spinecoach.errors import SensorError, SensorTimeout, WrongChipError

DEFAULT_ADDRESS = 0x2A

# -- registers (datasheet §10/§11) ----------------------------------------------------------
REG_PU_CTRL = 0x00  #: §11.1 power-up control and status
REG_CTRL1 = 0x01  #: §11.2 gain, LDO voltage, DRDY pin
REG_CTRL2 = 0x02  #: §11.3 calibration, conversion rate, channel
REG_OCAL1_B2 = 0x03  #: channel 1 offset calibration, 3 bytes
REG_GCAL1_B3 = 0x06  #: channel 1 gain calibration, 4 bytes (reset 0x00800000)
REG_I2C_CONTROL = 0x11  #: I2C pull-ups, burn-out current, strong pull-up
REG_ADCO_B2 = 0x12  #: conversion result, bits 23..16
REG_ADCO_B1 = 0x13  #: conversion result, bits 15..8
REG_ADCO_B0 = 0x14  #: conversion result, bits 7..0
REG_ADC = 0x15  #: ADC control (shares its address with OTP bits 31..24)
REG_PGA = 0x1B  #: PGA control
REG_PGA_PWR = 0x1C  #: PGA/ADC power and the channel-2 capacitor enable
REG_DEVICE_REV = 0x1F  #: device revision code (read only)

# PU_CTRL bits (§11.1)
PU_CTRL_RR = 0x01  #: register reset
PU_CTRL_PUD = 0x02  #: power up digital
PU_CTRL_PUA = 0x04  #: power up analog
PU_CTRL_PUR = 0x08  #: power up ready (read only)
PU_CTRL_CS = 0x10  #: cycle start: run conversions
PU_CTRL_CR = 0x20  #: cycle ready: an unread conversion is in ADCO (read only)
PU_CTRL_OSCS = 0x40  #: oscillator select (0 = internal RC)
PU_CTRL_AVDDS = 0x80  #: AVDD source select (1 = internal LDO)

# CTRL1 fields (§11.2)
CTRL1_GAINS_MASK = 0x07  #: PGA gain = 2**GAINS
CTRL1_VLDO_SHIFT = 3  #: LDO voltage code, bits 5..3

# CTRL2 fields (§11.3)
CTRL2_CALMOD_MASK = 0x03  #: 00 = internal offset calibration
CTRL2_CALS = 0x04  #: start calibration; self-clears when done
CTRL2_CAL_ERR = 0x08  #: the last calibration failed (read only)
CTRL2_CRS_SHIFT = 4  #: conversion rate select, bits 6..4
CTRL2_CRS_MASK = 0x70
CTRL2_CHS = 0x80  #: channel select (0 = channel 1)

#: ADC register: REG_CHPS (bits 5..4) = 0b11 turns the clock chopper off (§9.1 power on
#: sequencing; the reset value leaves it on).
ADC_REG_CHPS_OFF = 0x30
#: PGA register: all clear keeps LDOMODE = 0 (improved accuracy and higher DC gain, for a
#: low-ESR LDO capacitor) and the PGA not bypassed.
PGA_DEFAULT = 0x00
#: PGA_PWR bit 7: the PGA output capacitor on VIN2P/VIN2N, recommended when channel 2 is unused
#: and fitted with its 330 pF capacitor (§9.14 application circuit note).
PGA_PWR_PGA_CAP_EN = 0x80

#: REG_DEVICE_REV low nibble of an NAU7802.
DEVICE_REVISION_ID = 0x0F

#: CTRL2.CRS code of each supported conversion rate (SPS).
RATE_CODES: dict[int, int] = {10: 0b000, 20: 0b001, 40: 0b010, 80: 0b011, 320: 0b111}
#: CTRL1.VLDO code of each LDO voltage (V).
LDO_CODES: dict[float, int] = {
    4.5: 0b000,
    4.2: 0b001,
    3.9: 0b010,
    3.6: 0b011,
    3.3: 0b100,
    3.0: 0b101,
    2.7: 0b110,
    2.4: 0b111,
}
GAINS = (1, 2, 4, 8, 16, 32, 64, 128)

#: The 24-bit two's-complement output saturates at these codes.
ADC_FULL_SCALE_MAX = (1 << 23) - 1
ADC_FULL_SCALE_MIN = -(1 << 23)

#: PUR comes about 200 µs after PUD (§9.1); a chip that takes 50 ms is not powered.
POWER_UP_TIMEOUT_S = 0.05
#: The internal LDO (bridge excitation) ramps for about 200 ms before the offset calibration
#: is meaningful.
LDO_SETTLE_S = 0.2
#: CALS must clear within this many conversion periods (a calibration takes a few periods).
CALIBRATION_TIMEOUT_PERIODS = 40.0
#: Calibration attempts before a persistent CAL_ERR becomes a :class:`CalibrationError`.
CALIBRATION_ATTEMPTS = 3
#: While running, CR must come within this many periods of the previous conversion.
CONVERSION_TIMEOUT_PERIODS = 10.0
#: Every this many seconds a poll reads CTRL1/CTRL2 back with PU_CTRL (same transaction).
CONFIG_CHECK_INTERVAL_S = 0.1
#: Polls sooner than this fraction of a period after a conversion skip the bus (the RC
#: oscillator would have to run 10 % fast for a conversion to wait on the gate).
POLL_GATE_PERIODS = 0.9
#: The conversion-time interval widens by this fraction of a period per conversion, for the
#: residual error of the learnt period.
TRACKER_DRIFT_PERIODS = 0.002
#: The chip's real conversion period (its RC oscillator is not exact) is re-measured over this
#: many conversions; a measurement further than PERIOD_LEARN_LIMIT from nominal is ignored.
PERIOD_LEARN_CONVERSIONS = 640
PERIOD_LEARN_LIMIT = 0.15

#: A load cell nobody calibrated yet: 200 kg rated capacity at 2 mV/V, excitation = reference.
NOMINAL_CAPACITY_N = 200 * 9.80665
NOMINAL_SENSITIVITY_V_PER_V = 0.002


class CalibrationError(SensorError):
    """The NAU7802 internal offset calibration kept failing (CAL_ERR)."""


def nominal_force_n_per_count(
    gain: int,
    capacity_n: float = NOMINAL_CAPACITY_N,
    sensitivity_v_per_v: float = NOMINAL_SENSITIVITY_V_PER_V,
) -> float:
    """Scale (N per code) of a ratiometric bridge: full scale ±VREF/2/gain is ±2**23 codes.

    With the bridge excited from the reference, the output at ``capacity_n`` is
    ``sensitivity_v_per_v * VREF``, i.e. ``sensitivity * gain * 2**24`` codes.
    """
    return capacity_n / (sensitivity_v_per_v * gain * float(1 << 24))


def sign_extend_24(b2: int, b1: int, b0: int) -> int:
    """Signed value of a big-endian 24-bit two's-complement code."""
    code = (b2 << 16) | (b1 << 8) | b0
    return code - (1 << 24) if code & 0x800000 else code


class _Phase(enum.Enum):
    OFF = "off"
    POWERING_UP = "powering up"
    SETTLING = "settling"
    CALIBRATING = "calibrating"
    RUNNING = "running"


_NOTHING = AdcRead(None)
#: Read on every poll: a module constant is several times quicker to reach than the member.
_RUNNING = _Phase.RUNNING


class Nau7802:
    """An NAU7802 polled for conversions (a :class:`~spinecoach.drivers.interfaces.ForceDriver`).

    ``gain`` 1..128, ``rate_sps`` 10/20/40/80/320, ``ldo_v`` the internal LDO voltage (2.4-4.5 V)
    or None to run from an external AVDD. ``force_n_per_count`` and ``offset_counts`` (the tare)
    scale codes to force; the default scale is :func:`nominal_force_n_per_count`.
    """

    def __init__(
        self,
        bus: I2CBus,
        clock: Clock,
        address: int = DEFAULT_ADDRESS,
        name: str = "force",
        gain: int = 128,
        rate_sps: int = 320,
        ldo_v: float | None = 3.3,
        force_n_per_count: float | None = None,
        offset_counts: float = 0.0,
    ) -> None:
        if gain not in GAINS:
            raise ValueError(f"NAU7802 gain {gain} not supported: use one of {GAINS}")
        if rate_sps not in RATE_CODES:
            raise ValueError(
                f"NAU7802 rate {rate_sps} SPS not supported: use one of {tuple(RATE_CODES)}"
            )
        if ldo_v is not None and ldo_v not in LDO_CODES:
            raise ValueError(f"NAU7802 LDO {ldo_v} V not supported: use one of {tuple(LDO_CODES)}")
        self._bus = bus
        self._clock = clock
        self.address = address
        self.name = name
        self.gain = gain
        self.rate_sps = rate_sps
        self.ldo_v = ldo_v
        self._period_s = 1.0 / rate_sps
        #: Conversion period learnt from the chip (s); starts at nominal.
        self.period_est_s = self._period_s
        self._anchor_s: float | None = None
        self._anchor_conversions = 0
        self._force_n_per_count = (
            nominal_force_n_per_count(gain) if force_n_per_count is None else force_n_per_count
        )
        self._offset_counts = offset_counts
        self._t0_s = 0.0

        self.ctrl1 = (LDO_CODES[ldo_v] << CTRL1_VLDO_SHIFT if ldo_v is not None else 0) | (
            GAINS.index(gain)
        )
        self.ctrl2 = RATE_CODES[rate_sps] << CTRL2_CRS_SHIFT  # CALMOD 00, channel 1
        self.pu_ctrl = (
            PU_CTRL_PUD | PU_CTRL_PUA | PU_CTRL_CS | (PU_CTRL_AVDDS if ldo_v is not None else 0)
        )
        # PU_CTRL as a configured, powered chip reads it (CR masked out).
        self._pu_expected = self.pu_ctrl | PU_CTRL_PUR
        self._pu_check_mask = 0xFF & ~PU_CTRL_CR
        self._ctrl2_check_mask = CTRL2_CRS_MASK | CTRL2_CHS | CTRL2_CALMOD_MASK

        self._phase = _Phase.OFF
        self._deadline_s = 0.0
        self._cal_attempts = 0
        self._gate_s = 0.0
        self._next_check_s = 0.0
        self._ready_lo_s: float | None = None
        self._ready_hi_s = 0.0
        self._cal_busy_seen_s = 0.0
        self._last_evidence_s = 0.0
        self._latest_not_ready_s: float | None = None
        #: Times the chip was found reset and re-initialised.
        self.reinitialisations = 0

    # -- ForceDriver ------------------------------------------------------------------------
    @property
    def info(self) -> StreamInfo:
        return StreamInfo(
            name=self.name,
            kind="force",
            rate_hz=float(self.rate_sps),
            chip="NAU7802",
            t0_s=self._t0_s,
            force_n_per_count=self._force_n_per_count,
            force_offset_counts=self._offset_counts,
        )

    def set_scale(self, force_n_per_count: float, offset_counts: float) -> None:
        """Use a new calibration: scale (N per code) and tare (codes at zero force)."""
        self._force_n_per_count = force_n_per_count
        self._offset_counts = offset_counts

    @property
    def running(self) -> bool:
        """True once powered, configured and calibrated (conversions flowing)."""
        return self._phase is _Phase.RUNNING

    def start(self) -> None:
        """Check the revision, reset, power up, configure and calibrate; block until running."""
        self._check_revision()
        self._begin_init()
        while self._phase is not _Phase.RUNNING:
            self._clock.sleep(self._step_wait_s())
            self._step_init()

    def poll(self) -> AdcRead:
        now_s = self._clock.monotonic_s()
        if self._phase is not _RUNNING:
            if self._phase is _Phase.OFF:
                raise SensorError(
                    f"NAU7802 at 0x{self.address:02X} polled while stopped: call start() first"
                )
            if now_s >= self._gate_s:
                self._step_init()
            return _NOTHING
        if now_s < self._gate_s:
            return _NOTHING
        bus = self._bus
        if now_s >= self._next_check_s:
            pu, ctrl1, ctrl2 = bus.read_i2c_block_data(self.address, REG_PU_CTRL, 3)
            self._next_check_s = now_s + CONFIG_CHECK_INTERVAL_S
            if ctrl1 != self.ctrl1 or ctrl2 & self._ctrl2_check_mask != self.ctrl2:
                return self._reinitialise()
        else:
            pu = bus.read_byte_data(self.address, REG_PU_CTRL)
        if pu & self._pu_check_mask != self._pu_expected:
            return self._reinitialise()
        if not pu & PU_CTRL_CR:
            # Time after the transfer: the chip answered no later than this.
            self._not_ready(self._clock.monotonic_s())
            return _NOTHING
        code = sign_extend_24(*bus.read_i2c_block_data(self.address, REG_ADCO_B2, 3))
        missed = self._track_conversion(self._clock.monotonic_s())
        return AdcRead(
            code,
            saturated=code == ADC_FULL_SCALE_MAX or code == ADC_FULL_SCALE_MIN,
            missed=missed,
        )

    @property
    def next_ready_s(self) -> float:
        """Clock time (s) before which no new conversion can be ready: polls before it return
        nothing without a transfer (0 while not running: poll whenever)."""
        return self._gate_s if self._phase is _RUNNING else 0.0

    @property
    def read_by_s(self) -> float:
        """Clock time (s) by which the next conversion must be read before the one after it
        overwrites it (the ADC holds one result): the earliest ready time of the conversion
        read last plus two periods. ``inf`` while no conversion has been read, or once that
        time has passed (the next read counts what was lost). A reader sharing the bus keeps
        its transfers short enough to poll again before this."""
        if self._phase is not _RUNNING or self._ready_lo_s is None:
            return math.inf
        deadline = self._ready_lo_s + 2.0 * self.period_est_s
        return deadline if deadline > self._clock.monotonic_s() else math.inf

    def close(self) -> None:
        """Power the analog and digital sections down; silent if the chip is gone."""
        self._phase = _Phase.OFF
        try:
            self._bus.write_byte_data(self.address, REG_PU_CTRL, 0x00)
        except OSError:
            pass

    # -- conversions ------------------------------------------------------------------------
    def _not_ready(self, now_s: float) -> None:
        if now_s - self._last_evidence_s > CONVERSION_TIMEOUT_PERIODS * self._period_s:
            raise SensorTimeout(
                f"NAU7802 at 0x{self.address:02X} has not completed a conversion in "
                f"{(now_s - self._last_evidence_s) * 1e3:.0f} ms (CR never set) although it is "
                "configured: check its supply and the load-cell wiring, then restart"
            )
        # A poll that found no conversion proves the next one was not ready yet.
        self._latest_not_ready_s = now_s

    def _track_conversion(self, now_s: float) -> int:
        """Count conversions overwritten unread since the previous one; update the gate.

        The ADC has no sample counter, so the driver tracks the interval ``[_ready_lo_s,
        _ready_hi_s]`` in which the last conversion it read became ready. A new read observes
        its conversion ready after the latest poll that found nothing and less than a period
        before the read; the whole number of periods between the two intervals' midpoints is
        the count of conversions since, and the intersection of the carried-over interval with
        the observation is the new, narrower interval. Polled every half period or faster
        the interval converges to well under a period, so the counts are exact apart from a
        possible one-conversion shift right after a stall. The first interval is the end of
        the calibration, so the first read counts the conversions before it too (uncertain
        only if the reader stalled for over a period during the calibration).
        """
        period = self.period_est_s
        obs_lo = now_s - period
        latest_not_ready_s = self._latest_not_ready_s
        if latest_not_ready_s is not None and latest_not_ready_s > obs_lo:
            obs_lo = latest_not_ready_s
        lo, hi, periods = obs_lo, now_s, 1
        if self._ready_lo_s is not None:
            prev_lo, prev_hi = self._ready_lo_s, self._ready_hi_s
            # Whole periods between the interval midpoints (at least one: CR said "new").
            periods = max(1, round((obs_lo + now_s - prev_lo - prev_hi) / (2.0 * period)))
            lo = max(prev_lo + periods * period, obs_lo)
            hi = min(prev_hi + periods * period, now_s)
            if lo > hi:  # the prediction missed the observation: trust the observation
                lo, hi = obs_lo, now_s
        # Widen for the uncertainty of the learnt period over the periods to come.
        margin = TRACKER_DRIFT_PERIODS * period
        self._ready_lo_s, self._ready_hi_s = lo - margin, hi + margin
        self._latest_not_ready_s = None
        self._last_evidence_s = now_s
        self._gate_s = lo + POLL_GATE_PERIODS * period
        if (
            self._anchor_s is not None
            and self._anchor_conversions + periods < PERIOD_LEARN_CONVERSIONS
        ):
            self._anchor_conversions += periods  # what _learn_period does between estimates
        else:
            self._learn_period(0.5 * (lo + hi), periods)
        return periods - 1

    def _learn_period(self, t_ready_s: float, conversions: int) -> None:
        """Re-measure the conversion period between estimates ``PERIOD_LEARN_CONVERSIONS`` apart.

        The ready-time estimates are within about one poll interval of the truth, so over two
        seconds at 320 SPS the period is known to about 0.1 %: a 150 ms stall is then counted
        to a small fraction of a conversion even on a chip whose oscillator is a few % off.
        """
        if self._anchor_s is None:
            self._anchor_s = t_ready_s
            self._anchor_conversions = 0
            return
        self._anchor_conversions += conversions
        if self._anchor_conversions < PERIOD_LEARN_CONVERSIONS:
            return
        measured_s = (t_ready_s - self._anchor_s) / self._anchor_conversions
        if abs(measured_s * self.rate_sps - 1.0) <= PERIOD_LEARN_LIMIT:
            self.period_est_s = measured_s
        self._anchor_s = t_ready_s
        self._anchor_conversions = 0

    # -- initialisation state machine -------------------------------------------------------
    def _check_revision(self) -> None:
        revision = self._bus.read_byte_data(self.address, REG_DEVICE_REV)
        if revision & 0x0F != DEVICE_REVISION_ID:
            raise WrongChipError(
                f"the chip at 0x{self.address:02X} reports revision 0x{revision:02X}, not an "
                "NAU7802 (low nibble 0xF): check that the load-cell board is at this address "
                "and no other device shares it"
            )

    def _begin_init(self) -> None:
        bus = self._bus
        # §9.1: RR=1 resets every register; RR=0 with PUD (and PUA) powers up, PUR follows.
        bus.write_byte_data(self.address, REG_PU_CTRL, PU_CTRL_RR)
        bus.write_byte_data(self.address, REG_PU_CTRL, PU_CTRL_PUD | PU_CTRL_PUA)
        self._phase = _Phase.POWERING_UP
        self._deadline_s = self._clock.monotonic_s() + POWER_UP_TIMEOUT_S
        self._cal_attempts = 0
        self._gate_s = 0.0
        self._ready_lo_s = None
        self._latest_not_ready_s = None
        self._anchor_s = None

    def _step_wait_s(self) -> float:
        if self._phase is _Phase.POWERING_UP:
            return 100e-6
        if self._phase is _Phase.SETTLING:
            return max(0.0, self._gate_s - self._clock.monotonic_s())
        return self._period_s / 2

    def _step_init(self) -> None:
        now_s = self._clock.monotonic_s()
        if self._phase is _Phase.POWERING_UP:
            pu = self._bus.read_byte_data(self.address, REG_PU_CTRL)
            if pu & PU_CTRL_PUR:
                self._configure(now_s)
            elif now_s > self._deadline_s:
                self._phase = _Phase.OFF
                raise SensorTimeout(
                    f"NAU7802 at 0x{self.address:02X} did not report power-up ready (PUR) "
                    f"within {POWER_UP_TIMEOUT_S * 1e3:.0f} ms: check its supply (DVDD 2.7-5.5 V) "
                    "and ground"
                )
        elif self._phase is _Phase.SETTLING:
            if now_s >= self._gate_s:
                self._start_calibration(now_s)
        elif self._phase is _Phase.CALIBRATING:
            self._check_calibration(now_s)

    def _configure(self, now_s: float) -> None:
        write = self._bus.write_byte_data
        write(self.address, REG_CTRL1, self.ctrl1)
        write(self.address, REG_CTRL2, self.ctrl2)
        write(self.address, REG_ADC, ADC_REG_CHPS_OFF)
        write(self.address, REG_PGA, PGA_DEFAULT)
        write(self.address, REG_PGA_PWR, PGA_PWR_PGA_CAP_EN)
        write(self.address, REG_PU_CTRL, self.pu_ctrl)
        if self.ldo_v is not None:
            self._phase = _Phase.SETTLING
            self._gate_s = now_s + LDO_SETTLE_S
        else:
            self._start_calibration(now_s)

    def _start_calibration(self, now_s: float) -> None:
        self._cal_attempts += 1
        self._bus.write_byte_data(self.address, REG_CTRL2, self.ctrl2 | CTRL2_CALS)
        self._phase = _Phase.CALIBRATING
        self._cal_busy_seen_s = self._clock.monotonic_s()
        self._deadline_s = now_s + CALIBRATION_TIMEOUT_PERIODS * self._period_s
        self._gate_s = 0.0

    def _check_calibration(self, now_s: float) -> None:
        ctrl2 = self._bus.read_byte_data(self.address, REG_CTRL2)
        answered_s = self._clock.monotonic_s()
        if ctrl2 & CTRL2_CALS:
            self._cal_busy_seen_s = answered_s
            if now_s > self._deadline_s:
                self._phase = _Phase.OFF
                raise SensorTimeout(
                    f"NAU7802 at 0x{self.address:02X}: internal calibration did not finish within "
                    f"{CALIBRATION_TIMEOUT_PERIODS * self._period_s * 1e3:.0f} ms: check its "
                    "supply and clock"
                )
            self._gate_s = now_s + self._period_s / 2
            return
        if ctrl2 & CTRL2_CAL_ERR:
            if self._cal_attempts < CALIBRATION_ATTEMPTS:
                self._start_calibration(now_s)
                return
            self._phase = _Phase.OFF
            raise CalibrationError(
                f"NAU7802 at 0x{self.address:02X}: internal offset calibration failed "
                f"{self._cal_attempts} times (CAL_ERR): check the load-cell wiring (E+/E-, A+/A-) "
                "and that the bridge output is within the input range"
            )
        self._phase = _Phase.RUNNING
        # Conversions follow the end of the calibration, which happened in this interval:
        # tracked as the ready time of "conversion -1", so the first read also counts the
        # conversions overwritten before it.
        self._ready_lo_s, self._ready_hi_s = self._cal_busy_seen_s, answered_s
        self._t0_s = 0.5 * (self._cal_busy_seen_s + answered_s) + self._period_s
        self._last_evidence_s = now_s
        self._next_check_s = now_s + CONFIG_CHECK_INTERVAL_S

    def _reinitialise(self) -> AdcRead:
        """The chip lost its configuration: start again without blocking the caller."""
        self.reinitialisations += 1
        self._begin_init()
        return AdcRead(None, reinitialised=True)
