"""Cost of the simulated rig's signals (CPU seconds), as the chip simulators use them.

Run: ``.venv/bin/python benchmarks/sim_rig.py``. For each scenario: ten simulated minutes of
every IMU at 1 kHz requested 20 samples at a time (a FIFO drain every 20 ms) and, with a load
cell, 320 SPS requested one conversion at a time (a poll per conversion); plus the same ten
minutes in one call. Times are process CPU time, so other load on the machine matters less.
"""

from __future__ import annotations

import time

import numpy as np
from spinecoach.drivers.sim.scenarios import SCENARIOS, build_scenario

SIMULATED_S = 600.0
DRAIN_SAMPLES = 20


def _cpu(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    print(f"{'scenario':30s} {'IMU drains':>11s} {'IMU 1 call':>11s} {'force polls':>12s}")
    for name in SCENARIOS:
        scenario = build_scenario(name)
        t_imu = np.arange(int(SIMULATED_S * scenario.imu_rate_hz)) / scenario.imu_rate_hz
        drains = one_call = 0.0
        for placement in scenario.imu_placements:
            signal = scenario.imu_signal(placement)
            drains += _cpu(
                lambda s=signal: [
                    s(t_imu[i : i + DRAIN_SAMPLES]) for i in range(0, t_imu.size, DRAIN_SAMPLES)
                ]
            )
            one_call += _cpu(lambda s=signal: s.evaluate(t_imu))
        polls = "-"
        if scenario.force_rate_hz is not None:
            t_force = np.arange(int(SIMULATED_S * scenario.force_rate_hz)) / scenario.force_rate_hz
            force = scenario.force_signal()
            polls = (
                f"{_cpu(lambda: [force(t_force[i : i + 1]) for i in range(t_force.size)]):.2f} s"
            )
        print(f"{name:30s} {drains:9.2f} s {one_call:9.2f} s {polls:>12s}")


if __name__ == "__main__":
    main()
