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
    Each byte costs 9 clocks (8 data + ACK); each message adds a start/stop (2 clocks).
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
        self.closed = False

    def attach(self, chip: SimChip) -> None:
        """Connect a chip simulator at its address."""
        self._chips[chip.address] = chip

    def chip(self, address: int) -> SimChip:
        """The simulator at ``address`` (KeyError if none)."""
        return self._chips[address]

    # -- fault machinery -------------------------------------------------------------------
    def _before_transfer(self, address: int, n_bytes: int) -> SimChip:
        now = self.clock.monotonic_s()
        while self._stalls and self._stalls[0][0] <= now:
            _, duration_s = self._stalls.pop(0)
            self.clock.advance(duration_s)
            now = self.clock.monotonic_s()
        while self._events and self._events[0][0] <= now:
            _, _, callback = heapq.heappop(self._events)
            callback(now)
        wire_s = (n_bytes * 9 + 2) / self.bus_hz
        self.counters.transactions += 1
        self.counters.bytes_on_wire += n_bytes
        self.counters.wire_time_s += wire_s
        self.clock.advance(wire_s)
        for start_s, duration_s in self.faults.outages:
            if start_s <= now < start_s + duration_s:
                self._raise(errno.EIO)
        unplugged_at = self.faults.unplugged.get(address)
        chip = self._chips.get(address)
        if chip is None or (unplugged_at is not None and now >= unplugged_at):
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        for code, rate in self.faults.error_rates.items():
            if rate > 0 and self._rng.random() < rate:
                self._raise(code)
        return chip

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
