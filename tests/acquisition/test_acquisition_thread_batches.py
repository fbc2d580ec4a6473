"""The sampler thread wakes its consumer once per batch of blocks (one pacing step), not per block."""

from __future__ import annotations

import queue
import threading

import pytest
from acq_fakes import FakeAdc, FakeImu
from spinecoach.acquisition.sampler import Sampler
from spinecoach.acquisition.thread import SamplerThread, _HeldQueue
from spinecoach.drivers.blocks import Block
from spinecoach.drivers.sim.bus import VirtualClock


def test_held_items_wake_a_waiting_consumer_only_when_released() -> None:
    held = _HeldQueue(maxsize=2)
    got: list[object] = []
    consumer = threading.Thread(target=lambda: got.append(held.get(timeout=5.0)))
    consumer.start()
    held.put_held("first")
    held.put_held("second")
    consumer.join(0.2)
    assert consumer.is_alive() and not got  # queued, but the consumer sleeps on
    with pytest.raises(queue.Full):
        held.put_held("third")  # never waits for room: the caller turns it into a stall gap
    held.release()
    consumer.join(5.0)
    assert got == ["first"]
    assert held.get_nowait() == "second"  # a consumer already awake takes held items at once


def test_blocks_of_each_step_go_out_together_before_the_sampler_waits() -> None:
    clock = VirtualClock()
    sampler = Sampler([FakeImu(clock)], [FakeAdc(clock)], clock)
    thread = SamplerThread(sampler, duration_s=1.0, maxsize=10_000)
    release, put_held = sampler.before_wait, thread._queue.put_held
    assert release is not None
    held_since_release = [0]
    released_together: list[int] = []

    def counting_put_held(item: object) -> None:
        held_since_release[0] += 1
        put_held(item)

    def counting_release() -> None:
        if held_since_release[0]:
            released_together.append(held_since_release[0])
        held_since_release[0] = 0
        release()

    thread._queue.put_held = counting_put_held  # type: ignore[method-assign]
    sampler.before_wait = counting_release
    received: list[Block] = list(thread.start())
    # Every block but the final reads' tails (one per stream) went out in a batch released
    # when the sampler was about to wait, blocks of both streams together.
    assert sum(released_together) >= len(received) - 2
    assert max(released_together) >= 2
    for name, account in sampler.accounts().items():
        delivered = sum(len(b) for b in received if b.info.name == name)
        assert delivered == account.delivered
        assert not any(b.gaps for b in received if b.info.name == name)


def test_backpressure_wakes_the_consumer_for_every_block() -> None:
    clock = VirtualClock()
    sampler = Sampler([FakeImu(clock)], [], clock)
    SamplerThread(sampler, duration_s=0.1, backpressure=True)
    assert sampler.before_wait is None


def test_get_batch_takes_what_waits_in_order_up_to_the_limit() -> None:
    held = _HeldQueue(maxsize=10)
    assert held.get_batch(0.01, 8) == []  # nothing came within the timeout
    for item in "abcde":
        held.put_held(item)
    assert held.get_batch(1.0, 3) == ["a", "b", "c"]
    assert held.get_batch(1.0, 8) == ["d", "e"]
    got: list[list[object]] = []
    consumer = threading.Thread(target=lambda: got.append(held.get_batch(5.0, 8)))
    consumer.start()
    held.put_held("f")
    held.put_held("g")
    held.release()  # wakes the waiting consumer, which takes both
    consumer.join(5.0)
    assert got == [["f", "g"]]


def test_poll_batch_hands_every_block_over_before_the_end_and_its_error() -> None:
    class Broken(FakeImu):
        drains = 0

        def drain(self):  # type: ignore[no-untyped-def]
            Broken.drains += 1
            if Broken.drains > 10:
                raise RuntimeError("driver bug")
            return super().drain()

    def imu_run() -> SamplerThread:
        clock = VirtualClock()
        return SamplerThread(Sampler([FakeImu(clock)], [], clock), duration_s=0.5)

    healthy = imu_run().start()
    healthy.join(5.0)
    blocks: list[Block] = []
    while batch := healthy.poll_batch(0.0, 3):
        assert len(batch) <= 3
        blocks += batch
    assert healthy.ended and healthy.poll_batch(0.0, 3) == []
    assert [len(b) for b in blocks] == [len(b) for b in imu_run().start()]

    clock = VirtualClock()
    broken = SamplerThread(Sampler([Broken(clock)], [], clock), duration_s=1.0).start()
    broken.join(5.0)
    taken: list[Block] = []
    with pytest.raises(RuntimeError, match="driver bug"):
        while True:
            taken += broken.poll_batch(0.0, 100)
    assert taken  # the blocks before the error came first
