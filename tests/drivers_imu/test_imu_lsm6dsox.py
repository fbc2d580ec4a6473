"""LSM6DSOX driver against its register-level simulator on the simulated bus."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from imu_test_signals import (
    FrameChecker,
    moving_signal,
)
from spinecoach.drivers.bus import read_block
from spinecoach.drivers.imu_config import ImuConfig, open_imu
from spinecoach.drivers.interfaces import ImuDriver
from spinecoach.drivers.lsm6dsox import Lsm6dsox
from spinecoach.drivers.sim.bus import FaultPlan, SimBus
from spinecoach.drivers.sim.lsm6dsox_chip import Lsm6dsoxChip
from spinecoach.errors import ConfigError

RESTART_FIFO = [(0x0A, b"\x00"), (0x0A, b"\x06")]  # FIFO_CTRL4: bypass (empties), continuous


def make_rig(
    faults: FaultPlan | None = None, **chip_options: Any
) -> tuple[Lsm6dsoxChip, SimBus, Lsm6dsox]:
    chip = Lsm6dsoxChip(signal=moving_signal, **chip_options)
    bus = SimBus([chip], faults=faults)
    return chip, bus, Lsm6dsox(bus, bus.clock)


def words_in_fifo(bus: SimBus, address: int = 0x6A) -> int:
    status = read_block(bus, address, 0x3A, 2)
    return ((status[1] & 0x03) << 8) | status[0]


def test_the_driver_satisfies_the_imu_interface() -> None:
    _, bus, driver = make_rig()
    typed: ImuDriver = driver
    assert typed.info.kind == "imu" and typed.info.chip == "LSM6DSOX"
    built = open_imu(bus, bus.clock, ImuConfig(chip="lsm6dsox", name="implement"))
    assert isinstance(built, Lsm6dsox) and built.address == 0x6A and built.info.name == "implement"
    assert built.info.rate_hz == pytest.approx(6667 / 8)


def test_start_writes_exactly_the_documented_sequence() -> None:
    chip, _, driver = make_rig()
    driver.start()
    assert chip.register_writes == [
        (0x12, b"\x05"),  # CTRL3_C: SW_RESET, keeping IF_INC
        (0x12, b"\x44"),  # CTRL3_C: BDU, IF_INC
        (0x10, bytes([0x7C, 0x7C])),  # CTRL1_XL 833 Hz +-8 g, CTRL2_G 833 Hz +-2000 dps
        (0x09, b"\x77"),  # FIFO_CTRL3: BDR_GY = BDR_XL = 833 Hz
        *RESTART_FIFO,
    ]
    assert driver.info.t0_s == driver.fifo_started_s


@pytest.mark.parametrize(
    ("gyro_dps", "accel_g", "rate_hz", "ctrl", "bdr", "mdps", "mg"),
    [
        (125, 2, 104.0, [0x40, 0x42], 0x44, 4.375, 0.061),
        (250, 16, 208.0, [0x54, 0x50], 0x55, 8.75, 0.488),
        (500, 4, 1666.0, [0x88, 0x84], 0x88, 17.5, 0.122),
        (1000, 8, 12.5, [0x1C, 0x18], 0x11, 35.0, 0.244),
    ],
)
def test_ranges_and_rate_reach_the_chip_and_its_output_rate(
    gyro_dps: int, accel_g: int, rate_hz: float, ctrl: list[int], bdr: int, mdps: float, mg: float
) -> None:
    chip = Lsm6dsoxChip()
    bus = SimBus([chip])
    driver = Lsm6dsox(
        bus, bus.clock, rate_hz=rate_hz, gyro_range_dps=gyro_dps, accel_range_g=accel_g
    )
    driver.start()
    assert (0x10, bytes(ctrl)) in chip.register_writes and (
        0x09,
        bytes([bdr]),
    ) in chip.register_writes
    assert driver.info.rate_hz == pytest.approx(rate_hz, rel=0.05)
    assert driver.info.gyro_dps_per_lsb == pytest.approx(mdps / 1000)
    assert driver.info.accel_g_per_lsb == pytest.approx(mg / 1000)
    frames = 0
    for _ in range(20):
        bus.clock.sleep(min(0.1, 100 / rate_hz))  # about 100 slots per drain
        read = driver.drain()
        assert not read.overflowed
        frames += read.raw.shape[0]
    elapsed_s = bus.clock.monotonic_s() - driver.fifo_started_s
    # Within two samples: sample 0 is taken at the start, and the level read takes time.
    assert abs(frames + words_in_fifo(bus) / 2 - elapsed_s * driver.info.rate_hz) <= 2


def test_the_rate_follows_the_chips_frequency_trim() -> None:
    chip, bus, driver = make_rig(freq_fine=-10)  # 1.5 % slow
    driver.start()
    assert driver.info.rate_hz == pytest.approx(6667 * (1 - 0.015) / 8)
    checker = FrameChecker(driver)
    for _ in range(50):
        bus.clock.sleep(0.02)
        checker.check(driver.drain())
    assert checker.misaligned == 0 and checker.frames > 800


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"rate_hz": 1000.0}, "12.5, 26, 52"),
        ({"gyro_range_dps": 300}, "125, 250, 500, 1000, 2000"),
        ({"accel_range_g": 3}, "accel_range_g 3"),
        ({"address": 0x68}, "0x6A or 0x6B"),
    ],
)
def test_impossible_settings_are_configuration_errors(options: dict[str, Any], words: str) -> None:
    bus = SimBus([Lsm6dsoxChip()])
    with pytest.raises(ConfigError, match=words):
        Lsm6dsox(bus, bus.clock, **options)


def drain_at_odd_moments(drains: int, seed: int, accel_first: bool) -> tuple[FrameChecker, int]:
    """Drains at random moments while each slot's second word lags the first, so drains often
    find a slot half written (the driver keeps that word for the next drain)."""
    chip, bus, driver = make_rig(second_word_lag_s=0.0006, accel_first=accel_first)
    driver.start()
    checker = FrameChecker(driver)
    half_slots = 0
    for wait_s in np.random.default_rng(seed).uniform(0.0, 0.005, drains):
        bus.clock.sleep(float(wait_s))
        read = driver.drain()
        assert not read.overflowed and not read.reinitialised
        checker.check(read)
        half_slots += chip.regs[0x3A] % 2  # the DIFF_FIFO the driver saw was odd
    return checker, half_slots


@pytest.mark.parametrize("accel_first", [False, True])
def test_words_pair_into_frames_whatever_the_fifo_level(accel_first: bool) -> None:
    checker, half_slots = drain_at_odd_moments(5_000, seed=3, accel_first=accel_first)
    assert checker.misaligned == 0 and checker.frames > 8_000
    assert half_slots > 500


@pytest.mark.soak
def test_words_pair_into_frames_whatever_the_fifo_level_soak() -> None:
    checker, half_slots = drain_at_odd_moments(100_000, seed=4, accel_first=False)
    assert checker.misaligned == 0 and checker.frames > 200_000 and half_slots > 10_000


def test_a_lost_word_breaks_the_pairing_and_is_handled_as_an_overflow() -> None:
    chip, bus, driver = make_rig()
    driver.start()
    checker = FrameChecker(driver)
    bus.clock.sleep(0.02)
    checker.check(driver.drain())
    bus.clock.sleep(0.02)
    chip.catch_up(bus.clock.monotonic_s())
    del chip.fifo[7:14]  # one word of the second slot vanishes
    read = driver.drain()
    assert read.overflowed and read.raw.shape == (0, 6)
    assert chip.register_writes[-2:] == RESTART_FIFO
    checker.check(read)
    bus.clock.sleep(0.02)
    checker.check(driver.drain())
    assert checker.misaligned == 0 and checker.frames > 25


def test_a_skipped_slot_is_handled_as_an_overflow() -> None:
    chip, bus, driver = make_rig()
    driver.start()
    bus.clock.sleep(0.02)
    driver.drain()
    bus.clock.sleep(0.02)
    chip.catch_up(bus.clock.monotonic_s())
    del chip.fifo[:14]  # a whole slot vanishes: TAG_CNT jumps by two
    assert driver.drain().overflowed


def test_close_powers_the_sensors_down() -> None:
    chip, _, driver = make_rig()
    driver.start()
    driver.close()
    assert chip.regs[0x10] == 0 and chip.regs[0x11] == 0


def test_the_simulated_fifo_follows_the_datasheet() -> None:
    chip = Lsm6dsoxChip()
    bus = SimBus([chip])
    assert bus.read_byte_data(0x6A, 0x0F) == 0x6C and bus.read_byte_data(0x6A, 0x12) == 0x04
    driver = Lsm6dsox(bus, bus.clock, rate_hz=104.0)
    driver.start()
    bus.clock.sleep(0.025)  # slots 0, 1 and 2 (9.6 ms apart): six words
    assert words_in_fifo(bus) == 6
    # One burst from the tag register rolls back from 7Eh to 78h: two whole words.
    two_words = read_block(bus, 0x6A, 0x78, 14)
    assert two_words[0] == 0x08 and two_words[7] == 0x10  # gyro then accel, TAG_CNT 0
    assert np.frombuffer(two_words[8:14], "<i2").tolist() == [0, 0, 4098]
    assert words_in_fifo(bus) == 4
    # Output registers hold the latest sample (little-endian), accel z = 1 g.
    assert np.frombuffer(read_block(bus, 0x6A, 0x28, 6), "<i2").tolist() == [0, 0, 4098]
    # FIFO_OVR_LATCHED clears on reading FIFO_STATUS2; bypass mode empties the FIFO.
    bus.clock.sleep(3.0)
    assert read_block(bus, 0x6A, 0x3A, 2)[1] & 0x48 == 0x48
    assert read_block(bus, 0x6A, 0x3A, 2)[1] & 0x48 == 0x40
    bus.write_byte_data(0x6A, 0x0A, 0x00)
    assert words_in_fifo(bus) == 0
    # FIFO mode stops collecting when full instead of overwriting.
    bus.write_byte_data(0x6A, 0x0A, 0x01)
    bus.clock.sleep(6.0)
    assert words_in_fifo(bus) == 512 and read_block(bus, 0x6A, 0x78, 7)[0] >> 1 & 3 == 0


def test_fifo_output_registers_read_byte_by_byte() -> None:
    chip = Lsm6dsoxChip(signal=moving_signal)
    bus = SimBus([chip])
    Lsm6dsox(bus, bus.clock, rate_hz=104.0).start()
    bus.clock.sleep(0.1)  # about ten slots
    word = read_block(bus, 0x6A, 0x78, 7)
    # Starting inside a word reads the current word on, then the roll-back takes the next one.
    tail_and_next = read_block(bus, 0x6A, 0x7B, 5)
    assert tail_and_next[:4] == word[3:]
    assert tail_and_next[4] >> 3 == 0x02 and word[0] >> 3 == 0x01  # accel after gyro
    # Without IF_INC every byte comes from the tag register: each read takes a word.
    words_before = words_in_fifo(bus)
    bus.write_byte_data(0x6A, 0x12, 0x40)
    tags = read_block(bus, 0x6A, 0x78, 3)
    assert [tag >> 3 for tag in tags] == [0x01, 0x02, 0x01]
    assert read_block(bus, 0x6A, 0x3A, 2) == bytes([words_before - 3] * 2)  # no increment
    bus.write_byte_data(0x6A, 0x12, 0x44)
    assert words_in_fifo(bus) == words_before - 3
