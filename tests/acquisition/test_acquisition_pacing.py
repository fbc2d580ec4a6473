"""A virtual clock paced to the wall clock: few wake-ups, blocks never early by more than
``pace_ahead_s``, and nothing held back while the sampler is behind the wall clock."""

from __future__ import annotations

import pytest
from acq_fakes import FakeAdc, FakeImu
from spinecoach.acquisition.sampler import Sampler, SamplerSettings
from spinecoach.drivers.sim.bus import VirtualClock


class FakeWall:
    """A wall clock that moves only when slept on (or by ``drift`` per reading)."""

    def __init__(self, drift_s: float = 0.0) -> None:
        self.now_s = 0.0
        self.drift_s = drift_s
        self.sleeps: list[float] = []

    def clock(self) -> float:
        self.now_s += self.drift_s
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_s += seconds


def _paced(wall: FakeWall, pace_ahead_s: float) -> tuple[Sampler, VirtualClock]:
    clock = VirtualClock()
    sampler = Sampler([FakeImu(clock)], [FakeAdc(clock)], clock,  # type: ignore[list-item]
                      settings=SamplerSettings(pace_ahead_s=pace_ahead_s), pace_realtime=True,
                      wall_clock=wall.clock, wall_sleep=wall.sleep)
    return sampler, clock


@pytest.mark.parametrize("pace_ahead_s", [0.0, 0.02, 0.05])
def test_paced_run_sleeps_once_per_pace_step_and_hands_blocks_over_in_time(
    pace_ahead_s: float,
) -> None:
    wall = FakeWall()
    sampler, clock = _paced(wall, pace_ahead_s)
    ahead = []
    for block in sampler.blocks(2.0):
        # Sample time of the block's end against the wall clock's session time.
        ahead.append(clock.monotonic_s() - sampler.session_start_s - wall.now_s)
    assert sum(wall.sleeps) == pytest.approx(2.0, abs=1e-3)  # real time in the end
    if pace_ahead_s:
        assert len(wall.sleeps) <= 2.0 / pace_ahead_s + 2
    # Handed over once the clock is ahead by more than the step, after which it sleeps: a
    # block is early by at most one step plus the action that finished it.
    assert max(ahead) <= pace_ahead_s + 0.005


def test_blocks_go_out_at_once_while_the_sampler_is_behind_the_wall_clock() -> None:
    wall = FakeWall(drift_s=0.01)  # the wall clock races ahead: the sampler never catches up
    sampler, clock = _paced(wall, 0.05)
    first_block_t = None
    for block in sampler.blocks(1.0):
        first_block_t = clock.monotonic_s() - sampler.session_start_s
        break
    assert not wall.sleeps
    assert first_block_t is not None and first_block_t <= 0.025  # one block_s, not held
