"""The sampler: drains IMU FIFOs and polls load cells, accounting for every expected sample.

One loop, one clock. Each IMU is drained every ``drain_interval_s`` (20 ms: an MPU-6050 FIFO of
1024 bytes holds 85 frames, 85 ms at 1 kHz, so a drain comes at least four times before it could
overflow) and its configuration read back every ``config_check_interval_s`` (40 ms, so a silent
reset is found well within 100 ms). Each load cell is polled every half conversion period; the
driver answers a poll that comes before its next conversion is due without a bus transfer, and
counts conversions that were overwritten unread (``AdcRead.missed``).

Sample indices and the accounting
----------------------------------
A sample's index counts the chip's own samples: FIFO frames are numbered consecutively, and a
load-cell conversion comes ``1 + missed`` indices after the previous one (across a restart of
the chip, ``round(dt * rate_hz)`` for the time ``dt`` between the two).
When samples are lost the sampler's clock counts them from the nominal rate: after a successful
drain at clock time ``t_d`` that ended at index ``L``, the chip's samples up to clock time ``t``
are ``L + floor((t - t_d) * rate_hz + 1/2)`` (the last drained frame was sampled within one period
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from spinecoach.acquisition.scaling import force_si, imu_si
from spinecoach.drivers.blocks import Block, ForceBlock, Gap, GapReason, ImuBlock, StreamInfo
from spinecoach.drivers.interfaces import Clock, ForceDriver, ImuDriver
from spinecoach.errors import SensorError


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
    #: Read-back of each IMU's configuration: every second drain, so a silent reset is
    #: found within 40 ms plus one drain.
    config_check_interval_s: float = 0.04
    #: A chip whose transfers have failed (after the bus's own retries) for this long without
    #: one success counts as gone (bus outage, unplugged): the sampler then tries to start it
    #: again every ``reinit_interval_s``. Shorter runs of failures are ``bus_error`` gaps.
    down_after_s: float = 0.1
    reinit_interval_s: float = 0.2
    #: Load-cell samples are handed on in blocks of this much sample time.
    force_block_s: float = 0.02
    #: A poll this late (s) means the reader was descheduled: lost conversions are a stall.
    stall_after_s: float = 0.05


@dataclass(frozen=True)
class StreamAccount:
    """Where every expected sample of one stream went."""

    delivered: int
    gap_samples: int
    expected: int
    gap_records: int


@dataclass
class _Channel:
    """Book-keeping common to both kinds of stream."""

    info: StreamInfo
    next_index: int = 0
    delivered: int = 0
    gap_samples: int = 0
    gap_records: int = 0
    pending_gaps: list[Gap] = field(default_factory=list)
    failures: int = 0
    failing_since_t: float = 0.0
    down: bool = False
    trouble: GapReason | None = None
    next_action_t: float = 0.0

    def add_gap(self, start: int, count: int, reason: GapReason) -> None:
        if count <= 0:
            return
        self.pending_gaps.append(Gap(self.info.name, start, count, reason))
        self.gap_samples += count
        self.gap_records += 1

    def take_gaps(self) -> tuple[Gap, ...]:
        gaps = tuple(self.pending_gaps)
        self.pending_gaps.clear()
        return gaps


@dataclass
class _ImuChannel(_Channel):
    driver: ImuDriver | None = None
    last_drain_t: float = 0.0
    next_check_t: float = 0.0


@dataclass
class _ForceChannel(_Channel):
    driver: ForceDriver | None = None
    last_conversion_t: float = 0.0
    started: bool = False
    #: The chip was (re)started since the last conversion: count lost ones from the clock.
    resync: bool = False
    tare_stale: bool = False
    index: list[int] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    valid: list[bool] = field(default_factory=list)
    block_start_t: float = 0.0


class Sampler:
    """Reads the given drivers on one :class:`Clock`; yields blocks of samples.

    ``pace_realtime`` holds a virtual clock to the wall clock (a simulated rig shown live);
    with a real clock it has no effect. Use :meth:`blocks` for a synchronous run, or
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
    ) -> None:
        self.settings = settings or SamplerSettings()
        self._clock = clock
        self._imus = [_ImuChannel(info=d.info, driver=d) for d in imus]
        self._forces = [_ForceChannel(info=d.info, driver=d) for d in forces]
        names = [c.info.name for c in [*self._imus, *self._forces]]
        if len(set(names)) != len(names):
            raise ValueError(f"stream names must be unique, got {names}")
        self._pace = pace_realtime
        self._wall_clock = wall_clock
        self._wall_sleep = wall_sleep
        self._session_t = 0.0
        self._wall_start = 0.0
        self._started = False
        self._finished = False

    # -- set-up --------------------------------------------------------------------------------
    @property
    def streams(self) -> list[StreamInfo]:
        """Stream infos (IMUs first), with ``t0_s`` set once :meth:`start` has run."""
        return [c.info for c in [*self._imus, *self._forces]]

    @property
    def session_start_s(self) -> float:
        """Clock time (s) of the session's time zero."""
        return self._session_t

    def now_s(self) -> float:
        """Session time (s) of the sampler's clock."""
        return self._clock.monotonic_s() - self._session_t

    def start(self) -> None:
        """Start every chip; a chip that does not answer raises its driver's one-line error."""
        self._session_t = self._clock.monotonic_s()
        self._wall_start = self._wall_clock()
        for ch in [*self._imus, *self._forces]:
            driver = ch.driver  # type: ignore[attr-defined]
            driver.start()
            now = self._clock.monotonic_s()
            # Index 0 is the chip's first sample after start: one period after it returned.
            ch.info = replace(driver.info, t0_s=now - self._session_t + ch.info.period_s)
            self._schedule_after_start(ch, now)
            if isinstance(ch, _ForceChannel):
                ch.last_conversion_t = ch.block_start_t = now
        self._started = True

    def set_tare(self, name: str, offset_counts: float) -> None:
        """New tare of load-cell stream ``name`` (ADC counts at zero force); clears a stale tare."""
        for fc in self._forces:
            if fc.info.name == name:
                self._flush_force(fc)
                fc.info = replace(fc.info, force_offset_counts=offset_counts)
                fc.tare_stale = False
                return
        raise KeyError(name)

    @property
    def tare_stale(self) -> dict[str, bool]:
        """Load-cell streams whose chip was found reset since their last tare."""
        return {fc.info.name: fc.tare_stale for fc in self._forces}

    def accounts(self) -> dict[str, StreamAccount]:
        """Delivered, gap and expected samples per stream (blocks handed out so far)."""
        out = {}
        for ch in [*self._imus, *self._forces]:
            pending = sum(g.count for g in ch.pending_gaps)
            buffered = len(ch.index) if isinstance(ch, _ForceChannel) else 0
            out[ch.info.name] = StreamAccount(
                delivered=ch.delivered - buffered,
                gap_samples=ch.gap_samples - pending,
                expected=ch.next_index - pending - buffered,
                gap_records=ch.gap_records - len(ch.pending_gaps),
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
        while True:
            channel = min([*self._imus, *self._forces], key=lambda c: c.next_action_t)
            due = channel.next_action_t
            if due >= end_t:
                break
            self._wait_until(due)
            if isinstance(channel, _ImuChannel):
                yield from self._service_imu(channel)
            else:
                yield from self._service_force(channel)
        self._wait_until(end_t)
        yield from self.finish()

    def finish(self) -> list[Block]:
        """Final drain and poll, then trailing gaps: afterwards the accounts are complete."""
        if self._finished or not self._started:
            return []
        self._finished = True
        out: list[Block] = []
        now = self._clock.monotonic_s()
        for ch in self._imus:
            if not ch.down:
                out.extend(self._drain(ch, now))
            if ch.down or ch.trouble is not None:
                lost = self._lost_since(ch.last_drain_t, now, ch.info.rate_hz)
                ch.add_gap(ch.next_index, lost, ch.trouble or "outage")
                ch.next_index += lost
            if ch.pending_gaps:
                out.append(empty_block(ch.info, ch.take_gaps()))
        for fc in self._forces:
            if not fc.down:
                out.extend(self._poll(fc, now))
            lost = max(0, round((now - fc.last_conversion_t) * fc.info.rate_hz) - 1)
            if fc.started or fc.down:
                fc.add_gap(fc.next_index, lost, fc.trouble or ("outage" if fc.down else "missed_conversion"))
                fc.next_index += lost
            block = self._flush_force(fc)
            if block is not None:
                out.append(block)
        return out

    def close(self) -> None:
        """Put every chip to sleep (drivers never raise on an absent chip)."""
        for ch in self._imus:
            assert ch.driver is not None
            ch.driver.close()
        for fc in self._forces:
            assert fc.driver is not None
            fc.driver.close()

    def _wait_until(self, due: float) -> None:
        now = self._clock.monotonic_s()
        if due > now:
            self._clock.sleep(due - now)
        if self._pace:
            ahead = (due - self._session_t) - (self._wall_clock() - self._wall_start)
            if ahead > 0:
                self._wall_sleep(ahead)

    @staticmethod
    def _lost_since(t_last: float, t_now: float, rate_hz: float) -> int:
        """Samples a chip made after the last one read at ``t_last`` up to ``t_now``."""
        return max(0, math.floor((t_now - t_last) * rate_hz + 0.5))

    # -- IMU ----------------------------------------------------------------------------------
    def _service_imu(self, ch: _ImuChannel) -> list[Block]:
        s = self.settings
        now = self._clock.monotonic_s()
        if ch.down:
            self._recover(ch)
            return []
        ch.next_action_t = max(ch.next_action_t + s.drain_interval_s, now + s.drain_interval_s / 4)
        if now >= ch.next_check_t - s.drain_interval_s / 2:
            ch.next_check_t = now + s.config_check_interval_s
            assert ch.driver is not None
            try:
                reset = ch.driver.check_configuration()
            except SensorError:
                self._failed(ch)
                return []
            if reset:
                # The chip lost its configuration (and its FIFO) at some time since the last
                # drain; the driver has configured it again, so it samples afresh from now.
                after = self._clock.monotonic_s()
                lost = self._lost_since(ch.last_drain_t, after, ch.info.rate_hz)
                ch.add_gap(ch.next_index, lost, "chip_reset")
                ch.next_index += lost
                ch.last_drain_t = after
                ch.failures, ch.trouble = 0, None
                return []
        return self._drain(ch, now)

    def _drain(self, ch: _ImuChannel, now: float) -> list[Block]:
        assert ch.driver is not None
        try:
            read = ch.driver.drain()
        except SensorError:
            self._failed(ch)
            return []
        ch.failures = 0
        if read.overflowed or read.reinitialised:
            # The frames in the FIFO were discarded when the driver reset it (at about ``now``);
            # every sample since the last good drain is lost.
            lost = self._lost_since(ch.last_drain_t, now, ch.info.rate_hz)
            reason: GapReason = ch.trouble or (
                "chip_reset" if read.reinitialised else "fifo_overflow"
            )
            ch.add_gap(ch.next_index, lost, reason)
            ch.next_index += lost
        ch.trouble = None
        raw = np.asarray(read.raw, dtype=np.int16).reshape(-1, 6)
        if len(raw) or read.overflowed or read.reinitialised:
            # The anchor of the lost-sample count moves only with evidence of sampling: an
            # empty FIFO may be a chip that silently stopped.
            ch.last_drain_t = now
        if len(raw) == 0 and not ch.pending_gaps:
            return []
        # Frames handed over together with a reset cannot be trusted (frozen registers).
        valid = np.full(len(raw), not read.reinitialised)
        return [self._imu_block(ch, raw, valid)]

    def _imu_block(self, ch: _ImuChannel, raw: np.ndarray, valid: np.ndarray) -> ImuBlock:
        n = len(raw)
        index = np.arange(ch.next_index, ch.next_index + n, dtype=np.int64)
        ch.next_index += n
        ch.delivered += n
        gyro, accel = imu_si(raw, ch.info)
        return ImuBlock(ch.info, index, gyro, accel, valid, raw, ch.take_gaps())

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
            ch.next_action_t = self._clock.monotonic_s() + self.settings.reinit_interval_s

    def _recover(self, first: _Channel) -> None:
        """Try to start a chip that went down; if it answers, start every other down chip now.

        Chips on one bus usually go down together; restarting them in one pass, before any
        further reads, keeps the slow start of one (an MPU-6050 reset takes 100 ms) from
        costing another stream a second gap right after its outage gap.
        """
        first.next_action_t = self._clock.monotonic_s() + self.settings.reinit_interval_s
        if not self._restart(first):
            return
        for other in [*self._imus, *self._forces]:
            if other.down and other is not first:
                if not self._restart(other):
                    other.next_action_t = (
                        self._clock.monotonic_s() + self.settings.reinit_interval_s
                    )

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
            lost = self._lost_since(ch.last_drain_t, now, ch.info.rate_hz)
            ch.add_gap(ch.next_index, lost, ch.trouble or "outage")
            ch.next_index += lost
            ch.trouble = None
        elif isinstance(ch, _ForceChannel):
            # The outage gap is counted at the first conversion; a restarted chip has
            # calibrated its offset afresh, so the tare no longer holds.
            ch.tare_stale, ch.resync = True, True
        self._schedule_after_start(ch, now)
        return True

    def _schedule_after_start(self, ch: _Channel, now: float) -> None:
        """Next actions of a chip that has just been (re)started at ``now``."""
        if isinstance(ch, _ImuChannel):
            ch.last_drain_t = now
            ch.next_action_t = now + self.settings.drain_interval_s
            ch.next_check_t = now + self.settings.config_check_interval_s
        else:
            ch.next_action_t = now + ch.info.period_s / 2

    # -- load cell ----------------------------------------------------------------------------
    def _service_force(self, fc: _ForceChannel) -> list[Block]:
        now = self._clock.monotonic_s()
        if fc.down:
            self._recover(fc)
            return []
        late = now - fc.next_action_t > self.settings.stall_after_s
        return self._poll(fc, now, late)

    def _poll(self, fc: _ForceChannel, now: float, late: bool = False) -> list[Block]:
        assert fc.driver is not None
        half_period = fc.info.period_s / 2
        # Every half period on a fixed grid: the driver answers polls before its next
        # conversion is due without touching the bus, and counts overwritten conversions
        # exactly when polled this often.
        fc.next_action_t = max(fc.next_action_t + half_period, now + half_period / 4)
        try:
            read = fc.driver.poll()
        except SensorError:
            self._failed(fc)
            return []
        fc.failures = 0
        if read.reinitialised:
            # The driver found the chip reset and started it again: its conversion count
            # starts afresh, so the lost ones are counted from the clock at the next one.
            fc.trouble, fc.tare_stale, fc.resync = "chip_reset", True, True
        if read.code is None:
            return []
        out: list[Block] = []
        if fc.started:
            if fc.resync:
                lost = max(0, round((now - fc.last_conversion_t) * fc.info.rate_hz) - 1)
            else:
                lost = read.missed
            if lost > 0:
                # Samples before the gap go out first: a block's gaps precede its samples.
                block = self._flush_force(fc)
                if block is not None:
                    out.append(block)
                reason: GapReason = fc.trouble or ("stall" if late else "missed_conversion")
                fc.add_gap(fc.next_index, lost, reason)
                fc.next_index += lost
        fc.started, fc.resync, fc.trouble = True, False, None
        fc.last_conversion_t = now
        if not fc.index:
            fc.block_start_t = now
        fc.index.append(fc.next_index)
        fc.codes.append(read.code)
        fc.valid.append(not (read.saturated or read.reinitialised))
        fc.next_index += 1
        fc.delivered += 1
        if fc.pending_gaps or now - fc.block_start_t >= self.settings.force_block_s:
            block = self._flush_force(fc)
            if block is not None:
                out.append(block)
        return out

    def _flush_force(self, fc: _ForceChannel) -> ForceBlock | None:
        if not fc.index and not fc.pending_gaps:
            return None
        raw = np.asarray(fc.codes, dtype=np.int32)
        block = ForceBlock(
            fc.info,
            np.asarray(fc.index, dtype=np.int64),
            force_si(raw, fc.info),
            np.asarray(fc.valid, dtype=bool),
            raw,
            fc.take_gaps(),
        )
        fc.index, fc.codes, fc.valid = [], [], []
        return block
