"""Cost of one IMU FIFO drain on the simulated rig (driver + chip simulator + simulated bus).

Drains a 1 kHz MPU-6050 and an 833 Hz LSM6DSOX on a fixed 20 ms grid of virtual time, so each
drain moves 20 frames (16.7 for the LSM6DSOX). Reports the CPU time per drain (process time, so
other work on a shared machine does not count; best and median of several blocks) and the share
of a 400 kHz bus the IMU traffic takes. Run: ``.venv/bin/python benchmarks/imu_drain.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from spinecoach.drivers.imu_config import FifoImu
from spinecoach.drivers.lsm6dsox import Lsm6dsox
from spinecoach.drivers.mpu6050 import Mpu6050
from spinecoach.drivers.sim.bus import SimBus
from spinecoach.drivers.sim.lsm6dsox_chip import Lsm6dsoxChip
from spinecoach.drivers.sim.mpu6050_chip import Mpu6050Chip

BLOCKS = 7
DRAINS_PER_BLOCK = 3_000
INTERVAL_S = 0.020


def measure(label: str, bus: SimBus, make: Callable[[SimBus], FifoImu]) -> None:
    driver = make(bus)
    driver.start()
    started_s = bus.clock.monotonic_s()
    wire_before_s = bus.counters.wire_time_s
    frames = 0
    drains = 0
    per_drain_us = []
    for _ in range(BLOCKS):
        spent_s = 0.0
        for _ in range(DRAINS_PER_BLOCK):
            drains += 1
            # A fixed grid whatever the wire time was: 20 ms of frames every time.
            bus.clock.sleep(started_s + drains * INTERVAL_S - bus.clock.monotonic_s())
            begin = time.process_time()
            read = driver.drain()
            spent_s += time.process_time() - begin
            frames += read.raw.shape[0]
        per_drain_us.append(spent_s / DRAINS_PER_BLOCK * 1e6)
    bus_share = (bus.counters.wire_time_s - wire_before_s) / (bus.clock.monotonic_s() - started_s)
    median_us = statistics.median(per_drain_us)
    print(
        f"{label}: {min(per_drain_us):.1f} us CPU per drain (median {median_us:.1f})"
        f" of {frames / drains:.1f} frames; bus at 400 kHz busy {bus_share:.1%}"
    )


def main() -> None:
    measure("MPU-6050 @ 1000 Hz", SimBus([Mpu6050Chip()]), lambda bus: Mpu6050(bus, bus.clock))
    measure("LSM6DSOX @ 833 Hz", SimBus([Lsm6dsoxChip()]), lambda bus: Lsm6dsox(bus, bus.clock))


if __name__ == "__main__":
    main()
