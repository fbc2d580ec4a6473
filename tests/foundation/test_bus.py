"""The bus seam: retries, typed errors, combined reads and the simulated bus's accounting."""

from __future__ import annotations

import errno

import pytest
from spinecoach.drivers.bus import RetryingBus, read_block
from spinecoach.drivers.sim.bus import FaultPlan, SimBus, VirtualClock
from spinecoach.errors import BusError, NoBusError, SensorError


class RegisterFile:
    """A toy chip: 256 registers with auto-increment."""

    def __init__(self, address: int = 0x42) -> None:
        self.address = address
        self.regs = bytearray(range(256))
        self.writes: list[tuple[int, bytes]] = []

    def write(self, register: int, data: bytes, now_s: float) -> None:
        self.writes.append((register, data))
        for i, b in enumerate(data):
            self.regs[(register + i) & 0xFF] = b

    def read(self, register: int, length: int, now_s: float) -> bytes:
        return bytes(self.regs[(register + i) & 0xFF] for i in range(length))


class FlakyBus:
    """Fails the first ``failures`` calls with ``code`` then answers."""

    def __init__(self, failures: int, code: int) -> None:
        self.failures = failures
        self.code = code
        self.calls = 0

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError(self.code, "injected")
        return 0x68

    def close(self) -> None:
        pass


@pytest.mark.parametrize("code", [errno.EREMOTEIO, errno.ETIMEDOUT, errno.EIO])
def test_transient_errors_are_retried(code: int) -> None:
    flaky = FlakyBus(failures=3, code=code)
    bus = RetryingBus(flaky, attempts=4, backoff_s=0)  # type: ignore[arg-type]
    assert bus.read_byte_data(0x68, 0x75) == 0x68
    assert flaky.calls == 4
    assert bus.stats.retries == 3


def test_retries_are_bounded_and_typed() -> None:
    bus = RetryingBus(FlakyBus(failures=10, code=errno.EREMOTEIO), attempts=3, backoff_s=0)  # type: ignore[arg-type]
    with pytest.raises(BusError, match="failed 3 times") as info:
        bus.read_byte_data(0x68, 0x75)
    assert isinstance(info.value, OSError)
    assert bus.stats.failures == 1


def test_non_transient_error_fails_at_once() -> None:
    flaky = FlakyBus(failures=1, code=errno.EACCES)
    bus = RetryingBus(flaky, attempts=4, backoff_s=0)  # type: ignore[arg-type]
    with pytest.raises(BusError, match="0x68"):
        bus.read_byte_data(0x68, 0x75)
    assert flaky.calls == 1


def test_read_block_is_one_combined_transfer_on_the_sim_bus() -> None:
    chip = RegisterFile()
    bus = SimBus([chip])
    data = read_block(bus, 0x42, 0x10, 40)
    assert data == bytes(range(0x10, 0x10 + 40))
    assert bus.counters.transactions == 1
    assert bus.counters.bytes_on_wire == 1 + 1 + 40 + 1
    # 9 clocks a byte plus start/stop at 400 kHz advance the virtual clock.
    assert bus.clock.monotonic_s() == pytest.approx((43 * 9 + 2) / 400_000)


def test_register_writes_reach_the_chip_byte_for_byte() -> None:
    chip = RegisterFile()
    bus = SimBus([chip])
    bus.write_byte_data(0x42, 0x6B, 0x01)
    bus.write_i2c_block_data(0x42, 0x19, [0x00, 0x01])
    assert chip.writes == [(0x6B, b"\x01"), (0x19, b"\x00\x01")]


def test_outage_unplug_and_stall_faults() -> None:
    clock = VirtualClock()
    fired: list[float] = []
    faults = FaultPlan(
        outages=[(1.0, 0.5)],
        unplugged={0x42: 5.0},
        stalls=[(2.0, 0.15)],
        chip_events=[(3.0, fired.append)],
    )
    bus = SimBus([RegisterFile()], clock=clock, faults=faults)
    clock.sleep(1.2)
    with pytest.raises(OSError) as info:
        bus.read_byte_data(0x42, 0)
    assert info.value.errno == errno.EIO
    clock.sleep(0.9)  # t = 2.1: the stall jumps the clock before the transfer
    bus.read_byte_data(0x42, 0)
    assert clock.monotonic_s() > 2.25
    clock.sleep(1.0)
    bus.read_byte_data(0x42, 0)
    assert len(fired) == 1 and fired[0] >= 3.0
    clock.sleep(2.0)
    with pytest.raises(OSError) as info:
        bus.read_byte_data(0x42, 0)
    assert info.value.errno == errno.EREMOTEIO


def test_error_rates_are_injected_and_counted() -> None:
    bus = SimBus([RegisterFile()], faults=FaultPlan(error_rates={errno.EREMOTEIO: 0.5}, seed=3))
    failures = 0
    for _ in range(1000):
        try:
            bus.read_byte_data(0x42, 0)
        except OSError:
            failures += 1
    assert 400 < failures < 600
    assert bus.counters.injected_errors[errno.EREMOTEIO] == failures


def test_open_bus_without_device_node_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    from spinecoach.drivers import bus as bus_module

    monkeypatch.setattr(bus_module.os.path, "exists", lambda path: False)
    with pytest.raises(NoBusError, match="enable I2C") as info:
        bus_module.open_bus(1)
    assert isinstance(info.value, SensorError) and isinstance(info.value, FileNotFoundError)
