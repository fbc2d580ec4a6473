"""Cost of the simulated rig's signals (CPU seconds), as the chip simulators use them.

Run: ``.venv/bin/python benchmarks/sim_rig.py``. For each scenario: ten simulated minutes of
every IMU at 1 kHz requested 20 samples at a time (a FIFO drain every 20 ms) and, with a load
cell, 320 SPS requested one conversion at a time (a poll per conversion); plus the same ten
minutes in one call. Times are process CPU time, so other load on the machine matters less.
"""

from __future__ import annotations

import time

import numpy as np
from spinecoach.drivers.sim.rig import ForceSignal, ImuSignal
from spinecoach.drivers.sim.scenarios import SCENARIOS, build_scenario

SIMULATED_S = 600.0
DRAIN_SAMPLES = 20


def _cpu_drains(signal: ImuSignal, t: np.ndarray) -> float:
    start = time.process_time()
    for i in range(0, t.size, DRAIN_SAMPLES):
        signal(t[i : i + DRAIN_SAMPLES])
    return time.process_time() - start


def _cpu_one_call(signal: ImuSignal, t: np.ndarray) -> float:
    start = time.process_time()
    signal.evaluate(t)
    return time.process_time() - start


def _cpu_polls(force: ForceSignal, t: np.ndarray) -> float:
    start = time.process_time()
    for i in range(t.size):
        force(t[i : i + 1])
    return time.process_time() - start


def main() -> None:
    print(f"{'scenario':30s} {'IMU drains':>11s} {'IMU 1 call':>11s} {'force polls':>12s}")
    for name in SCENARIOS:
        scenario = build_scenario(name)
        t_imu = np.arange(int(SIMULATED_S * scenario.imu_rate_hz)) / scenario.imu_rate_hz
        drains = one_call = 0.0
        for placement in scenario.imu_placements:
            drains += _cpu_drains(scenario.imu_signal(placement), t_imu)
            one_call += _cpu_one_call(scenario.imu_signal(placement), t_imu)
        polls = "-"
        if scenario.force_rate_hz is not None:
            t_force = np.arange(int(SIMULATED_S * scenario.force_rate_hz)) / scenario.force_rate_hz
            polls = f"{_cpu_polls(scenario.force_signal(), t_force):.2f} s"
        print(f"{name:30s} {drains:9.2f} s {one_call:9.2f} s {polls:>12s}")


if __name__ == "__main__":
    main()
