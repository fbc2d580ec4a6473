"""The sampler: drains IMU FIFOs and polls load cells, accounting for every expected sample.

One loop, one clock, one bus. Each load cell is polled every half conversion period; the driver
answers a poll that comes before its next conversion is due without a bus transfer, and counts
conversions that were overwritten unread (``AdcRead.missed``). The ADC holds one conversion
only, so a long IMU FIFO burst on the shared bus (20 frames at 400 kHz take 5.5 ms, longer than
a 320 SPS period) would cost conversions. With a load cell, the IMUs are therefore drained right
after a conversion has been read, each once ``paced_drain_frames`` frames wait (by default
after every conversion: the frames a FIFO overflow throws away besides a reader stall's own are
then at most 3 ms' worth; fewer, longer transfers would save the per-drain addressing and status
bytes, see the README's bus figures), and every drain while the load cell runs is bounded: it
takes at most the frames whose wire time (at ``bus_bytes_per_s``) ends ``burst_reserve_s``
before the driver's ``read_by_s``, the moment the next conversion would be overwritten. Frames
left behind go with the next drain; the load cell is polled again as soon as a burst ends (when
its driver's ``next_ready_s`` says a conversion can be ready). Without a load cell, or while it
is silent, each IMU is drained every ``drain_interval_s`` (20 ms: an MPU-6050 FIFO of 1024
bytes holds 85 frames, 85 ms at 1 kHz). Each IMU's configuration is read back about every
``config_check_interval_s`` (40 ms, so a silent reset is found well within 100 ms), just before
a drain.
Samples are handed on in blocks of about ``block_s`` (20 ms) of sample time per stream.

Sample indices and the accounting
----------------------------------
A sample's index counts the chip's own samples: FIFO frames are numbered consecutively, and a
load-cell conversion comes ``1 + missed`` indices after the previous one (across a restart of
the chip, ``round(dt * rate_hz)`` for the time ``dt`` between the two). When samples are lost
the sampler's clock counts them from the nominal rate: after a successful drain at clock time
``t_d`` that ended at index ``L``, the chip's samples up to clock time ``t`` are
``L + floor((t - t_d) * rate_hz + 1/2)`` (the last drained frame was sampled within one period
before ``t_d``: on average half a period). A FIFO overflow, a run of bus errors, an outage or a
chip reset therefore becomes one :class:`~spinecoach.drivers.blocks.Gap` whose length is right
within one sample, placed where the samples are missing.

The **expected** sample count of a stream is the index its sample clock has reached: the chip's
own count while data flows, the nominal rate times the clock time while it does not. By
construction every expected index is either delivered once or inside exactly one gap, so
``delivered + gap samples == expected`` holds exactly at every block boundary (see
:meth:`Sampler.accounts`).

A ``chip_reset`` gap on a load-cell stream means its tare is stale: the chip re-calibrated and
the zero offset is unknown until the next tare (:meth:`Sampler.set_tare`).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from spinecoach.acquisition.scaling import force_si, imu_si
from spinecoach.drivers.blocks import Block, ForceBlock, Gap, GapReason, ImuBlock, StreamInfo
from spinecoach.drivers.interfaces import Clock, ForceDriver, ImuDriver
from spinecoach.errors import SensorError

#: Wire bytes of one FIFO drain besides the frames (level read, addressing, status read).
DRAIN_OVERHEAD_BYTES = 12
_INT16 = np.dtype(np.int16)


def empty_block(info: StreamInfo, gaps: tuple[Gap, ...]) -> Block:
    """A block with no samples that carries ``gaps`` (gaps after a stream's last sample)."""
    index = np.empty(0, dtype=np.int64)
    valid = np.empty(0, dtype=bool)
    if info.kind == "imu":
        return ImuBlock(info, index, np.empty((0, 3)), np.empty((0, 3)), valid,
                        np.empty((0, 6), dtype=np.int16), gaps)
    return ForceBlock(info, index, np.empty(0), valid, np.empty(0, dtype=np.int32), gaps)


@dataclass(frozen=True)
class SamplerSettings:
    """Cadences of the sampler (s) and its patience with a failing chip."""

    drain_interval_s: float = 0.02
    #: Read-back of each IMU's configuration (a silent reset is found within this plus one
    #: drain).
    config_check_interval_s: float = 0.04
    #: A chip whose transfers have failed (after the bus's own retries) for this long without
    #: one success counts as gone (bus outage, unplugged): the sampler then tries to start it
    #: again every ``reinit_interval_s``. Shorter runs of failures are ``bus_error`` gaps.
    down_after_s: float = 0.1
    reinit_interval_s: float = 0.2
    #: With a load cell on the bus, an IMU is drained after a conversion once this many frames
    #: wait (see the module docstring); 1: after every conversion.
    paced_drain_frames: int = 1
    #: Wire speed (bytes per second: 9 clocks a byte at 400 kHz) used to bound IMU bursts.
    bus_bytes_per_s: float = 400_000.0 / 9.0
    #: Wire time kept free before a load cell's ``read_by_s`` (its status poll and result read,
    #: about 0.25 ms, plus one retried transfer).
    burst_reserve_s: float = 0.0006
    #: Samples are handed on in blocks of about this much sample time per stream.
    block_s: float = 0.02
    #: An action this late (s) means the reader was descheduled: what is lost is a stall.
    stall_after_s: float = 0.05
    #: A virtual clock paced to the wall clock (a simulated rig shown live) may run this far
    #: ahead (s) before the sampler sleeps until the wall clock has caught up: one wake-up per
    #: this much sample time instead of one per chip access (each costs tens of µs of CPU).
    pace_ahead_s: float = 0.02


@dataclass(frozen=True)
class StreamAccount:
    """Where every expected sample of one stream went."""

    delivered: int
    gap_samples: int
    expected: int
    gap_records: int


@dataclass
class _Channel(ABC):
    """Book-keeping common to both kinds of stream.

    Samples wait in a buffer until it spans ``block_s``; a gap first closes the buffer into a
    block (a block's gaps come before its samples), and finished blocks wait in ``out``.
    """

    info: StreamInfo
    next_index: int = 0
    delivered: int = 0
    gap_samples: int = 0
    gap_records: int = 0
    pending_gaps: list[Gap] = field(default_factory=list)
    out: list[Block] = field(default_factory=list)
    buffered: int = 0
    buffer_start_t: float = 0.0
    failures: int = 0
    failing_since_t: float = 0.0
    down: bool = False
    trouble: GapReason | None = None
    next_action_t: float = 0.0

    def add_gap(self, count: int, reason: GapReason) -> None:
        """``count`` samples from the next index are lost."""
        if count <= 0:
            return
        if self.buffered:
            self.out.append(self.close_block())
        self.pending_gaps.append(Gap(self.info.name, self.next_index, count, reason))
        self.next_index += count
        self.gap_samples += count
        self.gap_records += 1

    def take_gaps(self) -> tuple[Gap, ...]:
        if not self.pending_gaps:
            return ()
        gaps = tuple(self.pending_gaps)
        self.pending_gaps.clear()
        return gaps

    @abstractmethod
    def close_block(self) -> Block:
        """The buffered samples (and pending gaps) as one block."""

    def buffer_full(self, now: float, block_s: float) -> None:
        if self.buffered and now - self.buffer_start_t >= block_s:
            self.out.append(self.close_block())


@dataclass
class _ImuChannel(_Channel):
    driver: ImuDriver | None = None
    last_drain_t: float = 0.0
    next_check_t: float = 0.0
    #: Clock time the latest drain began and the whole frames it left behind (pacing only).
    paced_t: float = 0.0
    frames_left: int = 0
    raw: list[npt.NDArray[np.int16]] = field(default_factory=list)
    #: Whether the frames of each entry of ``raw`` are valid (one flag per drain).
    valid: list[bool] = field(default_factory=list)

    def add_frames(self, raw: npt.NDArray[np.int16], valid: bool, now: float) -> None:
        if not self.buffered:
            self.buffer_start_t = now
        n = len(raw)
        self.raw.append(raw)
        self.valid.append(valid)
        self.buffered += n
        self.delivered += n
        self.next_index += n

    def close_block(self) -> Block:
        n = self.buffered
        raw = np.concatenate(self.raw) if self.raw else np.empty((0, 6), dtype=np.int16)
        if all(self.valid):
            valid = np.empty(n, dtype=bool)
            valid.fill(True)
        else:
            valid = np.repeat(np.array(self.valid, dtype=bool), [len(r) for r in self.raw])
        index = np.arange(self.next_index - n, self.next_index, dtype=np.int64)
        gyro, accel = imu_si(raw, self.info)
        self.raw, self.valid, self.buffered = [], [], 0
        return ImuBlock(self.info, index, gyro, accel, valid, raw, self.take_gaps())


@dataclass
class _ForceChannel(_Channel):
    driver: ForceDriver | None = None
    last_conversion_t: float = 0.0
    started: bool = False
    #: The chip was (re)started since the last conversion: count lost ones from the clock.
    resync: bool = False
    tare_stale: bool = False
    codes: list[int] = field(default_factory=list)
    valid: list[bool] = field(default_factory=list)

    def add_conversion(self, code: int, valid: bool, now: float) -> None:
        if not self.buffered:
            self.buffer_start_t = now
        self.codes.append(code)
        self.valid.append(valid)
        self.buffered += 1
        self.delivered += 1
        self.next_index += 1

    def close_block(self) -> Block:
        n = self.buffered
        raw = np.asarray(self.codes, dtype=np.int32)
        index = np.arange(self.next_index - n, self.next_index, dtype=np.int64)
        block = ForceBlock(self.info, index, force_si(raw, self.info),
                           np.asarray(self.valid, dtype=bool), raw, self.take_gaps())
        self.codes, self.valid, self.buffered = [], [], 0
        return block


class Sampler:
    """Reads the given drivers on one :class:`Clock`; yields blocks of samples.

    ``pace_realtime`` holds a virtual clock to the wall clock (a simulated rig shown live);
    with a real clock it has no effect. ``time_origin_s`` is the clock time that sample time
    zero stands for (a simulated rig: 0, the scenario's own time, so recordings line up with
    its ground truth); by default the moment every chip runs. Use :meth:`blocks` for a synchronous run, or
    :class:`~spinecoach.acquisition.thread.SamplerThread` for live use.
    """

    def __init__(
        self,
        imus: Sequence[ImuDriver],
        forces: Sequence[ForceDriver],
        clock: Clock,
        settings: SamplerSettings | None = None,
        pace_realtime: bool = False,
        wall_clock: Callable[[], float] = time.monotonic,
        wall_sleep: Callable[[float], None] = time.sleep,
        time_origin_s: float | None = None,
    ) -> None:
        self.settings = settings or SamplerSettings()
        self._origin_arg = time_origin_s
        self._clock = clock
        self._imus = [_ImuChannel(info=d.info, driver=d) for d in imus]
        self._forces = [_ForceChannel(info=d.info, driver=d) for d in forces]
        self._channels: list[_Channel] = [*self._imus, *self._forces]
        names = [c.info.name for c in self._channels]
        if len(set(names)) != len(names):
            raise ValueError(f"stream names must be unique, got {names}")
        self._pace = pace_realtime
        self._wall_clock = wall_clock
        self._wall_sleep = wall_sleep
        #: Called each time the loop is about to wait for its next action, after the blocks
        #: finished meanwhile have been yielded: where a consumer's batch of blocks ends. (Not
        #: called while a paced virtual clock holds finished blocks back: no batch ends there.)
        self.before_wait: Callable[[], None] | None = None
        self._session_t = 0.0
        self._origin_t = 0.0
        self._wall_start = 0.0
        self._started = False
        self._finished = False

    # -- set-up --------------------------------------------------------------------------------
    @property
    def streams(self) -> list[StreamInfo]:
        """Stream infos (IMUs first), with ``t0_s`` set once :meth:`start` has run."""
        return [c.info for c in self._channels]

    @property
    def session_start_s(self) -> float:
        """Clock time (s) at which every chip was running: ``duration_s`` counts from here."""
        return self._session_t

    @property
    def time_origin_s(self) -> float:
        """Clock time (s) of sample time zero (``t_s = t0_s + index / rate_hz``)."""
        return self._origin_t

    def start(self) -> None:
        """Start every chip; a chip that does not answer raises its driver's one-line error.

        Session time zero is the moment every chip runs: ``duration_s`` counts from there.
        """
        # Load cells first: their start-up (power-up, internal calibration) takes a while and
        # an IMU started before it would fill its FIFO meanwhile.
        for ch in [*self._forces, *self._imus]:
            ch.driver.start()  # type: ignore[attr-defined]
        self._session_t = self._clock.monotonic_s()
        self._origin_t = self._session_t if self._origin_arg is None else self._origin_arg
        self._wall_start = self._wall_clock()
        # The session's samples begin once every chip runs: frames an IMU took while another
        # chip was starting (possibly an overflowing FIFO's worth) are drained and dropped, so
        # index 0 is the first frame after this, half a period later on average.
        for ch in self._imus:
            assert ch.driver is not None
            ch.driver.drain()
            now = self._clock.monotonic_s()
            ch.info = replace(ch.driver.info, t0_s=now - self._origin_t + ch.info.period_s / 2)
            self._schedule_after_start(ch, now)
        # Index 0 of a load cell is the first conversion read from now on (it completed within
        # half a period of now, on average).
        now = self._clock.monotonic_s()
        for fc in self._forces:
            fc.info = replace(fc.info, t0_s=now - self._origin_t + fc.info.period_s / 2)
            fc.last_conversion_t = now
            self._schedule_after_start(fc, now)
        self._started = True

    def set_tare(self, name: str, offset_counts: float, n_per_count: float | None = None) -> None:
        """New tare of load-cell stream ``name`` (ADC counts at zero force) and, if given, a new
        scale (N per count, from a known-weight calibration); clears a stale tare."""
        for fc in self._forces:
            if fc.info.name == name:
                if fc.buffered:
                    fc.out.append(fc.close_block())
                scale = fc.info.force_n_per_count if n_per_count is None else n_per_count
                fc.info = replace(fc.info, force_offset_counts=offset_counts,
                                  force_n_per_count=scale)
                fc.tare_stale = False
                return
        raise KeyError(name)

    @property
    def tare_stale(self) -> dict[str, bool]:
        """Load-cell streams whose chip was found reset since their last tare."""
        return {fc.info.name: fc.tare_stale for fc in self._forces}

    def accounts(self) -> dict[str, StreamAccount]:
        """Delivered, gap and expected samples per stream, counting blocks handed out so far."""
        out = {}
        for ch in self._channels:
            held_gaps = [*ch.pending_gaps, *(g for b in ch.out for g in b.gaps)]
            held = ch.buffered + sum(len(b) for b in ch.out)
            held_gap_samples = sum(g.count for g in held_gaps)
            out[ch.info.name] = StreamAccount(
                delivered=ch.delivered - held,
                gap_samples=ch.gap_samples - held_gap_samples,
                expected=ch.next_index - held - held_gap_samples,
                gap_records=ch.gap_records - len(held_gaps),
            )
        return out

    # -- the loop ---------------------------------------------------------------------------
    def blocks(self, duration_s: float | None = None) -> Iterator[Block]:
        """Run until ``duration_s`` of session time (or forever), yielding blocks.

        Closing the iterator early (``break``) is fine; call :meth:`finish` to collect the
        samples still in the chips and the trailing gaps.
        """
        if not self._started:
            self.start()
        end_t = math.inf if duration_s is None else self._session_t + duration_s
        channels = self._channels
        clock, block_s = self._clock, self.settings.block_s
        stall_after_s = self.settings.stall_after_s
        pace, pace_ahead_s = self._pace, self.settings.pace_ahead_s
        wall_clock, session_t, wall_start = self._wall_clock, self._session_t, self._wall_start
        # One service method per channel, looked up once (this loop runs ~1000 times a second,
        # so what it does per pass is written out here rather than in helper calls).
        services: list[tuple[_Channel, Callable[[Any, float], None]]] = [
            (ch, self._service_imu if isinstance(ch, _ImuChannel) else self._poll)
            for ch in channels
        ]
        while True:
            channel, service = services[0]
            due = channel.next_action_t
            for ch, fn in services:
                if ch.next_action_t < due:
                    channel, service, due = ch, fn, ch.next_action_t
            if due >= end_t:
                break
            # Finished blocks go out before the loop waits for the next action. On a real
            # clock the loop waits after every action. A paced virtual clock waits only once
            # it is ``pace_ahead_s`` ahead of the wall clock (``_wall_ahead_s``), and holds
            # its blocks till then: they go out together just before that wait, so the
            # consumer runs while this thread sleeps instead of competing with it; while it is
            # behind the wall clock (catching up) they go out at once.
            holding = (
                pace and 0.0 <= (due - session_t) - (wall_clock() - wall_start) <= pace_ahead_s
            )
            if not holding:
                for ch in channels:
                    if ch.out:
                        yield from self._hand_over(ch.out)
                before_wait = self.before_wait
                if before_wait is not None:
                    before_wait()
            # ``_wait_until(due)``; while blocks are held the clock is at most
            # ``pace_ahead_s`` ahead of the wall clock (which only moves on), so there is no
            # wall-clock wait.
            now = clock.monotonic_s()
            if due > now:
                clock.sleep(due - now)
            if pace and not holding:
                ahead = self._wall_ahead_s(due)
                if ahead > pace_ahead_s:
                    self._wall_sleep(ahead)
            now = clock.monotonic_s()
            if now - due > stall_after_s:
                self._note_stall(due)
            service(channel, now)
            now = clock.monotonic_s()
            for ch in channels:
                # A stream that stopped (an outage) still hands on what it holds in time.
                if ch.buffered and now - ch.buffer_start_t >= block_s:
                    ch.out.append(ch.close_block())
        for ch in channels:
            yield from self._hand_over(ch.out)
        self._wait_until(end_t, ahead_s=0.0)
        self._final_reads()
        for ch in channels:
            yield from self._hand_over(ch.out)

    @staticmethod
    def _hand_over(out: list[Block]) -> Iterator[Block]:
        """Yield the finished blocks of ``out``, each leaving ``out`` before it is yielded.

        The consumer may close the iterator at any yield (a stop in the middle of a batch):
        what it has received is then no longer held, and what it has not is still in ``out``
        for :meth:`finish`, so every block is handed over exactly once and the accounts
        (which count ``out`` as held) stay exact.
        """
        while out:
            yield out.pop(0)

    def finish(self) -> list[Block]:
        """Final drain and poll, then trailing gaps: afterwards the accounts are complete.

        Returns every block not handed over yet: those of the final reads and those a run
        closed in the middle of handing over a batch still held (each block once, however
        often this is called)."""
        self._final_reads()
        out: list[Block] = []
        for channel in self._channels:
            out.extend(channel.out)
            channel.out.clear()
        return out

    def _final_reads(self) -> None:
        """Once: the last poll and drain, the trailing gaps, the buffers closed into blocks
        (waiting in each channel's ``out``)."""
        if self._finished or not self._started:
            return
        self._finished = True
        now = self._clock.monotonic_s()
        # Load cells first: a conversion waiting now would be overwritten during the drains.
        for fc in self._forces:
            if not fc.down:
                self._poll(fc, now)
            if fc.started or fc.down:
                lost = max(0, round((now - fc.last_conversion_t) * fc.info.rate_hz) - 1)
                fc.add_gap(lost, fc.trouble or ("outage" if fc.down else "missed_conversion"))
        for ch in self._imus:
            if not ch.down:
                self._drain(ch, now)
            if ch.down or ch.trouble is not None:
                lost = self._lost_since(ch.last_drain_t, now, ch.info.rate_hz)
                ch.add_gap(lost, ch.trouble or "outage")
        for channel in self._channels:
            if channel.buffered:
                channel.out.append(channel.close_block())
            elif channel.pending_gaps:
                channel.out.append(empty_block(channel.info, channel.take_gaps()))

    def close(self) -> None:
        """Put every chip to sleep (drivers never raise on an absent chip)."""
        for ch in self._channels:
            ch.driver.close()  # type: ignore[attr-defined]

    def _wait_until(self, due: float, ahead_s: float | None = None) -> None:
        """Sleep the clock until ``due``; a paced virtual clock also waits for the wall clock
        once it is more than ``ahead_s`` (default ``pace_ahead_s``) ahead of it."""
        if self.before_wait is not None:
            self.before_wait()
        now = self._clock.monotonic_s()
        if due > now:
            self._clock.sleep(due - now)
        if self._pace:
            ahead = self._wall_ahead_s(due)
            if ahead > (self.settings.pace_ahead_s if ahead_s is None else ahead_s):
                self._wall_sleep(ahead)

    def _wall_ahead_s(self, t: float) -> float:
        """How far clock time ``t`` is ahead of the wall clock (s; paced runs)."""
        return (t - self._session_t) - (self._wall_clock() - self._wall_start)

    def _note_stall(self, since: float) -> None:
        """If the clock moved on by more than ``stall_after_s`` since ``since`` (the loop was
        descheduled, or held up inside a transfer), whatever the chips lose meanwhile is a
        stall, whatever evidence shows it (an overflow, a missed-conversion count)."""
        if self._clock.monotonic_s() - since > self.settings.stall_after_s:
            for ch in self._channels:
                ch.trouble = ch.trouble or "stall"

    @staticmethod
    def _lost_to_restart(ch: _ImuChannel, fallback_t: float) -> int:
        """Samples lost between the last drained frame and a restart of the IMU's FIFO (a
        reset after an overflow, a re-initialisation); moves the count's anchor to the restart.

        When the driver tells when the FIFO (re)started (``fifo_started_s``, as the drivers on
        the shared FIFO base do), its next frame was sampled then: the frames in between are
        ``floor((t_start - t_d) * rate_hz)``, so that frame gets the index of its true time. A
        restart configures the chip first and may take a few ms more after enabling the FIFO,
        so this matters. Otherwise the restart happened at about ``fallback_t`` and the
        chip's next sample comes after it.
        """
        started = getattr(ch.driver, "fifo_started_s", None)
        if isinstance(started, float) and ch.last_drain_t <= started <= fallback_t + 1.0:
            lost = max(0, math.floor((started - ch.last_drain_t) * ch.info.rate_hz))
            ch.last_drain_t = started
            return lost
        lost = Sampler._lost_since(ch.last_drain_t, fallback_t, ch.info.rate_hz)
        ch.last_drain_t = fallback_t
        return lost

    @staticmethod
    def _lost_since(t_last: float, t_now: float, rate_hz: float) -> int:
        """Samples a chip made after the last one read at ``t_last`` up to ``t_now``."""
        return max(0, math.floor((t_now - t_last) * rate_hz + 0.5))

    # -- IMU ----------------------------------------------------------------------------------
    def _service_imu(self, ch: _ImuChannel, now: float) -> None:
        s = self.settings
        if ch.down:
            self._recover(ch)
            return
        paced = bool(self._forces)
        max_frames: int | None = None
        if paced:
            # Paced by the load cell's conversions (see ``paced_drain_frames``); the timer is
            # the fallback while no conversion comes.
            ch.next_action_t = now + s.drain_interval_s
            if now >= ch.next_check_t and not self._check_imu(ch):
                return
            max_frames = self._burst_frames(ch)
            if max_frames == 0:
                return  # no room before the next conversion: the next one paces it
        else:
            ch.next_action_t = max(ch.next_action_t + s.drain_interval_s,
                                   now + s.drain_interval_s / 4)
            # Due when it would otherwise wait a whole drain longer than the interval.
            if now >= ch.next_check_t - s.drain_interval_s / 2 and not self._check_imu(ch):
                return
        self._drain(ch, now, max_frames)
        # The load cell may have a conversion waiting since before this burst: read it now
        # (unless its driver knows none can be ready yet: the poll would be free and idle).
        after = self._clock.monotonic_s()
        for fc in self._forces:
            if after >= getattr(fc.driver, "next_ready_s", 0.0):
                fc.next_action_t = min(fc.next_action_t, after)

    def _check_imu(self, ch: _ImuChannel) -> bool:
        """Read the configuration back; False when the drain must be skipped this time."""
        ch.next_check_t = self._clock.monotonic_s() + self.settings.config_check_interval_s
        assert ch.driver is not None
        try:
            reset = ch.driver.check_configuration()
        except SensorError:
            self._failed(ch)
            return False
        if reset:
            # The chip lost its configuration (and its FIFO) at some time since the last
            # drain; the driver has configured it again, so it samples afresh from then.
            ch.add_gap(self._lost_to_restart(ch, self._clock.monotonic_s()), "chip_reset")
            ch.failures, ch.trouble = 0, None
            return False
        return True

    def _burst_frames(self, ch: _ImuChannel) -> int | None:
        """The most frames a drain of ``ch`` may take now so that every running load cell
        can still be polled before its next conversion is overwritten (None: no bound)."""
        deadline = math.inf
        for fc in self._forces:
            if not fc.down:
                deadline = min(deadline, getattr(fc.driver, "read_by_s", math.inf))
        if deadline == math.inf:
            return None
        s = self.settings
        budget_s = deadline - s.burst_reserve_s - self._clock.monotonic_s()
        budget_bytes = budget_s * s.bus_bytes_per_s
        frame_bytes = getattr(ch.driver, "FRAME_BYTES", 12)
        return max(0, int((budget_bytes - DRAIN_OVERHEAD_BYTES) // frame_bytes))

    def _drain(self, ch: _ImuChannel, now: float, max_frames: int | None = None) -> None:
        assert ch.driver is not None
        try:
            read = ch.driver.drain() if max_frames is None else ch.driver.drain(max_frames)
        except SensorError:
            self._failed(ch)
            return
        finally:
            if self._clock.monotonic_s() - now > self.settings.stall_after_s:
                self._note_stall(now)
            # From its start: frames that came during the transfer are waiting too.
            ch.paced_t = now
            ch.frames_left = getattr(ch.driver, "frames_left", 0)
        ch.failures = 0
        if read.overflowed or read.reinitialised:
            # The frames in the FIFO were discarded when the driver reset it (during this
            # drain); every sample since the last good drain is lost.
            reason: GapReason = ch.trouble or (
                "chip_reset" if read.reinitialised else "fifo_overflow"
            )
            ch.add_gap(self._lost_to_restart(ch, now), reason)
        ch.trouble = None
        raw = read.raw
        # What the drivers hand over already (numpy calls are dear right after a wake-up).
        if not (type(raw) is np.ndarray and raw.dtype is _INT16 and raw.ndim == 2
                and raw.shape[1] == 6):
            raw = np.asarray(raw, dtype=np.int16).reshape(-1, 6)
        if len(raw):
            # The anchor of the lost-sample count moves only with evidence of sampling: an
            # empty FIFO may be a chip that silently stopped. Frames a bounded drain left
            # behind were sampled before the last one taken.
            ch.last_drain_t = now - ch.frames_left / ch.info.rate_hz
            # Frames handed over together with a reset cannot be trusted (frozen registers).
            ch.add_frames(raw, not read.reinitialised, now)
        ch.buffer_full(now, self.settings.block_s)

    def _failed(self, ch: _Channel) -> None:
        """A transfer failed after the bus's retries."""
        now = self._clock.monotonic_s()
        if ch.failures == 0:
            ch.failing_since_t = now
        ch.failures += 1
        ch.trouble = ch.trouble or "bus_error"
        if now - ch.failing_since_t >= self.settings.down_after_s:
            ch.down = True
            ch.trouble = "outage"
            ch.next_action_t = now + self.settings.reinit_interval_s

    def _recover(self, trigger: _Channel) -> None:
        """Try to start every chip that went down, load cells first as at start.

        Chips on one bus usually go down together; restarting them in one pass, before any
        further reads, keeps the slow start of one (a NAU7802 calibrates for 200 ms) from
        overflowing the FIFO of an IMU restarted before it, which would add a second gap right
        after the outage gap.
        """
        for ch in [*self._forces, *self._imus]:
            if ch.down and not self._restart(ch):
                ch.next_action_t = self._clock.monotonic_s() + self.settings.reinit_interval_s
                if ch is trigger:
                    return  # the bus is still out: the others would fail the same way

    def _restart(self, ch: _Channel) -> bool:
        """Start the chip of ``ch`` again; False when it still does not answer."""
        driver = ch.driver  # type: ignore[attr-defined]
        try:
            driver.start()
        except SensorError:
            return False
        now = self._clock.monotonic_s()
        ch.down, ch.failures = False, 0
        if isinstance(ch, _ImuChannel):
            lost = self._lost_to_restart(ch, now)
            restart_t = ch.last_drain_t
            ch.add_gap(lost, ch.trouble or "outage")
            ch.trouble = None
            self._schedule_after_start(ch, now)
            ch.last_drain_t = restart_t
            return True
        elif isinstance(ch, _ForceChannel):
            # The outage gap is counted at the first conversion; a restarted chip has
            # calibrated its offset afresh, so the tare no longer holds.
            ch.tare_stale, ch.resync = True, True
        self._schedule_after_start(ch, now)
        return True

    def _schedule_after_start(self, ch: _Channel, now: float) -> None:
        """Next actions of a chip that has just been (re)started at ``now``."""
        if isinstance(ch, _ImuChannel):
            ch.last_drain_t = ch.paced_t = now
            ch.next_action_t = now + self.settings.drain_interval_s
            ch.next_check_t = now + self.settings.config_check_interval_s
        else:
            ch.next_action_t = now + ch.info.period_s / 2

    # -- load cell ----------------------------------------------------------------------------
    def _poll(self, fc: _ForceChannel, now: float) -> None:
        """The load cell's action: a poll (or, while its chip is down, an attempt to start it)."""
        if fc.down:
            self._recover(fc)
            return
        assert fc.driver is not None
        half_period = 0.5 / fc.info.rate_hz  # bit for bit ``info.period_s / 2``
        # Every half period on a fixed grid: the driver answers polls before its next
        # conversion is due without touching the bus, and counts overwritten conversions
        # exactly when polled this often.
        fc.next_action_t = max(fc.next_action_t + half_period, now + half_period / 4)
        try:
            read = fc.driver.poll()
        except SensorError:
            self._failed(fc)
            return
        finally:
            if self._clock.monotonic_s() - now > self.settings.stall_after_s:
                self._note_stall(now)
        fc.failures = 0
        if read.reinitialised:
            # The driver found the chip reset and started it again: its conversion count
            # starts afresh, so the lost ones are counted from the clock at the next one.
            fc.trouble, fc.tare_stale, fc.resync = "chip_reset", True, True
        if read.code is None:
            return
        if fc.started:
            if fc.resync:
                lost = max(0, round((now - fc.last_conversion_t) * fc.info.rate_hz) - 1)
            else:
                lost = read.missed
            if lost > 0:
                fc.add_gap(lost, fc.trouble or "missed_conversion")
        fc.started, fc.resync, fc.trouble = True, False, None
        fc.last_conversion_t = now
        fc.add_conversion(read.code, not (read.saturated or read.reinitialised), now)
        if fc is self._forces[0]:
            self._pace_imus(fc, now)
        if now - fc.buffer_start_t >= self.settings.block_s:  # ``buffer_full``: one is buffered
            fc.out.append(fc.close_block())

    def _pace_imus(self, fc: _ForceChannel, now: float) -> None:
        """After a conversion of the pacing load cell: drain each IMU that has about
        ``paced_drain_frames`` frames waiting or a configuration read-back due."""
        wanted = self.settings.paced_drain_frames
        for ch in self._imus:
            if ch.down:
                continue
            waiting = ch.frames_left + (now - ch.paced_t) * ch.info.rate_hz
            if waiting >= wanted or now >= ch.next_check_t:
                ch.next_action_t = min(ch.next_action_t, now)
