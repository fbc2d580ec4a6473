"""A sampler on a virtual clock waits for a slow consumer; a live one turns a full queue into gaps."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
from spinecoach.acquisition.thread import SamplerThread
from spinecoach.drivers.blocks import ForceBlock, StreamInfo

INFO = StreamInfo("force", "force", 100.0)


class BurstSampler:
    """Yields 40 one-sample blocks at once, as a simulated rig run as fast as possible does."""

    def blocks(self, duration_s: float | None) -> Iterator[ForceBlock]:
        for i in range(40):
            yield ForceBlock(INFO, np.array([i]), np.array([float(i)]), np.array([True]))

    def finish(self) -> list[ForceBlock]:
        return []


def _drain_slowly(thread: SamplerThread) -> tuple[int, int]:
    delivered = gap_samples = 0
    for block in thread:
        time.sleep(0.002)  # a consumer slower than the producer
        delivered += len(block)
        gap_samples += sum(g.count for g in block.gaps)
    return delivered, gap_samples


@pytest.mark.parametrize("backpressure", [True, False])
def test_every_sample_is_delivered_or_counted(backpressure: bool) -> None:
    thread = SamplerThread(BurstSampler(), maxsize=2, backpressure=backpressure)  # type: ignore[arg-type]
    delivered, gaps = _drain_slowly(thread.start())
    if backpressure:
        assert (delivered, gaps) == (40, 0)
    else:
        # Live: blocks the consumer did not take in time became stall gaps, none vanished.
        assert gaps > 0 and delivered + gaps == 40
