"""Cost of one NAU7802 poll on the simulated rig (driver + SimBus + chip simulator).

Polls the driver every millisecond of virtual time (the acquisition cadence) for 10 simulated
minutes at 320 SPS and prints the wall time per poll and per conversion, the bus transactions
per conversion and the load cell's share of the 400 kHz wire time.

    .venv/bin/python benchmarks/nau7802_poll.py [--minutes 10] [--poll-ms 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.bus import RetryingBus
from spinecoach.drivers.nau7802 import Nau7802
from spinecoach.drivers.sim.bus import SimBus
from spinecoach.drivers.sim.nau7802_chip import Nau7802Chip


def band_pulls(t_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 40.0 + 150.0 * (1.0 - np.cos(2.0 * np.pi * t_s / 3.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--poll-ms", type=float, default=1.0)
    args = parser.parse_args()
    chip = Nau7802Chip(signal=band_pulls, noise_counts=40.0)
    sim = SimBus([chip])
    driver = Nau7802(RetryingBus(sim, sleep=sim.clock.sleep), sim.clock)
    driver.start()
    clock = sim.clock
    poll_s = args.poll_ms / 1000.0
    end_s = clock.monotonic_s() + args.minutes * 60.0
    transactions0, wire0, t0_s = (
        sim.counters.transactions,
        sim.counters.wire_time_s,
        clock.monotonic_s(),
    )
    polls = conversions = missed = 0
    poll = driver.poll
    started = time.perf_counter()
    cpu_started = time.process_time()
    while clock.monotonic_s() < end_s:
        read = poll()
        polls += 1
        if read.code is not None:
            conversions += 1
            missed += read.missed
        clock.sleep(poll_s)
    wall_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    sim_s = clock.monotonic_s() - t0_s
    # Subtract the cost of the loop itself (clock calls), measured without the driver.
    started = time.perf_counter()
    cpu_started = time.process_time()
    for _ in range(polls):
        clock.monotonic_s()
        clock.sleep(0.0)
    loop_s = time.perf_counter() - started
    loop_cpu_s = time.process_time() - cpu_started
    print(f"simulated {sim_s:.0f} s at 320 SPS, polled every {args.poll_ms:g} ms: {polls} polls")
    print(
        f"wall time {wall_s:.2f} s; per poll {(wall_s - loop_s) / polls * 1e6:.2f} us; "
        f"per conversion {(wall_s - loop_s) / conversions * 1e6:.2f} us"
    )
    print(
        f"CPU time {cpu_s:.2f} s (less sensitive to other load); per poll "
        f"{(cpu_s - loop_cpu_s) / polls * 1e6:.2f} us"
    )
    print(f"conversions {conversions}, missed {missed} (chip: {chip.missed_conversions})")
    print(
        "bus transactions per conversion "
        f"{(sim.counters.transactions - transactions0) / conversions:.2f}; "
        f"wire time {(sim.counters.wire_time_s - wire0) / sim_s * 100:.1f} % of 400 kHz"
    )


if __name__ == "__main__":
    main()
