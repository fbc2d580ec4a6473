"""Small fake drivers behind the driver Protocols, with known ground truth.

Each sample's codes encode its true sample number (``tick``) since the chip was first started,
so tests can check that the sampler's index of every delivered sample is the chip's own count,
and that no frame is misaligned. Faults: bus outages (every call raises BusError), random bus
errors, a silent chip reset at a given time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from spinecoach.drivers.blocks import StreamInfo
from spinecoach.drivers.interfaces import AdcRead, FifoRead
from spinecoach.drivers.sim.bus import VirtualClock
from spinecoach.errors import BusError


@dataclass
class Faults:
    outages: list[tuple[float, float]] = field(default_factory=list)
    error_rate: float = 0.0
    resets: list[float] = field(default_factory=list)
    seed: int = 0


def encode_tick(tick: np.ndarray) -> np.ndarray:
    """Six int16 codes per frame from which the tick can be read back."""
    tick = np.asarray(tick, dtype=np.int64)
    out = np.empty((len(tick), 6), dtype=np.int16)
    out[:, 0] = tick & 0x3FFF
    out[:, 1] = tick >> 14
    out[:, 2] = -(tick & 0x3FFF)
    out[:, 3] = 100
    out[:, 4] = 200
    out[:, 5] = 8192
    return out


def decode_tick(raw: np.ndarray) -> np.ndarray:
    raw = raw.astype(np.int64)
    assert (raw[:, 2] == -raw[:, 0]).all() and (raw[:, 3:] == [100, 200, 8192]).all(), "misaligned"
    return raw[:, 0] + (raw[:, 1] << 14)


class _FaultyChip:
    def __init__(self, clock: VirtualClock, faults: Faults | None) -> None:
        self.clock = clock
        self.faults = faults or Faults()
        self._rng = np.random.default_rng(self.faults.seed)
        self.calls: list[tuple[str, float]] = []

    def _bus(self, what: str) -> float:
        now = self.clock.monotonic_s()
        self.calls.append((what, now))
        for start, duration in self.faults.outages:
            if start <= now < start + duration:
                raise BusError("I2C read at 0x68 failed 4 times (errno 5)")
        if self.faults.error_rate and self._rng.random() < self.faults.error_rate:
            raise BusError("I2C read at 0x68 failed 4 times (errno 121)")
        self.clock.advance(50e-6)  # every transaction costs wire time
        return now


class FakeImu(_FaultyChip):
    """A FIFO IMU. Ticks at ``t_first + k / rate``; the FIFO holds ``fifo_frames`` frames."""

    def __init__(self, clock: VirtualClock, name: str = "trunk", rate_hz: float = 1000.0,
                 fifo_frames: int = 85, faults: Faults | None = None) -> None:
        super().__init__(clock, faults)
        self._info = StreamInfo(name, "imu", rate_hz, chip="fake-imu",
                                gyro_dps_per_lsb=1 / 65.5, accel_g_per_lsb=1 / 8192)
        self.fifo_frames = fifo_frames
        self.t_first: float | None = None
        self.running = False
        self.read_tick = 0  # next tick to hand out
        self.overflowed = False
        self.starts = 0
        self._resets = sorted(self.faults.resets)
        self.reset_at: float | None = None

    @property
    def info(self) -> StreamInfo:
        return self._info

    def _tick_at(self, t: float) -> int:
        """Ticks completed by time t (tick k happens at t_first + (k + 1) / rate)."""
        assert self.t_first is not None
        return max(0, math.floor((t - self.t_first) * self._info.rate_hz + 1e-9))

    def _update(self, now: float) -> None:
        while self._resets and self._resets[0] <= now:
            at = self._resets.pop(0)
            if self.running:
                # Frames up to the reset were in the FIFO; a reset clears it and stops sampling.
                self.running = False
                self.reset_at = at
        if self.running and self._tick_at(now) - self.read_tick > self.fifo_frames:
            self.overflowed = True

    def start(self) -> None:
        now = self._bus("start")
        self.clock.advance(0.05)  # reset and wake-up delays
        now = self.clock.monotonic_s()
        if self.t_first is None:
            self.t_first = now
        self.read_tick = self._tick_at(now)
        self.running, self.overflowed, self.reset_at = True, False, None
        self.starts += 1

    def drain(self, max_frames: int | None = None) -> FifoRead:
        now = self._bus("drain")
        self._update(now)
        if not self.running:
            return FifoRead(np.empty((0, 6), dtype=np.int16))
        if self.overflowed:
            self.read_tick = self._tick_at(now)
            self.overflowed = False
            return FifoRead(np.empty((0, 6), dtype=np.int16), overflowed=True)
        top = self._tick_at(now)
        if max_frames is not None:
            top = min(top, self.read_tick + max_frames)
        raw = encode_tick(np.arange(self.read_tick, top))
        self.read_tick = top
        return FifoRead(raw)

    def check_configuration(self) -> bool:
        now = self._bus("check")
        self._update(now)
        if self.running:
            return False
        self.start()
        return True

    def close(self) -> None:
        self.running = False


class FakeAdc(_FaultyChip):
    """A polled ADC converting at ``rate_hz``; the code is the conversion's tick number."""

    def __init__(self, clock: VirtualClock, name: str = "force", rate_hz: float = 320.0,
                 faults: Faults | None = None, saturate_ticks: tuple[int, ...] = ()) -> None:
        super().__init__(clock, faults)
        self._info = StreamInfo(name, "force", rate_hz, chip="fake-adc",
                                force_n_per_count=0.5, force_offset_counts=10.0)
        self.t_first: float | None = None
        self.last_read_tick = -1
        self.running = False
        self.saturate = set(saturate_ticks)
        self._resets = sorted(self.faults.resets)
        self.reset_pending = False
        self.starts = 0

    @property
    def info(self) -> StreamInfo:
        return self._info

    def _tick_at(self, t: float) -> int:
        assert self.t_first is not None
        return math.floor((t - self.t_first) * self._info.rate_hz + 1e-9) - 1

    def start(self) -> None:
        self._bus("start")
        self.clock.advance(0.02)
        now = self.clock.monotonic_s()
        if self.t_first is None:
            self.t_first = now
        self.last_read_tick = self._tick_at(now)
        self.running = True
        self.starts += 1

    def poll(self) -> AdcRead:
        now = self._bus("poll")
        while self._resets and self._resets[0] <= now:
            self._resets.pop(0)
            self.reset_pending = True
        if self.reset_pending:
            self.reset_pending = False
            self.start()
            return AdcRead(None, reinitialised=True)
        latest = self._tick_at(now)
        if latest <= self.last_read_tick:
            return AdcRead(None)
        missed = latest - self.last_read_tick - 1
        self.last_read_tick = latest
        return AdcRead(latest, saturated=latest in self.saturate, missed=missed)

    def close(self) -> None:
        self.running = False


class StallingClock(VirtualClock):
    """A virtual clock that jumps forward once, as if the reading thread was descheduled."""

    def __init__(self, stall_at_s: float, stall_s: float) -> None:
        super().__init__()
        self.stall_at_s = stall_at_s
        self.stall_s = stall_s

    def sleep(self, seconds: float) -> None:
        before = self.monotonic_s()
        super().sleep(seconds)
        if before < self.stall_at_s <= self.monotonic_s() and self.stall_s:
            super().sleep(self.stall_s)
            self.stall_s = 0.0
