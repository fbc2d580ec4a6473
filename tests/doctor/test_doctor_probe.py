"""`spinecoach doctor` on a simulated bus: probing, advice, sampling figures, command line."""

from __future__ import annotations

import errno
import io
from pathlib import Path

import pytest
from spinecoach.cli import main
from spinecoach.doctor import Status, configured_bus_hz, probe_rig, run_doctor, sample
from spinecoach.drivers.bus import RetryingBus
from spinecoach.drivers.sim.bus import FaultPlan, SimBus
from spinecoach.drivers.sim.lsm6dsox_chip import Lsm6dsoxChip
from spinecoach.drivers.sim.mpu6050_chip import Mpu6050Chip
from spinecoach.drivers.sim.nau7802_chip import Nau7802Chip
from spinecoach.errors import ConfigError, NoBusError


class IdentityChip:
    """A chip that only answers its identity register (enough for the probe stage)."""

    def __init__(self, address: int, register: int, value: int) -> None:
        self.address = address
        self.register = register
        self.value = value

    def write(self, register: int, data: bytes, now_s: float) -> None:
        pass

    def read(self, register: int, length: int, now_s: float) -> bytes:
        return bytes([self.value if register == self.register else 0] * length)


def mpu(address: int = 0x68, who_am_i: int = 0x68) -> IdentityChip:
    return IdentityChip(address, 0x75, who_am_i)


def lsm(address: int = 0x6A, who_am_i: int = 0x6C) -> IdentityChip:
    return IdentityChip(address, 0x0F, who_am_i)


def retrying(chips: list[object], faults: FaultPlan | None = None) -> tuple[RetryingBus, SimBus]:
    sim = SimBus(chips, faults=faults)  # type: ignore[arg-type]
    return RetryingBus(sim, backoff_s=0.0002, sleep=sim.clock.sleep), sim


def statuses(bus: RetryingBus) -> dict[str, tuple[Status, str]]:
    return {r.role.name: (r.status, r.message) for r in probe_rig(bus)}


def test_healthy_rig_is_found() -> None:
    bus, _ = retrying([mpu(), Nau7802Chip()])
    found = statuses(bus)
    assert found["trunk IMU"] == (Status.FOUND, "MPU-6050 at 0x68 (id 0x68)")
    assert found["load cell"] == (Status.FOUND, "NAU7802 at 0x2A (id 0x0F)")
    assert found["pelvis IMU"][0] is Status.ABSENT
    assert "optional" in found["pelvis IMU"][1]


@pytest.mark.parametrize("address", [0x6A, 0x6B])
def test_lsm6dsox_fills_the_trunk_role(address: int) -> None:
    bus, _ = retrying([lsm(address), Nau7802Chip()])
    assert statuses(bus)["trunk IMU"] == (Status.FOUND, f"LSM6DSOX at 0x{address:02X} (id 0x6C)")


def test_pelvis_imu_is_found_at_0x69() -> None:
    bus, _ = retrying([mpu(), mpu(0x69), Nau7802Chip()])
    reports = probe_rig(bus)
    assert [r.status for r in reports] == [Status.FOUND] * 3
    assert not any(r.problem for r in reports)


def test_wrong_id_names_the_look_alike_and_the_fix() -> None:
    bus, _ = retrying([mpu(who_am_i=0x70), Nau7802Chip(revision=0x02)])
    found = statuses(bus)
    status, message = found["trunk IMU"]
    assert status is Status.WRONG_ID
    assert "0x70" in message and "MPU-6500" in message and "real-time clock" in message
    assert found["load cell"][0] is Status.WRONG_ID and "0x02" in found["load cell"][1]


def test_trunk_imu_on_the_pelvis_address_gets_the_ad0_fix() -> None:
    bus, _ = retrying([mpu(0x69), Nau7802Chip()])
    status, message = statuses(bus)["trunk IMU"]
    assert status is Status.ABSENT and "AD0 pin to GND" in message


def test_silent_bus_points_at_power_wiring_and_enabling_i2c() -> None:
    bus, _ = retrying([])
    found = statuses(bus)
    assert all(status is Status.ABSENT for status, _ in found.values())
    for role in ("trunk IMU", "load cell"):
        assert "No device answers on this bus" in found[role][1]
        assert "raspi-config" in found[role][1]
    out = io.StringIO()
    assert run_doctor(bus, bus.inner.clock, 1.0, out, "title") == 69  # type: ignore[attr-defined]
    assert "nothing to sample" in out.getvalue()


def test_failing_transfers_are_bus_errors_with_the_bus_speed_fix() -> None:
    bus, _ = retrying([mpu(), Nau7802Chip()], FaultPlan(error_rates={errno.EIO: 1.0}))
    found = statuses(bus)
    for role in ("trunk IMU", "load cell"):
        status, message = found[role]
        assert status is Status.BUS_ERROR
        assert "i2c_arm_baudrate=400000" in message and "pull-ups" in message


def test_transient_errors_are_retried_and_reported() -> None:
    faults = FaultPlan(error_rates={errno.EREMOTEIO: 0.02, errno.ETIMEDOUT: 0.01}, seed=1)
    bus, sim = retrying([Mpu6050Chip(0x68), Nau7802Chip()], faults)
    reports = probe_rig(bus)
    assert reports[0].status is Status.FOUND and reports[2].status is Status.FOUND
    result = sample(bus, sim.clock, reports, seconds=1.0)
    assert result.retries > 0 and result.failures == 0
    trunk, load_cell = result.streams
    assert trunk.rate_hz(result.seconds) == pytest.approx(1000, rel=0.01)
    assert load_cell.rate_hz(result.seconds) == pytest.approx(320, rel=0.01)
    assert trunk.errors == load_cell.errors == []


def test_healthy_sim_rig_samples_at_nominal_rates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--sim", "--seconds", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("trunk IMU") and "found" in out[1] and "0x68" in out[1]
    assert "optional" in out[2] and "found" in out[3]
    trunk = next(line for line in out if line.startswith("trunk IMU") and "frames/s" in line)
    load = next(line for line in out if line.startswith("load cell") and "conversions/s" in line)
    assert float(trunk.split()[2]) == pytest.approx(1000, rel=0.01)
    assert "0 FIFO overflows" in trunk
    assert float(load.split()[2]) == pytest.approx(320, rel=0.01)
    assert "0 missed" in load
    assert out[-1] == "result: healthy"


@pytest.mark.parametrize("address", [0x6A, 0x6B])
def test_lsm6dsox_trunk_is_sampled_through_its_driver(address: int) -> None:
    bus, sim = retrying([Lsm6dsoxChip(address), Nau7802Chip()])
    out = io.StringIO()
    assert run_doctor(bus, sim.clock, 1.0, out, "title") == 0
    trunk = next(line for line in out.getvalue().splitlines() if "frames/s" in line)
    assert float(trunk.split()[2]) == pytest.approx(833, rel=0.02)
    assert "0 FIFO overflows" in trunk


def test_an_imu_driver_that_cannot_be_built_is_reported() -> None:
    def refuses(*args: object) -> None:
        raise ConfigError("gyro range 3000 dps not supported")

    bus, sim = retrying([Mpu6050Chip(0x68), Nau7802Chip()])
    out = io.StringIO()
    status = run_doctor(bus, sim.clock, 0.5, out, "title", imu_factory=refuses)  # type: ignore[arg-type]
    assert status == 69
    assert "error: gyro range 3000 dps not supported" in out.getvalue()


def test_load_cell_sampling_reports_rate_and_missed_conversions() -> None:
    bus, sim = retrying([Mpu6050Chip(0x68), Nau7802Chip()], FaultPlan(stalls=[(1.0, 0.5)]))
    out = io.StringIO()
    status = run_doctor(bus, sim.clock, 3.0, out, "doctor on a stalling reader")
    text = out.getvalue()
    assert status == 69
    load = next(line for line in text.splitlines() if "conversions/s" in line)
    missed = int(load.split(", ")[1].split()[0])
    assert 155 <= missed <= 161  # 0.5 s at 320 SPS
    # The chip also lost conversions while the IMU started, before the sampling window.
    assert sim.chip(0x2A).missed_conversions >= missed  # type: ignore[attr-defined]
    assert "load cell is short of its nominal rate" in text
    assert "FIFO overflows" in text and "0 FIFO overflows" not in text  # the IMU too
    assert "result: needs attention" in text


def test_no_bus_is_one_line_and_non_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from spinecoach.commands import doctor as command

    def no_bus(number: int) -> None:
        raise NoBusError(f"no I2C bus /dev/i2c-{number}")

    monkeypatch.setattr(command, "open_bus", no_bus)
    assert main(["doctor", "--bus", "3"]) == 69
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "/dev/i2c-3" in lines[0] and "doctor --sim" in lines[0]


def test_seconds_out_of_range_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--sim", "--seconds", "0"]) == 64
    assert "--seconds" in capsys.readouterr().err


def test_chip_resets_while_sampling_are_counted() -> None:
    imu, nau = Mpu6050Chip(0x68), Nau7802Chip()
    faults = FaultPlan(chip_events=[(1.0, imu.power_on_reset), (1.5, nau.power_on_reset)])
    bus, sim = retrying([imu, nau], faults)
    result = sample(bus, sim.clock, probe_rig(bus), seconds=2.0)
    trunk, load_cell = result.streams
    assert trunk.reinitialised == 1 and load_cell.reinitialised == 1


def test_bus_speed_is_read_from_the_device_tree(tmp_path: Path) -> None:
    node = tmp_path / "i2c-1" / "of_node"
    node.mkdir(parents=True)
    (node / "clock-frequency").write_bytes((100_000).to_bytes(4, "big"))
    assert configured_bus_hz(1, tmp_path) == 100_000.0
    assert configured_bus_hz(3, tmp_path) is None


def test_a_100_khz_bus_needs_attention_with_the_dtparam_fix() -> None:
    bus, sim = retrying([Mpu6050Chip(0x68), Nau7802Chip()])
    out = io.StringIO()
    assert run_doctor(bus, sim.clock, 0.5, out, "title", bus_hz=100_000.0) == 69
    text = out.getvalue()
    assert "bus speed   100 kHz: too slow" in text
    assert "dtparam=i2c_arm_baudrate=400000" in text
    assert text.splitlines()[-1] == "result: needs attention (see above)"
    out = io.StringIO()
    assert run_doctor(bus, sim.clock, 0.5, out, "title", bus_hz=400_000.0) == 0
    assert "bus speed" not in out.getvalue()
