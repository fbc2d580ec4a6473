"""The NAU7802 driver against the register-level simulator."""

from __future__ import annotations

import errno

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from spinecoach.drivers.bus import RetryingBus
from spinecoach.drivers.interfaces import AdcRead, ForceDriver
from spinecoach.drivers.nau7802 import (
    ADC_FULL_SCALE_MAX,
    ADC_FULL_SCALE_MIN,
    CONFIG_CHECK_INTERVAL_S,
    PU_CTRL_CR,
    REG_CTRL1,
    REG_PU_CTRL,
    CalibrationError,
    Nau7802,
    nominal_force_n_per_count,
    sign_extend_24,
)
from spinecoach.drivers.sim.bus import FaultPlan, SimBus
from spinecoach.drivers.sim.nau7802_chip import Nau7802Chip
from spinecoach.errors import BusError, SensorError, SensorTimeout, WrongChipError

RATE_SPS = 320
PERIOD_S = 1.0 / RATE_SPS


def rig(
    chip: Nau7802Chip | None = None, faults: FaultPlan | None = None, **driver_kwargs: object
) -> tuple[Nau7802, Nau7802Chip, SimBus]:
    chip = chip or Nau7802Chip()
    bus = SimBus([chip], faults=faults)
    driver = Nau7802(bus, bus.clock, **driver_kwargs)  # type: ignore[arg-type]
    return driver, chip, bus


def run_polls(driver: Nau7802, bus: SimBus, until_s: float, poll_s: float = 0.001) -> list[AdcRead]:
    """Poll every ``poll_s`` of virtual time until ``until_s``; return the reads with a code."""
    reads = []
    while bus.clock.monotonic_s() < until_s:
        read = driver.poll()
        if read.code is not None or read.reinitialised:
            reads.append(read)
        bus.clock.sleep(poll_s)
    return reads


def assert_missed_counts(codes: list[int], missed: list[int]) -> None:
    """``missed`` per read against the true skips of a ramp whose code is the conversion index.

    The driver only knows the chip's conversion phase to within a fraction of a period, so
    right after a stall one skipped conversion may be booked on the next read instead; the
    running totals never differ by more than one and end equal. (``missed[0]`` counts the
    conversions before the first read, which the codes cannot show.)
    """
    skipped = np.cumsum(np.diff(np.array(codes)) - 1)
    reported = np.cumsum(np.array(missed[1:]))
    assert np.abs(skipped - reported).max(initial=0) <= 1
    assert skipped[-1] == reported[-1]


def writes(chip: Nau7802Chip) -> list[tuple[int, int]]:
    return [(w.register, w.value) for w in chip.register_writes]


# -- start-up --------------------------------------------------------------------------------
def test_start_writes_the_datasheet_sequence_byte_for_byte() -> None:
    driver, chip, _ = rig()
    driver.start()
    assert writes(chip) == [
        (0x00, 0x01),  # RR: register reset
        (0x00, 0x06),  # RR=0, PUD, PUA
        (0x01, 0x27),  # VLDO 3.3 V (0b100), gain 128 (0b111)
        (0x02, 0x70),  # 320 SPS, internal offset calibration mode, channel 1
        (0x15, 0x30),  # REG_CHPS = 0b11: clock chopper off
        (0x1B, 0x00),  # PGA: LDOMODE = 0
        (0x1C, 0x80),  # PGA_CAP_EN
        (0x00, 0x96),  # PUD, PUA, CS, AVDDS (internal LDO)
        (0x02, 0x74),  # CALS
    ]
    assert driver.running and chip.converting and chip.calibrations == 1
    as_protocol: ForceDriver = driver  # checked by mypy
    assert as_protocol.info.chip == "NAU7802"


@pytest.mark.parametrize(
    ("gain", "rate_sps", "ldo_v", "ctrl1", "ctrl2", "pu_ctrl"),
    [
        (1, 10, None, 0x00, 0x00, 0x16),
        (2, 20, 4.5, 0x01, 0x10, 0x96),
        (4, 40, 3.0, 0x2A, 0x20, 0x96),
        (16, 80, 2.4, 0x3C, 0x30, 0x96),
        (64, 320, 3.6, 0x1E, 0x70, 0x96),
    ],
)
def test_gain_rate_and_ldo_register_values(
    gain: int, rate_sps: int, ldo_v: float | None, ctrl1: int, ctrl2: int, pu_ctrl: int
) -> None:
    driver, chip, _ = rig(gain=gain, rate_sps=rate_sps, ldo_v=ldo_v)
    driver.start()
    assert (REG_CTRL1, ctrl1) in writes(chip)
    assert (0x02, ctrl2) in writes(chip) and (0x02, ctrl2 | 0x04) in writes(chip)
    assert (REG_PU_CTRL, pu_ctrl) in writes(chip)
    assert chip.gain == gain and chip.rate_sps == rate_sps
    assert driver.info.rate_hz == rate_sps and driver.info.kind == "force"


@pytest.mark.parametrize("kwargs", [{"gain": 3}, {"rate_sps": 100}, {"ldo_v": 5.0}])
def test_unsupported_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="use one of"):
        rig(**kwargs)


def test_power_up_timeout_names_the_supply() -> None:
    driver, _, _ = rig(Nau7802Chip(power_up_s=1.0))
    with pytest.raises(SensorTimeout, match="PUR.*supply"):
        driver.start()


def test_wrong_revision_is_a_wrong_chip() -> None:
    driver, _, _ = rig(Nau7802Chip(revision=0x02))
    with pytest.raises(WrongChipError, match="not an NAU7802"):
        driver.start()


def test_absent_chip_is_a_bus_error_after_retries() -> None:
    bus = SimBus([])
    driver = Nau7802(RetryingBus(bus, backoff_s=0), bus.clock)
    with pytest.raises(BusError, match="0x2A"):
        driver.start()


def test_calibration_is_retried_on_cal_err() -> None:
    driver, chip, _ = rig(Nau7802Chip(fail_calibrations=2))
    driver.start()
    assert chip.calibrations == 3 and chip.calibration_errors == 2
    assert writes(chip).count((0x02, 0x74)) == 3
    assert driver.running


def test_persistent_cal_err_is_a_typed_error_after_three_attempts() -> None:
    driver, chip, _ = rig(Nau7802Chip(fail_calibrations=5))
    with pytest.raises(CalibrationError, match="3 times.*wiring"):
        driver.start()
    assert chip.calibrations == 3


def test_internal_calibration_removes_the_adc_offset() -> None:
    driver, _, bus = rig(Nau7802Chip(adc_offset_counts=5000.0))
    driver.start()
    reads = run_polls(driver, bus, bus.clock.monotonic_s() + 0.05)
    assert reads and all(read.code == 0 for read in reads)


def test_poll_before_start_is_an_error() -> None:
    driver, _, _ = rig()
    with pytest.raises(SensorError, match="call start"):
        driver.poll()


# -- conversions -----------------------------------------------------------------------------
def test_codes_scale_back_to_the_true_force() -> None:
    counts_per_n, offset_counts, gain = 17.0, -1200.0, 128
    chip = Nau7802Chip(
        signal=lambda t: 500.0 * np.sin(2 * np.pi * t),
        counts_per_n=counts_per_n,
        offset_counts=offset_counts,
    )
    driver, _, bus = rig(
        chip,
        gain=gain,
        force_n_per_count=1.0 / (gain * counts_per_n),
        offset_counts=gain * offset_counts,
    )
    driver.start()
    start_s = bus.clock.monotonic_s()
    reads = run_polls(driver, bus, start_s + 1.0)
    info = driver.info
    force_n = np.array(
        [(r.code - info.force_offset_counts) * info.force_n_per_count for r in reads if r.code]
    )
    assert len(reads) >= RATE_SPS - 1
    assert force_n.min() < -499 and force_n.max() > 499
    assert any(r.code is not None and r.code < 0 for r in reads)  # sign extension


def test_every_conversion_is_delivered_once_in_order() -> None:
    # A ramp of one newton per conversion makes each code name its conversion index.
    chip = Nau7802Chip(signal=lambda t: t * RATE_SPS, counts_per_n=1.0)
    driver, _, bus = rig(chip, gain=1)
    driver.start()
    reads = run_polls(driver, bus, bus.clock.monotonic_s() + 8.0)  # > one simulator chunk
    codes = np.array([r.code for r in reads])
    assert len(codes) > 2048 + 100
    assert np.all(np.diff(codes) == 1)
    assert chip.missed_conversions == 0 and all(r.missed == 0 for r in reads)


def test_a_typical_poll_is_one_or_two_transactions() -> None:
    driver, _, bus = rig()
    driver.start()
    counts: list[tuple[bool, int]] = []
    while len(counts) < 200:
        before = bus.counters.transactions
        read = driver.poll()
        counts.append((read.code is not None, bus.counters.transactions - before))
        bus.clock.sleep(0.0005)
    with_code = {n for has_code, n in counts if has_code}
    without_code = {n for has_code, n in counts if not has_code}
    assert with_code == {2}  # PU_CTRL, then ADCO_B2..B0 in one block read
    assert without_code <= {0, 1}  # gated (no bus) or PU_CTRL only


@pytest.mark.parametrize(
    ("force_n", "rail"), [(1e9, ADC_FULL_SCALE_MAX), (-1e9, ADC_FULL_SCALE_MIN)]
)
def test_saturated_codes_are_flagged(force_n: float, rail: int) -> None:
    driver, _, bus = rig(Nau7802Chip(signal=lambda t: np.full_like(t, force_n)))
    driver.start()
    reads = run_polls(driver, bus, bus.clock.monotonic_s() + 0.02)
    assert reads and all(r.code == rail and r.saturated for r in reads)


def test_unsaturated_codes_are_not_flagged() -> None:
    driver, _, bus = rig(Nau7802Chip(signal=lambda t: np.full_like(t, 100.0)))
    driver.start()
    reads = run_polls(driver, bus, bus.clock.monotonic_s() + 0.02)
    assert reads and not any(r.saturated for r in reads)


@pytest.mark.parametrize("poll_s", [0.0005, 0.001, 0.0015])
def test_missed_conversions_match_the_chip_after_stalls(poll_s: float) -> None:
    faults = FaultPlan(stalls=[(1.0, 0.150), (2.0, 0.0371), (2.5, 0.0032)])
    chip = Nau7802Chip(signal=lambda t: t * RATE_SPS, counts_per_n=1.0)
    driver, _, bus = rig(chip, faults=faults, gain=1)
    driver.start()
    reads = run_polls(driver, bus, 3.5, poll_s=poll_s)
    missed = [r.missed for r in reads]
    assert_missed_counts([r.code for r in reads], missed)  # type: ignore[misc]
    assert sum(missed) == chip.missed_conversions >= 48
    assert len(reads) + sum(missed) == chip.conversions_read + chip.missed_conversions


# -- resets and faults -----------------------------------------------------------------------
def test_silent_reset_is_detected_and_reinitialised_without_blocking() -> None:
    chip = Nau7802Chip(signal=lambda t: np.full_like(t, 10.0))
    faults = FaultPlan(chip_events=[(1.0, chip.power_on_reset)])
    driver, _, bus = rig(chip, faults=faults)
    driver.start()
    writes_before = len(chip.register_writes)
    longest_poll_s = 0.0
    reads = []
    while bus.clock.monotonic_s() < 2.0:
        before_s = bus.clock.monotonic_s()
        read = driver.poll()
        longest_poll_s = max(longest_poll_s, bus.clock.monotonic_s() - before_s)
        if read.code is not None or read.reinitialised:
            reads.append((before_s, read))
        bus.clock.sleep(0.001)
    flagged = [t for t, r in reads if r.reinitialised]
    assert len(flagged) == 1 and 1.0 <= flagged[0] < 1.0 + 0.002
    assert driver.reinitialisations == 1 and chip.resets == 1
    # The same initialisation sequence runs again (after the reset, from RR on).
    assert writes(chip)[writes_before:] == writes(chip)[:writes_before]
    after = [t for t, r in reads if r.code is not None and t > flagged[0]]
    assert after and after[0] - flagged[0] < 0.3  # LDO settling + calibration
    assert longest_poll_s < 0.001  # the sampler thread never waits on the load cell


def test_configuration_read_back_catches_a_changed_register() -> None:
    driver, chip, bus = rig()
    driver.start()
    run_polls(driver, bus, bus.clock.monotonic_s() + 0.05)
    corrupted_at_s = bus.clock.monotonic_s()
    chip.write(REG_CTRL1, bytes([0x20]), corrupted_at_s)  # gain 1, as after a glitch
    reads = run_polls(driver, bus, corrupted_at_s + 2 * CONFIG_CHECK_INTERVAL_S)
    assert [r.reinitialised for r in reads].count(True) == 1
    assert chip.gain == 128


class StuckChip:
    """An NAU7802 that stops setting CR after ``stuck_at_s`` (a hung converter)."""

    def __init__(self, inner: Nau7802Chip, stuck_at_s: float) -> None:
        self.inner = inner
        self.address = inner.address
        self.stuck_at_s = stuck_at_s

    def write(self, register: int, data: bytes, now_s: float) -> None:
        self.inner.write(register, data, now_s)

    def read(self, register: int, length: int, now_s: float) -> bytes:
        data = bytearray(self.inner.read(register, length, now_s))
        if register == REG_PU_CTRL and now_s >= self.stuck_at_s:
            data[0] &= ~PU_CTRL_CR & 0xFF
        return bytes(data)


def test_conversion_ready_timeout() -> None:
    chip = StuckChip(Nau7802Chip(), stuck_at_s=1.0)
    bus = SimBus([chip])  # type: ignore[list-item]
    driver = Nau7802(bus, bus.clock)
    driver.start()
    with pytest.raises(SensorTimeout, match="CR never set"):
        run_polls(driver, bus, 2.0)
    assert 1.0 < bus.clock.monotonic_s() < 1.0 + 0.05


def test_close_powers_down_and_tolerates_an_unplugged_chip() -> None:
    driver, chip, bus = rig()
    driver.start()
    driver.close()
    assert writes(chip)[-1] == (REG_PU_CTRL, 0x00) and not chip.converting
    bus.faults.unplugged[0x2A] = 0.0
    driver.close()  # must not raise


def test_transient_errors_do_not_lose_conversions() -> None:
    faults = FaultPlan(error_rates={errno.EREMOTEIO: 0.01, errno.ETIMEDOUT: 0.001}, seed=3)
    chip = Nau7802Chip(signal=lambda t: t * RATE_SPS, counts_per_n=1.0)
    bus = SimBus([chip], faults=faults)
    driver = Nau7802(RetryingBus(bus, backoff_s=0), bus.clock, gain=1)
    driver.start()
    reads = run_polls(driver, bus, bus.clock.monotonic_s() + 5.0)  # type: ignore[arg-type]
    assert sum(bus.counters.injected_errors.values()) > 10
    assert np.all(np.diff([r.code for r in reads]) == 1)


def test_nominal_scale_matches_a_200_kg_2_mv_per_v_cell() -> None:
    # 2 mV/V at gain 128 spans 0.002 * 128 * 2**24 codes over 1961 N.
    assert nominal_force_n_per_count(128) * 0.002 * 128 * 2**24 == pytest.approx(1961.33, rel=1e-5)


@given(st.integers(min_value=-(1 << 23), max_value=(1 << 23) - 1))
def test_sign_extension_round_trips(code: int) -> None:
    raw = code & 0xFFFFFF
    assert sign_extend_24(raw >> 16, (raw >> 8) & 0xFF, raw & 0xFF) == code


@pytest.mark.parametrize("clock_error", [-0.04, -0.01, 0.01, 0.04])
def test_off_nominal_oscillator_is_learnt(clock_error: float) -> None:
    faults = FaultPlan(stalls=[(6.0 + 0.37 * i, 0.150 + 0.0011 * i) for i in range(8)])
    chip = Nau7802Chip(signal=lambda t: t * RATE_SPS, counts_per_n=1.0, clock_error=clock_error)
    driver, _, bus = rig(chip, faults=faults, gain=1)
    driver.start()
    reads = run_polls(driver, bus, 10.0)
    assert driver.period_est_s * RATE_SPS * (1 + clock_error) == pytest.approx(1.0, abs=0.002)
    missed = [r.missed for r in reads]
    # Codes of a ramp in time: one per conversion only at the nominal rate, so compare counts.
    assert sum(missed) == chip.missed_conversions >= 8 * 45
    assert len(reads) == chip.conversions_read


@given(
    intervals_ms=st.lists(st.floats(min_value=0.05, max_value=1.5), min_size=50, max_size=400),
    stall_ms=st.lists(st.floats(min_value=0.0, max_value=60.0), min_size=1, max_size=4),
    rate_sps=st.sampled_from([80, 320]),
)
def test_any_poll_schedule_accounts_for_every_conversion(
    intervals_ms: list[float], stall_ms: list[float], rate_sps: int
) -> None:
    # Polls at irregular intervals up to half a period (at 320 SPS), with stalls once running
    # (a stall during the start-up calibration leaves the count before the first read open).
    faults = FaultPlan(stalls=[(0.6 + 0.2 * i, ms / 1e3) for i, ms in enumerate(stall_ms)])
    chip = Nau7802Chip(signal=lambda t: t * rate_sps, counts_per_n=1.0)
    driver, _, bus = rig(chip, faults=faults, gain=1, rate_sps=rate_sps)
    driver.start()
    reads = []
    for i in range(3000):
        read = driver.poll()
        if read.code is not None:
            reads.append(read)
        bus.clock.sleep(intervals_ms[i % len(intervals_ms)] / 1e3)
    missed = [r.missed for r in reads]
    assert_missed_counts([r.code for r in reads if r.code is not None], missed)
    assert sum(missed) == chip.missed_conversions
    assert len(reads) == chip.conversions_read


def test_scale_defaults_to_the_nominal_cell_and_can_be_replaced() -> None:
    driver, _, _ = rig(gain=64)
    assert driver.info.force_n_per_count == nominal_force_n_per_count(64)
    assert driver.info.force_offset_counts == 0.0
    driver.set_scale(0.01, -2500.0)
    assert (driver.info.force_n_per_count, driver.info.force_offset_counts) == (0.01, -2500.0)


def test_restart_after_close() -> None:
    driver, chip, bus = rig()
    driver.start()
    driver.close()
    with pytest.raises(SensorError, match="call start"):
        driver.poll()
    driver.start()
    reads = run_polls(driver, bus, bus.clock.monotonic_s() + 0.05)
    assert reads and chip.calibrations == 2
