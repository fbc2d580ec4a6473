"""MPU-6050 driver against its register-level simulator on the simulated bus."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from imu_test_signals import (
    FrameChecker,
    expected_codes,
    moving_signal,
)
from spinecoach.drivers.bus import read_block
from spinecoach.drivers.imu_config import ImuConfig, open_imu
from spinecoach.drivers.interfaces import ImuDriver
from spinecoach.drivers.mpu6050 import Mpu6050
from spinecoach.drivers.sim.bus import FaultPlan, SimBus
from spinecoach.drivers.sim.mpu6050_chip import Mpu6050Chip
from spinecoach.errors import ConfigError

RATE_HZ = 1000.0


def make_rig(
    faults: FaultPlan | None = None, **chip_options: Any
) -> tuple[Mpu6050Chip, SimBus, Mpu6050]:
    chip = Mpu6050Chip(signal=moving_signal, **chip_options)
    bus = SimBus([chip], faults=faults)
    return chip, bus, Mpu6050(bus, bus.clock)


def test_the_driver_satisfies_the_imu_interface() -> None:
    _, bus, driver = make_rig()
    assert isinstance(driver, Mpu6050)
    typed: ImuDriver = driver
    assert typed.info.kind == "imu" and typed.info.chip == "MPU-6050"
    built = open_imu(bus, bus.clock, ImuConfig(chip="mpu6050", address=0x68, name="pelvis"))
    assert isinstance(built, Mpu6050) and built.info.name == "pelvis"


def test_start_writes_exactly_the_documented_sequence() -> None:
    chip, _, driver = make_rig()
    driver.start()
    assert chip.register_writes == [
        (0x6B, b"\x80"),  # PWR_MGMT_1: DEVICE_RESET
        (0x6B, b"\x01"),  # PWR_MGMT_1: awake, CLKSEL=1 (PLL on the X gyro)
        (0x19, bytes([0x00, 0x02, 0x18, 0x10])),  # SMPLRT_DIV 0, DLPF 98 Hz, +-2000 dps, +-8 g
        (0x38, b"\x10"),  # INT_ENABLE: FIFO_OFLOW_EN
        (0x23, b"\x78"),  # FIFO_EN: XG YG ZG ACCEL, no temperature
        (0x6A, b"\x04"),  # USER_CTRL: FIFO_RESET with the FIFO disabled
        (0x6A, b"\x40"),  # USER_CTRL: FIFO_EN
    ]
    assert driver.info.t0_s == driver.fifo_started_s > 0.1  # after the 100 ms reset wait


@pytest.mark.parametrize(
    ("gyro_dps", "accel_g", "dlpf_hz", "rate_hz", "registers", "lsb_per_dps", "lsb_per_g"),
    [
        (250, 2, 188, 1000.0, [0x00, 0x01, 0x00, 0x00], 131.0, 16384.0),
        (500, 4, 98, 500.0, [0x01, 0x02, 0x08, 0x08], 65.5, 8192.0),
        (1000, 16, 42, 200.0, [0x04, 0x03, 0x10, 0x18], 32.8, 2048.0),
        (2000, 8, 5, 100.0, [0x09, 0x06, 0x18, 0x10], 16.4, 4096.0),
        (2000, 8, 256, 1000.0, [0x07, 0x00, 0x18, 0x10], 16.4, 4096.0),  # DLPF off: 8 kHz / 8
        (2000, 8, 256, 250.0, [0x1F, 0x00, 0x18, 0x10], 16.4, 4096.0),
    ],
)
def test_ranges_filter_and_rate_reach_the_chip_and_its_output_rate(
    gyro_dps: int,
    accel_g: int,
    dlpf_hz: int,
    rate_hz: float,
    registers: list[int],
    lsb_per_dps: float,
    lsb_per_g: float,
) -> None:
    chip = Mpu6050Chip()
    bus = SimBus([chip])
    driver = Mpu6050(
        bus,
        bus.clock,
        rate_hz=rate_hz,
        gyro_range_dps=gyro_dps,
        accel_range_g=accel_g,
        dlpf_hz=dlpf_hz,
    )
    driver.start()
    assert (0x19, bytes(registers)) in chip.register_writes
    assert driver.info.rate_hz == rate_hz
    assert driver.info.gyro_dps_per_lsb == pytest.approx(1 / lsb_per_dps)
    assert driver.info.accel_g_per_lsb == pytest.approx(1 / lsb_per_g)
    frames = 0
    for _ in range(50):
        bus.clock.sleep(0.02)
        frames += driver.drain().raw.shape[0]
    level = read_block(bus, 0x68, 0x72, 2)
    still_in_fifo = ((level[0] << 8) | level[1]) // 12
    elapsed_s = bus.clock.monotonic_s() - driver.fifo_started_s
    # Within two samples: sample 0 is taken at the start, and the level read takes time.
    assert abs(frames + still_in_fifo - elapsed_s * rate_hz) <= 2


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"rate_hz": 300.0}, "rate_hz 300"),
        ({"rate_hz": 2000.0, "dlpf_hz": 256}, "at most 1000"),
        ({"gyro_range_dps": 300}, "250, 500, 1000, 2000"),
        ({"accel_range_g": 3}, "2, 4, 8, 16"),
        ({"dlpf_hz": 100}, "dlpf_hz 100"),
        ({"address": 0x6A}, "0x68 or 0x69"),
    ],
)
def test_impossible_settings_are_configuration_errors(options: dict[str, Any], words: str) -> None:
    bus = SimBus([Mpu6050Chip()])
    with pytest.raises(ConfigError, match=words):
        Mpu6050(bus, bus.clock, **options)


def test_two_mpus_on_one_bus_stream_their_own_signals() -> None:
    def pelvis_signal(t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gyro, accel = moving_signal(t_s)
        return -gyro, -accel

    trunk_chip = Mpu6050Chip(0x68, signal=moving_signal)
    pelvis_chip = Mpu6050Chip(0x69, signal=pelvis_signal)
    bus = SimBus([trunk_chip, pelvis_chip])
    trunk = Mpu6050(bus, bus.clock, address=0x68, name="trunk")
    pelvis = Mpu6050(bus, bus.clock, address=0x69, name="pelvis")
    trunk.start()
    pelvis.start()
    assert trunk_chip.register_writes == pelvis_chip.register_writes
    checker = FrameChecker(trunk)
    pelvis_frames = []
    for _ in range(100):
        bus.clock.sleep(0.01)
        checker.check(trunk.drain())
        pelvis_frames.append(pelvis.drain().raw)
    assert checker.misaligned == 0 and checker.frames > 900
    pelvis_raw = np.concatenate(pelvis_frames)
    t_s = pelvis.fifo_started_s + np.arange(pelvis_raw.shape[0]) / RATE_HZ
    assert np.abs(pelvis_raw - expected_codes(pelvis_signal, t_s, pelvis.info)).max() <= 1


def test_each_drain_is_one_data_transfer_of_whole_frames() -> None:
    chip, bus, driver = make_rig(frame_write_s=0.0008)
    driver.start()
    checker = FrameChecker(driver)
    bus.clock.sleep(0.0202)  # 20 whole frames, the 21st being written
    before = bus.counters.transactions
    read = driver.drain()
    assert bus.counters.transactions - before == 3  # FIFO_COUNT, frames, INT_STATUS
    latched_count = (chip.regs[0x72] << 8) | chip.regs[0x73]
    assert latched_count % 12 != 0  # the driver saw a partial frame ...
    assert read.raw.shape == (20, 6) and read.raw.dtype == np.int16  # ... and left it there
    checker.check(read)
    bus.clock.sleep(0.01)
    checker.check(driver.drain())  # the next drain starts with that frame, complete
    assert checker.misaligned == 0 and checker.frames >= 30


def drain_at_odd_moments(drains: int, seed: int) -> FrameChecker:
    """Drains at random moments while the chip writes frames byte by byte, so FIFO counts
    land anywhere, including in the middle of a frame."""
    chip, bus, driver = make_rig(frame_write_s=0.0009)
    driver.start()
    checker = FrameChecker(driver)
    rng = np.random.default_rng(seed)
    waits_s = rng.uniform(0.0, 0.004, drains)
    partial_counts = 0
    for wait_s in waits_s:
        bus.clock.sleep(float(wait_s))
        read = driver.drain()
        assert not read.overflowed and not read.reinitialised
        checker.check(read)
        partial_counts += ((chip.regs[0x72] << 8) | chip.regs[0x73]) % 12 != 0
    assert partial_counts > drains // 10  # the partial-frame case really happened
    return checker


def test_drains_at_odd_fifo_counts_never_misalign_a_frame() -> None:
    checker = drain_at_odd_moments(20_000, seed=1)
    assert checker.misaligned == 0 and checker.frames > 20_000


@pytest.mark.soak
def test_drains_at_odd_fifo_counts_never_misalign_a_frame_soak() -> None:
    checker = drain_at_odd_moments(100_000, seed=2)
    assert checker.misaligned == 0 and checker.frames > 100_000


def test_close_puts_the_chip_to_sleep() -> None:
    chip, _, driver = make_rig()
    driver.start()
    driver.close()
    assert chip.regs[0x6B] & 0x40


def test_the_simulated_fifo_follows_the_register_map() -> None:
    chip = Mpu6050Chip()
    bus = SimBus([chip])
    assert bus.read_byte_data(0x68, 0x75) == 0x68 and bus.read_byte_data(0x68, 0x6B) == 0x40
    driver = Mpu6050(bus, bus.clock, rate_hz=100.0)
    driver.start()
    bus.clock.sleep(0.025)  # frames 0, 1 and 2 (10 ms apart)
    assert read_block(bus, 0x68, 0x72, 2) == bytes([0, 36])
    frame = read_block(bus, 0x68, 0x74, 12)
    assert frame == bytes([0, 0, 0, 0, 0x10, 0x00] + [0] * 6)  # ax ay az = 0 0 4096, gyro 0
    # COUNTL alone is a shadow: it changes only when COUNTH is read (RM 4.30).
    assert bus.read_byte_data(0x68, 0x73) == 36
    assert read_block(bus, 0x68, 0x72, 2) == bytes([0, 24])
    read_block(bus, 0x68, 0x74, 24)
    # An empty FIFO repeats the last byte read (RM 4.31).
    assert read_block(bus, 0x68, 0x74, 3) == bytes([0, 0, 0])
    # The data registers hold the latest sample.
    assert read_block(bus, 0x68, 0x3B, 6) == bytes([0, 0, 0, 0, 0x10, 0x00])
    # A silent reset leaves the chip asleep with everything at its reset value.
    chip.power_on_reset(bus.clock.monotonic_s())
    assert read_block(bus, 0x68, 0x3B, 6) == bytes(6)
    assert bus.read_byte_data(0x68, 0x6B) == 0x40 and bus.read_byte_data(0x68, 0x23) == 0


def test_the_simulated_fifo_writes_the_selected_registers_in_register_order() -> None:
    chip = Mpu6050Chip(temperature_c=36.53 + 10.0)  # TEMP_OUT = 3400 (RM 4.18)
    bus = SimBus([chip])
    Mpu6050(bus, bus.clock, rate_hz=100.0).start()
    bus.write_byte_data(0x68, 0x23, 0x80 | 0x08 | 0x10)  # TEMP, ACCEL, ZG
    bus.write_byte_data(0x68, 0x6A, 0x04)
    bus.write_byte_data(0x68, 0x6A, 0x40)
    bus.clock.sleep(0.015)  # samples 0 and 1
    assert read_block(bus, 0x68, 0x72, 2) == bytes([0, 20])  # 10-byte frames
    frame = np.frombuffer(read_block(bus, 0x68, 0x74, 10), ">i2").tolist()
    assert frame == [0, 0, 4096, 3400, 0]  # ax ay az, temperature, gz


@pytest.mark.parametrize(("dlpf_hz", "delay_s"), [(256, 0.00098), (98, 0.0028), (5, 0.0186)])
def test_the_stream_carries_the_filter_settings_group_delay(dlpf_hz: int, delay_s: float) -> None:
    bus = SimBus([Mpu6050Chip(signal=moving_signal)])
    imu = Mpu6050(bus, bus.clock, rate_hz=200.0 if dlpf_hz == 5 else 1000.0, dlpf_hz=dlpf_hz)
    imu.start()
    assert imu.info.gyro_delay_s == delay_s


def test_the_simulated_chip_delays_the_rigs_signal_by_its_filters_group_delay() -> None:
    from spinecoach.drivers.sim.scenarios import build_scenario

    signal = build_scenario("good_morning_tempo").imu_signal("trunk")
    for dlpf_hz in (98, 20):
        bus = SimBus([Mpu6050Chip(signal=signal)])
        imu = Mpu6050(bus, bus.clock, gyro_range_dps=250, dlpf_hz=dlpf_hz)
        imu.start()
        raw = []
        for _ in range(650):  # into the first lowering: the trunk turns at up to ~40 °/s
            bus.clock.sleep(0.01)
            raw.append(imu.drain().raw)
        codes = np.concatenate(raw)
        t_s = imu.fifo_started_s + np.arange(len(codes)) / RATE_HZ
        delay_s = imu.info.gyro_delay_s
        assert delay_s is not None
        late = expected_codes(signal.delayed(delay_s), t_s, imu.info)
        on_time = expected_codes(signal, t_s, imu.info)
        # the codes are the motion as it was one group delay earlier, not as it is
        assert np.abs(codes - late).max() <= 1
        assert np.abs(codes - on_time).max() > 10
    # the noise and bias are the chip's own: only the motion moves in time
    assert np.array_equal(signal.delayed(0.0028).bias_dps(np.array([1.0])),
                          signal.bias_dps(np.array([1.0])))
