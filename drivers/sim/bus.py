"""A simulated I2C bus: routes transfers to register-level chip simulators.

The real drivers run unchanged against it. It owns the virtual clock (every transfer advances
it by its wire time at the configured bus speed), counts bytes and transactions, and injects
faults: random transient errors (errno 121/110/5), bus outages, unplugged chips, reader stalls
(the clock jumps as if the reading thread had been descheduled) and scheduled chip events
(e.g. a silent power-on reset).
"""

from __future__ import annotations

import ctypes
import errno
import heapq
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

#: smbus2's read flag on an i2c_msg.
I2C_M_RD = 0x0001


class SimChip(Protocol):
    """A chip simulator at one 7-bit address.

    The chip advances its internal state (sampling, FIFO, conversions) lazily to ``now_s`` on
    every access. Register auto-increment rules are the chip's own.
    """

    address: int

    def write(self, register: int, data: bytes, now_s: float) -> None: ...

    def read(self, register: int, length: int, now_s: float) -> bytes: ...


class VirtualClock:
    """Monotonic virtual time (s); ``sleep`` advances it instantly."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._now_s = start_s

    def monotonic_s(self) -> float:
        return self._now_s

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._now_s += seconds

    def advance(self, seconds: float) -> None:
        """Move time forward (s) without a sleep call (wire time, stalls)."""
        self.sleep(seconds)


@dataclass
class FaultPlan:
    """Faults to inject, all in virtual time (s).

    ``error_rates``: errno -> probability per transaction (e.g. ``{121: 0.01, 110: 0.001}``).
    ``outages``: (start_s, duration_s) windows in which every transfer fails with EIO.
    ``unplugged``: address -> time from which the chip no longer ACKs (errno 121).
    ``stalls``: (at_s, duration_s): the first transfer at or after ``at_s`` finds the clock
    jumped forward by ``duration_s`` (the reader was descheduled).
    ``chip_events``: (at_s, callback(now_s)) run once before the first transfer at or after
    ``at_s`` (e.g. a chip's silent reset).
    """

    error_rates: dict[int, float] = field(default_factory=dict)
    outages: list[tuple[float, float]] = field(default_factory=list)
    unplugged: dict[int, float] = field(default_factory=dict)
    stalls: list[tuple[float, float]] = field(default_factory=list)
    chip_events: list[tuple[float, Callable[[float], None]]] = field(default_factory=list)
    seed: int = 0


@dataclass
class BusCounters:
    """Traffic on the simulated wire."""

    transactions: int = 0
    bytes_on_wire: int = 0
    wire_time_s: float = 0.0
    injected_errors: dict[int, int] = field(default_factory=dict)


class SimBus:
    """An :class:`~spinecoach.drivers.bus.I2CBus` backed by chip simulators.

    ``bus_hz`` is the SCL frequency used for wire-time accounting (400 kHz fast mode).
    Each byte costs 9 clocks (8 data + ACK); each message adds a start/stop (2 clocks). A
    transfer that no chip acknowledges (errno 121: an unplugged chip, or an injected NACK)
    ends after its address byte and costs that byte only, as on a real bus; the other
    injected errors (110, 5) and outages cost the whole transfer.

    Injected errors are drawn per transaction, independently per errno in the order of
    ``error_rates``, as runs of clean transactions between errors (geometric, in batches):
    the same faults for the same seed, at a small fixed cost per transaction.
    """

    def __init__(
        self,
        chips: Sequence[SimChip] = (),
        clock: VirtualClock | None = None,
        faults: FaultPlan | None = None,
        bus_hz: float = 400_000.0,
    ) -> None:
        self.clock = clock or VirtualClock()
        self.faults = faults or FaultPlan()
        self.bus_hz = bus_hz
        self.counters = BusCounters()
        self._chips: dict[int, SimChip] = {}
        for chip in chips:
            self.attach(chip)
        self._rng = np.random.default_rng(self.faults.seed)
        self._tiebreak = itertools.count()
        self._events: list[tuple[float, int, Callable[[float], None]]] = []
        for at_s, callback in self.faults.chip_events:
            heapq.heappush(self._events, (at_s, next(self._tiebreak), callback))
        self._stalls = sorted(self.faults.stalls)
        self._next_timed_s = self._next_timed_fault_s()
        self._wire_s_per_byte = 9.0 / bus_hz
        self._wire_s_per_transfer = 2.0 / bus_hz
        # Errors: P(errno c) = rate_c * prod(1 - earlier rates), as if each were drawn in turn.
        codes, weights, clean = [], [], 1.0
        for code, rate in self.faults.error_rates.items():
            if rate > 0:
                codes.append(code)
                weights.append(clean * min(rate, 1.0))
                clean *= 1.0 - min(rate, 1.0)
        self._error_codes = codes
        self._error_p = 1.0 - clean
        self._error_weights = np.array(weights) / self._error_p if codes else np.empty(0)
        self._error_runs: list[tuple[int, int]] = []
        self._clean_left = self._draw_error_run() if codes else -1
        self.closed = False

    def attach(self, chip: SimChip) -> None:
        """Connect a chip simulator at its address."""
        self._chips[chip.address] = chip

    def chip(self, address: int) -> SimChip:
        """The simulator at ``address`` (KeyError if none)."""
        return self._chips[address]

    # -- fault machinery -------------------------------------------------------------------
    def _next_timed_fault_s(self) -> float:
        times = [self._stalls[0][0]] if self._stalls else []
        if self._events:
            times.append(self._events[0][0])
        return min(times, default=math.inf)

    def _timed_faults(self, now: float) -> float:
        """Stalls and chip events due by ``now``; returns the (possibly jumped) time."""
        while self._stalls and self._stalls[0][0] <= now:
            _, duration_s = self._stalls.pop(0)
            self.clock.advance(duration_s)
            now = self.clock.monotonic_s()
        while self._events and self._events[0][0] <= now:
            _, _, callback = heapq.heappop(self._events)
            callback(now)
        self._next_timed_s = self._next_timed_fault_s()
        return now

    def _draw_error_run(self) -> int:
        """Clean transactions before the next injected error (whose errno is queued)."""
        if not self._error_runs:
            n = 256
            runs = self._rng.geometric(self._error_p, size=n) - 1
            picks = self._rng.choice(len(self._error_codes), size=n, p=self._error_weights)
            self._error_runs = [
                (int(run), self._error_codes[int(pick)])
                for run, pick in zip(runs[::-1], picks[::-1], strict=True)
            ]
        run, self._next_error = self._error_runs.pop()
        return run

    def _before_transfer(self, address: int, n_bytes: int) -> SimChip:
        clock = self.clock
        now = clock.monotonic_s()
        if now >= self._next_timed_s:
            now = self._timed_faults(now)
        faults = self.faults
        chip = self._chips.get(address)
        if chip is None or faults.outages or faults.unplugged or self._clean_left >= 0:
            return self._faulty_transfer(chip, address, n_bytes, now)
        # Nothing to inject (the usual case): only the wire time and the counters.
        wire_s = n_bytes * self._wire_s_per_byte + self._wire_s_per_transfer
        counters = self.counters
        counters.transactions += 1
        counters.bytes_on_wire += n_bytes
        counters.wire_time_s += wire_s
        clock.sleep(wire_s)  # what ``advance`` does, one call fewer
        return chip

    def _faulty_transfer(
        self, chip: SimChip | None, address: int, n_bytes: int, now: float
    ) -> SimChip:
        """:meth:`_before_transfer` when a fault may strike: outages, unplugged chips, an
        absent address, injected errors."""
        code = 0
        faults = self.faults
        if faults.outages:
            for start_s, duration_s in faults.outages:
                if start_s <= now < start_s + duration_s:
                    code = errno.EIO
        if not code and (chip is None or faults.unplugged):
            unplugged_at = faults.unplugged.get(address)
            if chip is None or (unplugged_at is not None and now >= unplugged_at):
                code = -errno.EREMOTEIO  # not injected: nobody answers at the address
        clean_left = self._clean_left
        if clean_left > 0:
            self._clean_left = clean_left - 1
        elif clean_left == 0:
            # One draw per transaction, so the sequence of faults does not depend on the others.
            code = code or self._next_error
            self._clean_left = self._draw_error_run()
        if code == errno.EREMOTEIO or code == -errno.EREMOTEIO:
            n_bytes = 1  # no ACK for the address byte: the master stops there
        counters = self.counters
        wire_s = n_bytes * self._wire_s_per_byte + self._wire_s_per_transfer
        counters.transactions += 1
        counters.bytes_on_wire += n_bytes
        counters.wire_time_s += wire_s
        self.clock.advance(wire_s)
        if code:
            if code < 0:
                raise OSError(errno.EREMOTEIO, "Remote I/O error")
            self._raise(code)
        return chip  # type: ignore[return-value]

    def _raise(self, code: int) -> None:
        self.counters.injected_errors[code] = self.counters.injected_errors.get(code, 0) + 1
        raise OSError(code, errno.errorcode.get(code, "error"))

    # -- smbus2-shaped API -----------------------------------------------------------------
    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        chip = self._before_transfer(i2c_addr, 4)
        return chip.read(register, 1, self.clock.monotonic_s())[0]

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        chip = self._before_transfer(i2c_addr, 3)
        chip.write(register, bytes([value & 0xFF]), self.clock.monotonic_s())

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        if length > 32:
            raise ValueError("SMBus block reads are limited to 32 bytes; use i2c_rdwr")
        chip = self._before_transfer(i2c_addr, 3 + length)
        return list(chip.read(register, length, self.clock.monotonic_s()))

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int]) -> None:
        chip = self._before_transfer(i2c_addr, 2 + len(data))
        chip.write(register, bytes(int(b) & 0xFF for b in data), self.clock.monotonic_s())

    def read_block(self, i2c_addr: int, register: int, length: int) -> bytes:
        """What :func:`~spinecoach.drivers.bus.read_block` does over :meth:`i2c_rdwr` (the same
        transfer, chip access and wire time), without building smbus2 messages."""
        chip = self._before_transfer(i2c_addr, length + 3)
        data = chip.read(register, length, self.clock.monotonic_s())
        return bytes(data[:length])

    def i2c_rdwr(self, *i2c_msgs: Any) -> None:
        """Combined transfer: a write of the register address then reads/writes of data."""
        if not i2c_msgs:
            return
        address = int(i2c_msgs[0].addr)
        total = sum(int(m.len) + 1 for m in i2c_msgs)
        chip = self._before_transfer(address, total)
        register: int | None = None
        for msg in i2c_msgs:
            if msg.flags & I2C_M_RD:
                if register is None:
                    raise OSError(errno.EINVAL, "read without a register address")
                data = chip.read(register, int(msg.len), self.clock.monotonic_s())
                # One memmove instead of a Python loop per byte: FIFO drains are long reads.
                ctypes.memmove(msg.buf, bytes(data[: int(msg.len)]), min(len(data), int(msg.len)))
            else:
                payload = bytes(msg)
                register = payload[0]
                if len(payload) > 1:
                    chip.write(register, payload[1:], self.clock.monotonic_s())

    def close(self) -> None:
        self.closed = True
