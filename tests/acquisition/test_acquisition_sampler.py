"""The sampler against fake drivers with known truth: cadence, accounting, faults."""

from __future__ import annotations

import numpy as np
import pytest
from acq_fakes import FakeAdc, FakeImu, Faults, StallingClock, decode_tick
from spinecoach.acquisition.sampler import Sampler, SamplerSettings
from spinecoach.acquisition.thread import SamplerThread
from spinecoach.drivers.blocks import Block, ForceBlock, Gap, ImuBlock
from spinecoach.drivers.sim.bus import VirtualClock


def _run(imus: list[FakeImu], adcs: list[FakeAdc], clock: VirtualClock, seconds: float,
         **kw: object) -> tuple[Sampler, list[Block]]:
    sampler = Sampler(imus, adcs, clock, **kw)  # type: ignore[arg-type]
    blocks = list(sampler.blocks(seconds))
    return sampler, blocks


def _stream(blocks: list[Block], name: str) -> tuple[np.ndarray, list[Gap], list[Block]]:
    mine = [b for b in blocks if b.info.name == name]
    index = np.concatenate([b.index for b in mine])
    gaps = [g for b in mine for g in b.gaps]
    return index, gaps, mine


def _check_coverage(expected: int, index: np.ndarray, gaps: list[Gap]) -> None:
    """Every index from 0 to ``expected`` is delivered once or in exactly one gap."""
    covered = np.zeros(expected, dtype=np.int64)
    np.add.at(covered, index, 1)
    for g in gaps:
        covered[g.start_index:g.start_index + g.count] += 1
    assert (covered == 1).all()


def _check_accounting(sampler: Sampler, blocks: list[Block]) -> None:
    """The sampler's accounts agree with the blocks, and the blocks cover every index once."""
    for name, account in sampler.accounts().items():
        index, gaps, _ = _stream(blocks, name)
        _check_coverage(account.expected, index, gaps)
        assert account.delivered == len(index)
        assert account.gap_samples == sum(g.count for g in gaps)
        assert account.delivered + account.gap_samples == account.expected
        assert np.all(np.diff(index) > 0)


def test_clean_run_delivers_every_sample_with_the_chips_own_index() -> None:
    clock = VirtualClock()
    imu, adc = FakeImu(clock), FakeAdc(clock)
    sampler, blocks = _run([imu], [adc], clock, 10.0)
    _check_accounting(sampler, blocks)
    index, gaps, mine = _stream(blocks, "trunk")
    assert not gaps
    ticks = np.concatenate([decode_tick(b.raw) for b in mine])  # type: ignore[arg-type]
    np.testing.assert_array_equal(index, ticks)
    assert len(index) == pytest.approx(10_000, abs=2)  # session time starts when all chips run
    f_index, f_gaps, f_blocks = _stream(blocks, "force")
    assert not f_gaps
    codes = np.concatenate([b.raw for b in f_blocks])  # type: ignore[misc]
    np.testing.assert_array_equal(f_index, codes - codes[0])
    # SI values through the stream's scales.
    b = f_blocks[3]
    assert isinstance(b, ForceBlock)
    np.testing.assert_array_equal(b.force_n, (b.raw - 10.0) * 0.5)  # type: ignore[operator]
    # Cadence: drains every 20 ms, load-cell polls every half period.
    drains = [t for what, t in imu.calls if what == "drain"]
    assert np.diff(drains).max() <= 0.021
    polls = [t for what, t in adc.calls if what == "poll"]
    assert np.diff(polls).max() <= 0.5 / 320 + 1e-4
    checks = [t for what, t in imu.calls if what == "check"]
    assert np.diff(checks).max() <= 0.05


def test_stream_times_and_t0_come_from_the_start() -> None:
    clock = VirtualClock(start_s=100.0)
    imu, adc = FakeImu(clock), FakeAdc(clock)
    sampler, blocks = _run([imu], [adc], clock, 1.0)
    infos = {b.info.name: b.info for b in blocks}
    assert imu.t_first is not None and adc.t_first is not None
    assert adc.t_first < imu.t_first  # load cell first: its start-up would fill the FIFO
    # Session time zero is when every chip runs; index 0 is the next sample.
    assert sampler.session_start_s == pytest.approx(imu.t_first, abs=1e-3)
    assert infos["trunk"].t0_s == pytest.approx(0.0005, abs=2e-4)
    assert infos["force"].t0_s == pytest.approx(0.5 / 320, abs=2e-4)
    assert sampler.streams[0].t0_s == infos["trunk"].t0_s
    # The first force sample's time is its true conversion time within a period.
    first = next(b for b in blocks if b.info.name == "force" and len(b))
    true_t = adc.t_first + (int(first.raw[0]) + 1) / 320 - sampler.session_start_s  # type: ignore[index]
    assert float(first.t_s[0]) == pytest.approx(true_t, abs=1 / 320)


def test_150ms_stall_gives_one_gap_of_the_stall_length() -> None:
    clock = StallingClock(stall_at_s=3.0, stall_s=0.150)
    imu, adc = FakeImu(clock), FakeAdc(clock)
    sampler, blocks = _run([imu], [adc], clock, 6.0)
    _check_accounting(sampler, blocks)
    index, gaps, mine = _stream(blocks, "trunk")
    assert len(gaps) == 1 and gaps[0].reason == "stall"
    assert gaps[0].count / 1000.0 == pytest.approx(0.150, abs=0.005)
    # After the gap every frame sits at its true index (within one sample), none misaligned.
    ticks = np.concatenate([decode_tick(b.raw) for b in mine])  # type: ignore[arg-type]
    assert np.abs(index - ticks).max() <= 1
    _, f_gaps, _ = _stream(blocks, "force")
    assert len(f_gaps) == 1 and f_gaps[0].reason == "stall"
    assert f_gaps[0].count / 320 == pytest.approx(0.150, abs=0.01)


def test_stall_gap_length_matches_the_lost_frames_exactly_within_5ms() -> None:
    for stall_s in (0.090, 0.150, 0.400):
        clock = StallingClock(stall_at_s=2.0005, stall_s=stall_s)
        imu = FakeImu(clock)
        _, blocks = _run([imu], [], clock, 4.0)
        _, gaps, mine = _stream(blocks, "trunk")
        ticks = np.concatenate([decode_tick(b.raw) for b in mine])  # type: ignore[arg-type]
        true_lost = int(np.diff(ticks).max() - 1)
        assert abs(gaps[0].count - true_lost) <= 5, stall_s


def test_bus_outages_give_one_gap_each_and_recover_within_a_second() -> None:
    clock = VirtualClock()
    faults = Faults(outages=[(3.0, 2.0), (8.0, 3.0)])
    imu = FakeImu(clock, faults=faults)
    adc = FakeAdc(clock, faults=Faults(outages=[(3.0, 2.0), (8.0, 3.0)]))
    sampler, blocks = _run([imu], [adc], clock, 14.0)
    _check_accounting(sampler, blocks)
    index, gaps, mine = _stream(blocks, "trunk")
    assert [g.reason for g in gaps] == ["outage", "outage"]
    ticks = np.concatenate([decode_tick(b.raw) for b in mine])  # type: ignore[arg-type]
    assert np.abs(index - ticks).max() <= 1  # each gap within one sample period
    assert imu.starts == 3  # re-initialised after each outage
    for (start, duration), gap in zip(faults.outages, gaps, strict=True):
        t_first_after = (gap.start_index + gap.count) / 1000.0
        assert start + duration < t_first_after + 0.06 <= start + duration + 1.0
    _, f_gaps, _ = _stream(blocks, "force")
    assert [g.reason for g in f_gaps] == ["outage", "outage"]
    assert adc.starts == 3
    assert sampler.tare_stale["force"]


def test_silent_imu_reset_is_found_within_100ms_without_frozen_samples() -> None:
    clock = VirtualClock()
    imu = FakeImu(clock, faults=Faults(resets=[2.5]))
    sampler, blocks = _run([imu], [], clock, 4.0)
    _check_accounting(sampler, blocks)
    index, gaps, mine = _stream(blocks, "trunk")
    assert len(gaps) == 1 and gaps[0].reason == "chip_reset"
    restart = [t for what, t in imu.calls if what == "start"][1]
    assert restart - 2.5 <= 0.1
    ticks = np.concatenate([decode_tick(b.raw) for b in mine])  # type: ignore[arg-type]
    t_sample = ticks / 1000.0 + 0.05
    assert not ((t_sample > 2.5) & (t_sample < restart)).any()
    assert np.abs(index - ticks).max() <= 1


def test_adc_reset_marks_the_tare_stale_and_is_a_chip_reset_gap() -> None:
    clock = VirtualClock()
    adc = FakeAdc(clock, faults=Faults(resets=[1.0]))
    sampler, blocks = _run([], [adc], clock, 2.0)
    _check_accounting(sampler, blocks)
    _, gaps, _ = _stream(blocks, "force")
    assert [g.reason for g in gaps] == ["chip_reset"]
    assert sampler.tare_stale == {"force": True}
    sampler.set_tare("force", 123.0)
    assert sampler.tare_stale == {"force": False}
    assert sampler.streams[0].force_offset_counts == 123.0


def test_saturated_codes_are_delivered_invalid() -> None:
    clock = VirtualClock()
    adc = FakeAdc(clock, saturate_ticks=(50, 51))
    _, blocks = _run([], [adc], clock, 1.0)
    f = [b for b in blocks if isinstance(b, ForceBlock)]
    codes = np.concatenate([b.raw for b in f])  # type: ignore[misc]
    valid = np.concatenate([b.valid for b in f])
    assert set(codes[~valid]) == {50, 51}


def test_random_bus_errors_lose_nothing_from_the_fifo() -> None:
    clock = VirtualClock()
    imu = FakeImu(clock, faults=Faults(error_rate=0.05, seed=1))
    adc = FakeAdc(clock, faults=Faults(error_rate=0.05, seed=2))
    sampler, blocks = _run([imu], [adc], clock, 20.0)
    _check_accounting(sampler, blocks)
    index, gaps, mine = _stream(blocks, "trunk")
    ticks = np.concatenate([decode_tick(b.raw) for b in mine])  # type: ignore[arg-type]
    np.testing.assert_array_equal(index, ticks)  # the FIFO kept them: no gap at all
    assert not gaps
    _, f_gaps, f_blocks = _stream(blocks, "force")
    assert all(g.reason == "bus_error" for g in f_gaps)
    codes = np.concatenate([b.raw for b in f_blocks])  # type: ignore[misc]
    f_index = np.concatenate([b.index for b in f_blocks])
    np.testing.assert_array_equal(f_index, codes - codes[0])  # gaps exactly where conversions were lost


def test_two_imus_and_an_unreachable_one_at_start() -> None:
    clock = VirtualClock()
    trunk, pelvis = FakeImu(clock), FakeImu(clock, name="pelvis", rate_hz=500.0)
    sampler, blocks = _run([trunk, pelvis], [], clock, 2.0)
    _check_accounting(sampler, blocks)
    assert {b.info.name for b in blocks} == {"trunk", "pelvis"}
    dead = FakeImu(clock, faults=Faults(outages=[(0.0, 100.0)]))
    with pytest.raises(Exception, match="failed 4 times"):
        Sampler([dead], [], clock).start()


def test_outage_still_running_at_the_end_is_a_trailing_gap() -> None:
    clock = VirtualClock()
    imu = FakeImu(clock, faults=Faults(outages=[(1.0, 50.0)]))
    adc = FakeAdc(clock, faults=Faults(outages=[(1.0, 50.0)]))
    sampler, blocks = _run([imu], [adc], clock, 3.0)
    _check_accounting(sampler, blocks)
    acc = sampler.accounts()
    assert acc["trunk"].expected == pytest.approx(3000, abs=2)
    assert acc["force"].expected == pytest.approx(3.0 * 320, abs=2)
    assert acc["trunk"].gap_records == 1 and acc["force"].gap_records == 1


def test_realtime_pacing_waits_for_the_wall_clock() -> None:
    clock = VirtualClock()
    wall = [0.0]
    slept: list[float] = []

    def wall_sleep(s: float) -> None:
        slept.append(s)
        wall[0] += s

    sampler = Sampler([FakeImu(clock)], [], clock, pace_realtime=True,
                      wall_clock=lambda: wall[0], wall_sleep=wall_sleep)
    list(sampler.blocks(1.0))
    assert sum(slept) == pytest.approx(1.0, abs=0.001)


def test_thread_with_slow_consumer_turns_overflow_into_stall_gaps() -> None:
    clock = VirtualClock()
    sampler = Sampler([FakeImu(clock)], [FakeAdc(clock)], clock,
                      settings=SamplerSettings(drain_interval_s=0.01))
    thread = SamplerThread(sampler, duration_s=5.0, maxsize=3)
    import time

    received: list[Block] = []
    thread.start()
    for block in thread:
        received.append(block)
        if len(received) < 5:
            time.sleep(0.05)  # the consumer falls behind at first
    assert thread.dropped_blocks > 0
    reasons = {g.reason for b in received for g in b.gaps}
    assert reasons == {"stall"}
    for name, account in sampler.accounts().items():
        index, gaps, _ = _stream(received, name)
        _check_coverage(account.expected, index, gaps)


def test_thread_stop_finishes_cleanly_and_errors_reach_the_consumer() -> None:
    clock = VirtualClock()
    sampler = Sampler([FakeImu(clock)], [], clock, pace_realtime=True)
    thread = SamplerThread(sampler).start()
    got: list[Block] = []
    for block in thread:
        got.append(block)
        if len(got) == 3:
            thread.stop()
    assert len(got) >= 3 and isinstance(got[0], ImuBlock)

    class Broken(FakeImu):
        def drain(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("driver bug")

    broken = SamplerThread(Sampler([Broken(clock)], [], clock), duration_s=1.0).start()
    with pytest.raises(RuntimeError, match="driver bug"):
        list(broken)
