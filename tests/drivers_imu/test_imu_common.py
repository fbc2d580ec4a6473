"""Behaviour both IMU drivers share, run against each chip's simulator: identity errors,
overflow handling, silent resets, configuration read-back and code conversion."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from imu_test_signals import (
    FrameChecker,
    FrameReadHook,
    assert_si_within_one_lsb,
    moving_signal,
    table_signal,
)
from spinecoach.drivers.bus import RetryingBus
from spinecoach.drivers.imu_config import FifoImu
from spinecoach.drivers.lsm6dsox import Lsm6dsox
from spinecoach.drivers.mpu6050 import Mpu6050
from spinecoach.drivers.sim.bus import FaultPlan, SimBus
from spinecoach.drivers.sim.lsm6dsox_chip import Lsm6dsoxChip
from spinecoach.drivers.sim.mpu6050_chip import Mpu6050Chip
from spinecoach.errors import SensorError, WrongChipError


@dataclass(frozen=True)
class Kit:
    """One chip: its simulator, driver and the registers the tests look at."""

    chip_type: type[Any]
    driver_type: type[FifoImu]
    address: int
    data_register: int
    restart_writes: list[tuple[int, bytes]]
    #: (register, bit) of a latched overflow flag the driver must act on.
    overflow_flag: tuple[int, int]
    #: Makes the chip overflow without setting any flag (so only the level shows it).
    silence_overflow_flag: Callable[[SimBus], None]
    #: A stall long enough to overflow the FIFO, and one it just survives (s).
    overflow_stall_s: float
    near_full_stall_s: float
    relative: tuple[int, str]
    pin: str
    ranges: tuple[tuple[int, int], ...]
    #: Writes of a re-initialisation after a silent reset, given those of start().
    reinit_writes: Callable[[list[tuple[int, bytes]]], list[tuple[int, bytes]]]
    #: A configuration register and the bits to flip in it behind the driver's back.
    tamper: tuple[int, int]


MPU = Kit(
    chip_type=Mpu6050Chip,
    driver_type=Mpu6050,
    address=0x68,
    data_register=0x74,
    restart_writes=[(0x6A, b"\x04"), (0x6A, b"\x40")],
    overflow_flag=(0x3A, 0x10),
    silence_overflow_flag=lambda bus: bus.write_byte_data(0x68, 0x38, 0x00),  # no FIFO_OFLOW_EN
    overflow_stall_s=0.15,
    near_full_stall_s=0.05,  # with the 20 ms between drains: 70 frames, 840 of 1024 bytes
    relative=(0x70, "MPU-6500"),
    pin="AD0",
    ranges=((250, 2), (500, 4), (1000, 8), (2000, 16)),
    reinit_writes=lambda start: start[1:],  # found at power-on defaults: no DEVICE_RESET
    tamper=(0x1B, 0x08),  # GYRO_CONFIG full scale
)
LSM = Kit(
    chip_type=Lsm6dsoxChip,
    driver_type=Lsm6dsox,
    address=0x6A,
    data_register=0x78,
    restart_writes=[(0x0A, b"\x00"), (0x0A, b"\x06")],
    overflow_flag=(0x3B, 0x08),
    silence_overflow_flag=lambda bus: bus.write_byte_data(0x6A, 0x0A, 0x01),  # FIFO mode
    overflow_stall_s=0.8,  # 512 words hold 0.31 s
    near_full_stall_s=0.2,  # with the 20 ms between drains: 367 of 512 words
    relative=(0x6A, "LSM6DSL"),
    pin="SA0",
    ranges=((125, 2), (250, 4), (500, 8), (1000, 16), (2000, 8)),
    reinit_writes=lambda start: start,
    tamper=(0x11, 0x04),  # CTRL2_G full scale
)
KITS = [pytest.param(MPU, id="mpu6050"), pytest.param(LSM, id="lsm6dsox")]


def rig(
    kit: Kit,
    faults: FaultPlan | None = None,
    wrap: Callable[[SimBus], Any] | None = None,
    **chip_options: Any,
) -> tuple[Any, SimBus, Any, FifoImu]:
    """(chip, simulated bus, bus the driver uses, driver)."""
    chip = kit.chip_type(signal=moving_signal, **chip_options)
    sim = SimBus([chip], faults=faults)
    bus = wrap(sim) if wrap else sim
    return chip, sim, bus, kit.driver_type(bus, sim.clock)


def drain_until(
    sim: SimBus, driver: FifoImu, checker: FrameChecker, until_s: float, every_s: float = 0.02
) -> list[Any]:
    reads = []
    while sim.clock.monotonic_s() < until_s:
        sim.clock.sleep(every_s)
        read = driver.drain()
        checker.check(read)
        reads.append(read)
    return reads


def refuse() -> None:
    raise AssertionError("the FIFO data must not be read")


@pytest.mark.parametrize("kit", KITS)
def test_a_different_chip_is_named_with_what_to_check(kit: Kit) -> None:
    identity, name = kit.relative
    chip, _, _, driver = rig(kit, who_am_i=identity)
    with pytest.raises(WrongChipError) as info:
        driver.start()
    message = str(info.value)
    assert f"0x{identity:02X}" in message and name in message and kit.pin in message
    assert f"0x{kit.driver_type.WHO_AM_I_VALUE:02X}" in message and "\n" not in message
    assert chip.register_writes == []  # nothing is written to a chip we do not know


@pytest.mark.parametrize("retrying", [False, True])
@pytest.mark.parametrize("kit", KITS)
def test_an_absent_chip_says_check_wiring_and_i2cdetect(kit: Kit, retrying: bool) -> None:
    sim = SimBus([])
    bus = RetryingBus(sim, backoff_s=0) if retrying else sim
    address = kit.address + 1
    driver = kit.driver_type(bus, sim.clock, address=address, name="pelvis")
    with pytest.raises(SensorError) as info:
        driver.start()
    message = str(info.value)
    assert f"0x{address:02X}" in message and "pelvis" in message
    assert "wiring" in message and "pull-ups" in message and "i2cdetect -y 1" in message
    driver.close()  # never raises on an absent chip


@pytest.mark.parametrize("kit", KITS)
def test_a_reader_stall_overflows_resets_the_fifo_then_frames_are_clean(kit: Kit) -> None:
    chip, sim, _, driver = rig(kit, faults=FaultPlan(stalls=[(0.5, kit.overflow_stall_s)]))
    driver.start()
    start_writes = list(chip.register_writes)
    checker = FrameChecker(driver)
    reads = drain_until(sim, driver, checker, 2.0)
    overflowed = [i for i, read in enumerate(reads) if read.overflowed]
    assert len(overflowed) == 1 and chip.overflows >= 1 and driver.stats.overflows == 1
    assert chip.register_writes == start_writes + kit.restart_writes
    assert all(read.raw.shape[0] > 0 for read in reads[overflowed[0] + 1 :])
    assert checker.misaligned == 0


@pytest.mark.parametrize("kit", KITS)
def test_an_overflow_under_the_data_read_is_not_delivered_as_frames(kit: Kit) -> None:
    # The reader loses the CPU between the level read and the data read: the chip overflows
    # (dropping its oldest data) under it.
    hook: list[FrameReadHook] = []

    def wrap(sim: SimBus) -> FrameReadHook:
        hook.append(FrameReadHook(sim, kit.data_register, lambda: sim.clock.sleep(0.5)))
        return hook[0]

    chip, sim, _, driver = rig(kit, wrap=wrap)
    driver.start()
    checker = FrameChecker(driver)
    drain_until(sim, driver, checker, sim.clock.monotonic_s() + 0.03, every_s=0.03)
    sim.clock.sleep(0.03)
    hook[0].armed = True
    read = driver.drain()
    assert chip.overflows >= 1 and read.overflowed and read.raw.shape == (0, 6)
    checker.check(read)
    drain_until(sim, driver, checker, sim.clock.monotonic_s() + 0.2, every_s=0.01)
    assert checker.misaligned == 0 and checker.frames > 150


@pytest.mark.parametrize("kit", KITS)
def test_the_overflow_flag_discards_the_frames_read_with_it(kit: Kit) -> None:
    chip, sim, _, driver = rig(kit)
    driver.start()
    sim.clock.sleep(0.01)
    register, bit = kit.overflow_flag
    chip.regs[register] |= bit  # latched, with a FIFO far from full
    read = driver.drain()
    assert read.overflowed and read.raw.shape == (0, 6)
    assert chip.register_writes[-2:] == kit.restart_writes


@pytest.mark.parametrize("kit", KITS)
def test_a_hiccup_the_fifo_can_hold_loses_nothing(kit: Kit) -> None:
    chip, sim, _, driver = rig(kit, faults=FaultPlan(stalls=[(0.3, kit.near_full_stall_s)]))
    driver.start()
    checker = FrameChecker(driver)
    reads = drain_until(sim, driver, checker, 1.0)
    assert not any(read.overflowed for read in reads) and chip.overflows == 0
    assert (
        max(read.raw.shape[0] for read in reads)
        >= 0.8 * kit.near_full_stall_s * driver.info.rate_hz
    )
    assert checker.misaligned == 0


@pytest.mark.parametrize("kit", KITS)
def test_a_full_fifo_alone_resets_it_without_reading_it(kit: Kit) -> None:
    hook: list[FrameReadHook] = []
    chip, sim, _, driver = rig(
        kit, wrap=lambda sim: hook.append(FrameReadHook(sim, kit.data_register, refuse)) or hook[0]
    )
    driver.start()
    kit.silence_overflow_flag(sim)
    sim.clock.sleep(1.0)
    hook[0].armed = True
    assert driver.drain().overflowed
    register, bit = kit.overflow_flag
    assert chip.overflows >= 1 and chip.regs[register] & bit == 0
    assert chip.register_writes[-2:] == kit.restart_writes


@pytest.mark.parametrize("kit", KITS)
def test_a_failed_data_read_resets_the_fifo_on_the_next_drain(kit: Kit) -> None:
    def fail() -> None:
        raise OSError(errno.ETIMEDOUT, "injected")

    hook: list[FrameReadHook] = []
    chip, sim, _, driver = rig(
        kit, wrap=lambda sim: hook.append(FrameReadHook(sim, kit.data_register, fail)) or hook[0]
    )
    driver.start()
    sim.clock.sleep(0.02)
    hook[0].armed = True
    with pytest.raises(OSError):
        driver.drain()
    read = driver.drain()
    assert read.overflowed and read.raw.shape == (0, 6)
    assert chip.register_writes[-2:] == kit.restart_writes
    checker = FrameChecker(driver)
    drain_until(sim, driver, checker, sim.clock.monotonic_s() + 0.02)
    assert checker.frames >= 15 and checker.misaligned == 0


@pytest.mark.parametrize("kit", KITS)
def test_a_silent_reset_is_detected_and_no_frozen_frame_is_delivered(kit: Kit) -> None:
    chip = kit.chip_type(signal=moving_signal)
    reset_at_s = 0.6
    sim = SimBus([chip], faults=FaultPlan(chip_events=[(reset_at_s, chip.power_on_reset)]))
    driver = kit.driver_type(sim, sim.clock)
    driver.start()
    start_writes = list(chip.register_writes)
    checker = FrameChecker(driver)
    detected_at_s = None
    while sim.clock.monotonic_s() < 1.2:
        sim.clock.sleep(0.02)
        drain_began_s = sim.clock.monotonic_s()
        read = driver.drain()
        checker.check(read)
        if read.reinitialised:
            assert detected_at_s is None
            detected_at_s = drain_began_s
            assert sim.clock.monotonic_s() - drain_began_s < 0.035  # short: others wait
    assert detected_at_s is not None and detected_at_s - reset_at_s < 0.100
    assert driver.stats.reinitialisations == 1
    # Every frame delivered, before and after, is the signal at its time: none frozen or zero.
    assert checker.misaligned == 0 and checker.frames > 700
    assert chip.register_writes[len(start_writes) :] == kit.reinit_writes(start_writes)


@pytest.mark.parametrize("kit", KITS)
def test_check_configuration_reads_back_and_repairs_the_chip(kit: Kit) -> None:
    chip, sim, _, driver = rig(kit)
    driver.start()
    start_writes = list(chip.register_writes)
    assert driver.check_configuration() is False
    chip.power_on_reset(sim.clock.monotonic_s())
    assert driver.check_configuration() is True
    assert chip.register_writes[len(start_writes) :] == kit.reinit_writes(start_writes)
    assert driver.check_configuration() is False
    # A configuration changed behind the driver's back (not a clean reset) gets a full start.
    register, flip = kit.tamper
    sim.write_byte_data(kit.address, register, driver.expected_registers[register] ^ flip)
    writes_before = len(chip.register_writes)
    assert driver.check_configuration() is True
    assert chip.register_writes[writes_before:] == start_writes
    assert driver.stats.reinitialisations == 2


@pytest.mark.parametrize("kit", KITS)
def test_codes_convert_to_si_within_one_lsb_and_saturate_at_full_scale(kit: Kit) -> None:
    for gyro_dps, accel_g in kit.ranges:
        table = np.random.default_rng(gyro_dps).uniform(-1.2, 1.2, size=(4096, 6))  # some beyond
        signal = table_signal(table, gyro_dps, accel_g)
        chip = kit.chip_type(signal=signal)
        sim = SimBus([chip])
        driver = kit.driver_type(sim, sim.clock, gyro_range_dps=gyro_dps, accel_range_g=accel_g)
        driver.start()
        checker = FrameChecker(driver, signal)
        raws = [
            read.raw for read in drain_until(sim, driver, checker, sim.clock.monotonic_s() + 0.4)
        ]
        raw = np.concatenate(raws)
        t_s = driver.fifo_started_s + np.arange(raw.shape[0]) / driver.info.rate_hz
        assert raw.shape[0] > 300 and checker.misaligned == 0
        assert_si_within_one_lsb(raw, signal(t_s), driver.info)
