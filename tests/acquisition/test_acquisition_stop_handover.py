"""Stopping the sampler at any point of a batch hands every block over exactly once.

One pass of the sampler's loop can finish several blocks (one per stream, a block closed by a
gap); a consumer that closes the iterator between two of them (``SamplerThread.stop()``) and
then collects the rest with ``finish()`` must get each block once, with the accounts exact.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from acq_fakes import FakeAdc, FakeImu, Faults
from spinecoach.acquisition.sampler import Sampler
from spinecoach.acquisition.thread import SamplerThread
from spinecoach.drivers.blocks import Block
from spinecoach.drivers.sim.bus import VirtualClock

#: Blocks looked at: batches are found among them.
HORIZON = 160


def _sampler() -> tuple[Sampler, VirtualClock]:
    clock = VirtualClock()
    # Bus errors on the IMU put gaps in its stream (a gap closes a block early), so batches of
    # two and three blocks happen often.
    imu = FakeImu(clock, faults=Faults(error_rate=0.05, seed=3))
    adc = FakeAdc(clock)
    return Sampler([imu], [adc], clock), clock  # type: ignore[list-item]


def _batches() -> list[list[int]]:
    """Positions (1-based) of the blocks of each batch an uninterrupted run yields: blocks
    yielded with no clock time between them come from one pass of the loop."""
    sampler, clock = _sampler()
    stamps = []
    for count, _ in enumerate(sampler.blocks(), 1):
        stamps.append(clock.monotonic_s())
        if count == HORIZON:
            break
    batches: list[list[int]] = []
    for position, stamp in enumerate(stamps, 1):
        if batches and stamps[batches[-1][-1] - 1] == stamp:
            batches[-1].append(position)
        else:
            batches.append([position])
    return batches


def _stop_points() -> list[int]:
    """Every position inside a batch of two or more blocks, and just before and after it."""
    points: set[int] = set()
    for batch in _batches():
        if len(batch) > 1:
            points.update(range(batch[0] - 1, batch[-1] + 1))
    return sorted(p for p in points if 1 <= p < HORIZON)


def _check_exactly_once(sampler: Sampler, blocks: list[Block]) -> None:
    for name, account in sampler.accounts().items():
        mine = [b for b in blocks if b.info.name == name]
        index = np.concatenate([b.index for b in mine])
        assert np.all(np.diff(index) > 0), f"{name}: a sample was handed over twice"
        covered = np.zeros(account.expected, dtype=np.int64)
        np.add.at(covered, index, 1)
        gaps = [g for b in mine for g in b.gaps]
        for g in gaps:
            covered[g.start_index:g.start_index + g.count] += 1
        assert (covered == 1).all()
        assert account.delivered == len(index)
        assert account.gap_samples == sum(g.count for g in gaps)
        assert account.gap_records == len(gaps)
        assert account.delivered + account.gap_samples == account.expected


def test_the_run_has_batches_to_stop_in() -> None:
    sizes = [len(b) for b in _batches()]
    assert max(sizes) >= 2 and sizes.count(1) < len(sizes)


@pytest.mark.parametrize("stop_after", _stop_points())
def test_closing_the_blocks_mid_batch_then_finish(stop_after: int) -> None:
    sampler, _ = _sampler()
    received: list[Block] = []
    blocks = sampler.blocks()
    for block in blocks:
        received.append(block)
        if len(received) == stop_after:
            break
    blocks.close()
    received.extend(sampler.finish())
    assert sampler.finish() == []  # nothing is left to hand over a second time
    _check_exactly_once(sampler, received)


class _StoppingSampler:
    """A sampler whose consumer asks the thread to stop right after the ``stop_after``-th
    block, as the daemon's SIGTERM can at any moment."""

    def __init__(self, sampler: Sampler, stop_after: int) -> None:
        self.sampler = sampler
        self.stop_after = stop_after
        self.thread: SamplerThread | None = None

    def blocks(self, duration_s: float | None = None) -> Iterator[Block]:
        for count, block in enumerate(self.sampler.blocks(duration_s), 1):
            if count == self.stop_after and self.thread is not None:
                self.thread.stop()
            yield block

    def finish(self) -> list[Block]:
        return self.sampler.finish()


@pytest.mark.parametrize("stop_after", _stop_points())
def test_sampler_thread_stopped_mid_batch_delivers_each_block_once(stop_after: int) -> None:
    sampler, _ = _sampler()
    stopping = _StoppingSampler(sampler, stop_after)
    thread = SamplerThread(stopping, backpressure=True)  # type: ignore[arg-type]
    stopping.thread = thread
    received = list(thread.start())
    thread.join(timeout=5.0)
    assert len(received) >= stop_after
    _check_exactly_once(sampler, received)
