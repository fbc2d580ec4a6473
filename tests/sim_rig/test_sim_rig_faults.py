"""Fault specs: parsing, the bus FaultPlan they build, load-cell spikes."""

from __future__ import annotations

import errno

import pytest
from spinecoach.drivers.sim.bus import FaultPlan, SimBus
from spinecoach.drivers.sim.faults import (
    FaultSpec,
    faults_from_spec,
    load_cell_spikes,
    parse_fault_spec,
)
from spinecoach.drivers.sim.rig import Spike
from spinecoach.errors import UsageError


class _RegisterChip:
    """A minimal chip: one register file, answers reads with zeros."""

    def __init__(self, address: int) -> None:
        self.address = address
        self.resets: list[float] = []

    def write(self, register: int, data: bytes, now_s: float) -> None:
        pass

    def read(self, register: int, length: int, now_s: float) -> bytes:
        return bytes(length)

    def reset(self, now_s: float) -> None:
        self.resets.append(now_s)


def test_sim_rig_fault_spec_parses_every_item() -> None:
    spec = parse_fault_spec(
        "121:0.01, 110:0.001,5:0.001,outage@20:2,outage@40:3,stall@5:0.15,"
        "reset@12:0x68,unplug@30:42,spike@8.5:400,spikes@0.2:-300"
    )
    assert spec == FaultSpec(
        error_rates={121: 0.01, 110: 0.001, 5: 0.001},
        outages=((20.0, 2.0), (40.0, 3.0)),
        stalls=((5.0, 0.15),),
        resets=((12.0, 0x68),),
        unplugged={42: 30.0},
        spikes=(Spike(8.5, 400.0),),
        spike_rate_per_s=0.2,
        spike_amplitude_n=-300.0,
    )
    assert parse_fault_spec("") == FaultSpec()


def test_sim_rig_fault_plan_from_spec() -> None:
    chip = _RegisterChip(0x68)
    plan = faults_from_spec(
        "121:0.01,110:0.001,5:0.001,outage@20:2,stall@5:0.15,reset@12:0x68,unplug@30:0x2A",
        seed=9,
        reset_callbacks={0x68: chip.reset},
    )
    assert isinstance(plan, FaultPlan)
    assert plan.error_rates == {121: 0.01, 110: 0.001, 5: 0.001}
    assert plan.outages == [(20.0, 2.0)] and plan.stalls == [(5.0, 0.15)]
    assert plan.unplugged == {0x2A: 30.0} and plan.seed == 9
    assert plan.chip_events == [(12.0, chip.reset)]


def test_sim_rig_fault_plan_drives_the_simulated_bus() -> None:
    chip = _RegisterChip(0x68)
    bus = SimBus(
        [chip],
        faults=faults_from_spec(
            "outage@1:0.5,reset@0.2:0x68,unplug@3:0x68", reset_callbacks={0x68: chip.reset}
        ),
    )
    bus.read_byte_data(0x68, 0)
    bus.clock.sleep(0.3)
    bus.read_byte_data(0x68, 0)
    assert len(chip.resets) == 1 and chip.resets[0] >= 0.2
    bus.clock.sleep(0.8)
    with pytest.raises(OSError) as outage:
        bus.read_byte_data(0x68, 0)
    assert outage.value.errno == errno.EIO
    bus.clock.sleep(0.6)
    bus.read_byte_data(0x68, 0)
    bus.clock.sleep(2.0)
    with pytest.raises(OSError) as unplugged:
        bus.read_byte_data(0x68, 0)
    assert unplugged.value.errno == errno.EREMOTEIO


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("121", "not understood"),
        ("42:0.1", "only 121, 110 and 5"),
        ("121:1.5", "<= 1"),
        ("121:abc", "not a number"),
        ("outage@20", "two values"),
        ("outage@x:2", "not a number"),
        ("outage@-1:2", ">= 0"),
        ("stall@5:nan", "finite"),
        ("reset@12:0x99", "7-bit range"),
        ("reset@12:chip", "e.g. 0x68"),
        ("spike@1:0", "non-zero"),
        ("melt@1:2", "unknown fault kind 'melt'"),
    ],
)
def test_sim_rig_malformed_fault_spec_is_one_clear_error(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as error:
        parse_fault_spec(spec)
    assert "\n" not in str(error.value) and "outage@T:SECONDS" in str(error.value)


def test_sim_rig_reset_needs_a_chip_to_reset() -> None:
    with pytest.raises(UsageError, match="0x69"):
        faults_from_spec("reset@1:0x69", reset_callbacks={0x68: lambda now_s: None})


def test_sim_rig_load_cell_spikes_are_seeded() -> None:
    spikes = load_cell_spikes("spike@8.5:400,spikes@0.5:-300", 100.0, seed=3)
    assert spikes == load_cell_spikes("spike@8.5:400,spikes@0.5:-300", 100.0, seed=3)
    assert spikes != load_cell_spikes("spike@8.5:400,spikes@0.5:-300", 100.0, seed=4)
    assert Spike(8.5, 400.0) in spikes
    random = [s for s in spikes if s.amplitude_n == -300.0]
    assert 30 <= len(random) <= 75 and all(0 <= s.t_s < 100 for s in random)
    assert [s.t_s for s in spikes] == sorted(s.t_s for s in spikes)
