"""Long polling of the NAU7802 through a faulty simulated bus: every conversion accounted."""

from __future__ import annotations

import errno

import pytest
from spinecoach.drivers.bus import RetryingBus
from spinecoach.drivers.nau7802 import Nau7802
from spinecoach.drivers.sim.bus import FaultPlan, SimBus
from spinecoach.drivers.sim.nau7802_chip import Nau7802Chip
from test_loadcell_driver import assert_missed_counts

RATE_SPS = 320


def soak(minutes: float) -> None:
    duration_s = minutes * 60.0
    faults = FaultPlan(
        error_rates={errno.EREMOTEIO: 0.01, errno.ETIMEDOUT: 0.001, errno.EIO: 0.001},
        stalls=[(duration_s * f, 0.150) for f in (0.2, 0.5, 0.8)],
        seed=7,
    )
    # One newton per conversion at gain 1: each code is its conversion's index (plus a constant).
    chip = Nau7802Chip(signal=lambda t: t * RATE_SPS, counts_per_n=1.0)
    sim = SimBus([chip], faults=faults)
    driver = Nau7802(RetryingBus(sim, backoff_s=0.0002, sleep=sim.clock.sleep), sim.clock, gain=1)
    driver.start()
    codes: list[int] = []
    missed: list[int] = []
    clock = sim.clock
    while clock.monotonic_s() < duration_s:
        read = driver.poll()
        if read.code is not None:
            codes.append(read.code)
            missed.append(read.missed)
        clock.sleep(0.001)
    assert_missed_counts(codes, missed)
    assert sum(missed) == chip.missed_conversions
    assert 3 * 47 <= chip.missed_conversions <= 3 * 49  # only the three stalls lose data
    assert len(codes) == chip.conversions_read
    assert sum(sim.counters.injected_errors.values()) > 0


def test_load_cell_polling_through_a_faulty_bus_short() -> None:
    soak(minutes=0.5)


@pytest.mark.soak
def test_load_cell_polling_through_a_faulty_bus_ten_minutes() -> None:
    soak(minutes=10.0)
