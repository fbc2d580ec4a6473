"""A simulated rig assembled for acquisition: scenario -> chip simulators -> SimBus -> drivers.

The scenario's rig gives each IMU placement an angular-rate/specific-force signal and the load
cell a force signal; register-level simulators turn them into chip registers and FIFOs on a
:class:`~spinecoach.drivers.sim.bus.SimBus`, and the *real* drivers read them through the same
:class:`~spinecoach.drivers.bus.RetryingBus` the hardware uses. Only the clock is virtual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spinecoach.acquisition.sampler import Sampler
from spinecoach.drivers.bus import RetryingBus
from spinecoach.drivers.interfaces import ForceDriver, ImuDriver
from spinecoach.drivers.sim.bus import SimBus
from spinecoach.errors import UsageError

#: I2C address of each IMU placement (two MPU-6050s share a bus: AD0 low and high).
IMU_ADDRESSES = (0x68, 0x69)
LOAD_CELL_ADDRESS = 0x2A
#: Input-referred load-cell sensitivity of the simulated bridge (counts per N at gain 1).
SIM_COUNTS_PER_N = 17.11
#: Programmed NAU7802 gain on the rig.
SIM_GAIN = 128


@dataclass
class SimRig:
    """Everything of one simulated session; ``chips`` by address for fault tests."""

    scenario: Any
    bus: SimBus
    retrying_bus: RetryingBus
    imus: list[ImuDriver]
    forces: list[ForceDriver]
    chips: dict[int, Any]

    def sampler(self, **kwargs: Any) -> Sampler:
        """A :class:`Sampler` of this rig whose sample times are the scenario's own times."""
        return Sampler(self.imus, self.forces, self.bus.clock, time_origin_s=0.0, **kwargs)


def build_sim_rig(
    scenario_name: str, *, faults: str = "", seed: int | None = None, fault_seed: int = 0
) -> SimRig:
    """Build the simulated rig of ``scenario_name`` with the bus faults of spec ``faults``."""
    from spinecoach.drivers.mpu6050 import Mpu6050
    from spinecoach.drivers.nau7802 import Nau7802
    from spinecoach.drivers.sim.faults import faults_from_spec, load_cell_spikes
    from spinecoach.drivers.sim.mpu6050_chip import Mpu6050Chip
    from spinecoach.drivers.sim.nau7802_chip import Nau7802Chip
    from spinecoach.drivers.sim.scenarios import DEFAULT_SEED, build_scenario, scenario_names

    if scenario_name not in scenario_names():
        raise UsageError(
            f"no scenario {scenario_name!r}; choose one of {', '.join(scenario_names())} "
            "(`spinecoach scenarios` describes them)"
        )
    scenario = build_scenario(scenario_name, seed=DEFAULT_SEED if seed is None else seed)
    if len(scenario.imu_placements) > len(IMU_ADDRESSES):
        raise UsageError(f"scenario {scenario_name!r} has more IMUs than the rig's bus can carry")
    chips: dict[int, Any] = {}
    imu_specs = []
    for placement, address in zip(scenario.imu_placements, IMU_ADDRESSES, strict=False):
        chips[address] = Mpu6050Chip(address=address, signal=scenario.imu_signal(placement))
        imu_specs.append((placement, address))
    if scenario.has_load_cell:
        spikes = load_cell_spikes(faults, scenario.duration_s, seed=scenario.seed) if faults else ()
        chips[LOAD_CELL_ADDRESS] = Nau7802Chip(
            signal=scenario.force_signal(spikes=spikes),
            counts_per_n=SIM_COUNTS_PER_N,
            address=LOAD_CELL_ADDRESS,
            seed=scenario.seed,
        )
    resets = {address: chip.power_on_reset for address, chip in chips.items()}
    plan = faults_from_spec(faults, seed=fault_seed, reset_callbacks=resets)
    bus = SimBus(list(chips.values()), faults=plan)
    retrying = RetryingBus(bus, sleep=bus.clock.sleep)
    imus: list[ImuDriver] = [
        Mpu6050(retrying, bus.clock, address, name=placement, rate_hz=scenario.imu_rate_hz)
        for placement, address in imu_specs
    ]
    forces: list[ForceDriver] = []
    if scenario.has_load_cell:
        forces.append(
            Nau7802(
                retrying, bus.clock, LOAD_CELL_ADDRESS, name="force", gain=SIM_GAIN,
                rate_sps=int(scenario.force_rate_hz),
                force_n_per_count=1.0 / (SIM_COUNTS_PER_N * SIM_GAIN), offset_counts=0.0,
            )
        )
    return SimRig(scenario, bus, retrying, imus, forces, chips)
