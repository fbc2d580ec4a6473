"""Blocks of an in-memory recording, as a live sampler would have yielded them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from spinecoach.acquisition.sampler import empty_block
from spinecoach.drivers.blocks import Block
from spinecoach.recording.model import Recording

#: Replay hands out blocks of this much sample time (the sampler's drain cadence).
REPLAY_BLOCK_S = 0.02


def replay_blocks(recording: Recording, block_s: float = REPLAY_BLOCK_S) -> Iterator[Block]:
    """Every sample and every gap of ``recording``, in time order.

    :meth:`Recording.blocks` attaches a gap to the first block after it; gaps after a
    stream's last sample (a recording that ended during an outage) follow as empty blocks.
    """
    yield from recording.blocks(block_s)
    for stream in [*recording.imu.values(), *recording.force.values()]:
        last = int(stream.index[-1]) if len(stream.index) else -1
        tail = tuple(g for g in stream.gaps if g.start_index > last)
        if tail:
            yield empty_block(stream.info, tail)


def paced(
    blocks: Iterator[Block],
    wall_clock: Callable[[], float] = time.monotonic,
    wall_sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Block]:
    """Hand out ``blocks`` no sooner than their last sample's time after the first block."""
    start_wall: float | None = None
    start_t = 0.0
    for block in blocks:
        if len(block):
            end_t = float(block.t_s[-1])
            if start_wall is None:
                start_wall, start_t = wall_clock(), float(block.t_s[0])
            ahead = (end_t - start_t) - (wall_clock() - start_wall)
            if ahead > 0:
                wall_sleep(ahead)
        yield block
