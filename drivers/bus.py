"""The I2C bus seam.

Drivers talk to an :class:`I2CBus`, a Protocol shaped like :class:`smbus2.SMBus`, so the same
driver code runs on the Pi's bus (:func:`open_bus`) and on the simulated rig
(:class:`spinecoach.drivers.sim.bus.SimBus`). :class:`RetryingBus` wraps either and retries the
transient errors an I2C bus produces on a noisy gym floor (EREMOTEIO 121: no ACK, ETIMEDOUT 110,
EIO 5) a bounded number of times before surfacing a typed :class:`~spinecoach.errors.BusError`.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from smbus2 import i2c_msg
from spinecoach.errors import BusError, NoBusError, SensorError

#: errno values that a retry can cure: no ACK (121), bus timeout (110), generic I/O error (5).
TRANSIENT_ERRNOS: frozenset[int] = frozenset({errno.EREMOTEIO, errno.ETIMEDOUT, errno.EIO})


@runtime_checkable
class I2CBus(Protocol):
    """The subset of :class:`smbus2.SMBus` the drivers use.

    ``i2c_rdwr`` carries reads longer than the 32-byte SMBus block limit (FIFO drains);
    use :func:`read_block` rather than building messages by hand.
    """

    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int]) -> None: ...

    def i2c_rdwr(self, *i2c_msgs: Any) -> None: ...

    def close(self) -> None: ...


def read_block(bus: I2CBus, i2c_addr: int, register: int, length: int) -> bytes:
    """Read ``length`` bytes starting at ``register`` in one combined transaction.

    One write of the register address, a repeated start, then one read: multi-byte samples
    are therefore coherent (the chip latches them) and a FIFO drain is a single transfer.
    A bus whose class has a ``read_block`` method (the simulated bus, :class:`RetryingBus`)
    does it its own way: the simulated bus without building smbus2 messages. A wrapper that
    only forwards attributes is served by its :meth:`i2c_rdwr`, so it sees every transfer.
    """
    own = getattr(type(bus), "read_block", None)
    if own is not None:
        return own(bus, i2c_addr, register, length)  # type: ignore[no-any-return]
    return _read_block_with_messages(bus, i2c_addr, register, length)


def _read_block_with_messages(bus: I2CBus, i2c_addr: int, register: int, length: int) -> bytes:
    key = (i2c_addr, register)
    write = _ADDRESS_WRITES.get(key)
    if write is None:
        # Write messages are never changed by a transfer: one per register is kept.
        write = _ADDRESS_WRITES[key] = i2c_msg.write(i2c_addr, [register])
    read = i2c_msg.read(i2c_addr, length)
    bus.i2c_rdwr(write, read)
    return bytes(read)


_ADDRESS_WRITES: dict[tuple[int, int], Any] = {}


def open_bus(number: int) -> I2CBus:
    """Open ``/dev/i2c-<number>`` with smbus2.

    Raises :class:`NoBusError` when the device node does not exist (I2C not enabled, or not a
    Pi) and :class:`SensorError` when it exists but cannot be opened (permissions).
    """
    path = f"/dev/i2c-{number}"
    if not os.path.exists(path):
        raise NoBusError(
            f"no I2C bus {path} on this machine: enable I2C (sudo raspi-config nonint do_i2c 0, "
            "then reboot) or use --backend sim:SCENARIO / replay:FILE"
        )
    from smbus2 import SMBus  # imported here: opening is the only place that needs the class

    try:
        return SMBus(number)
    except PermissionError as error:
        raise SensorError(
            f"cannot open {path}: permission denied; add the user to the i2c group "
            "(sudo usermod -aG i2c $USER) and log in again"
        ) from error
    except OSError as error:
        raise SensorError(f"cannot open {path}: {error.strerror}; check that I2C is enabled") from error


@dataclass
class RetryStats:
    """Counters of a :class:`RetryingBus` (transactions, not bytes)."""

    transactions: int = 0
    retries: int = 0
    failures: int = 0


class RetryingBus:
    """Wraps an :class:`I2CBus`; retries transient errors, then raises :class:`BusError`.

    ``attempts`` is the total number of tries per transaction (default 4: one try plus three
    retries). ``backoff_s`` is slept between tries via ``sleep`` (injected so the simulated
    rig's virtual clock can be used). Non-transient ``OSError`` fails at once.
    """

    def __init__(
        self,
        bus: I2CBus,
        attempts: int = 4,
        backoff_s: float = 0.0002,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self._bus = bus
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._sleep = sleep
        self.stats = RetryStats()
        # Whether the wrapped bus reads blocks its own way (see :func:`read_block`).
        self._inner_reads_blocks = getattr(type(bus), "read_block", None) is not None

    @property
    def inner(self) -> I2CBus:
        """The wrapped bus."""
        return self._bus

    # Every transaction is tried once inline (no loop, no extra call: the sampler makes over a
    # thousand a second) and only a failure goes through :meth:`_retry`.
    def _call(self, what: str, i2c_addr: int, fn: Callable[..., Any], *args: Any) -> Any:
        self.stats.transactions += 1
        try:
            return fn(*args)
        except OSError as error:
            return self._retry(error, what, i2c_addr, fn, *args)

    def _retry(
        self, first: OSError, what: str, i2c_addr: int, fn: Callable[..., Any], *args: Any
    ) -> Any:
        """The rest of a transaction whose first try failed with ``first``."""
        error = first
        attempt = 0
        while True:
            if error.errno not in TRANSIENT_ERRNOS:
                self.stats.failures += 1
                raise BusError(
                    f"I2C {what} at 0x{i2c_addr:02X} failed: {error.strerror or error}; "
                    "check the wiring and the address"
                ) from error
            attempt += 1
            if attempt >= self._attempts:
                break
            self.stats.retries += 1
            if self._backoff_s > 0:
                self._sleep(self._backoff_s * attempt)
            try:
                return fn(*args)
            except OSError as again:
                error = again
        self.stats.failures += 1
        raise BusError(
            f"I2C {what} at 0x{i2c_addr:02X} failed {self._attempts} times "
            f"(errno {error.errno}: {os.strerror(error.errno or 0)}); check the cable, "
            "the pull-ups and the bus speed"
        ) from error

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        self.stats.transactions += 1
        fn = self._bus.read_byte_data
        try:
            return int(fn(i2c_addr, register))
        except OSError as error:
            return int(self._retry(error, "read", i2c_addr, fn, i2c_addr, register))

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        self._call("write", i2c_addr, self._bus.write_byte_data, i2c_addr, register, value)

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        self.stats.transactions += 1
        fn = self._bus.read_i2c_block_data
        try:
            return list(fn(i2c_addr, register, length))
        except OSError as error:
            return list(self._retry(error, "block read", i2c_addr, fn, i2c_addr, register, length))

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int]) -> None:
        self._call(
            "block write", i2c_addr, self._bus.write_i2c_block_data, i2c_addr, register, data
        )

    def i2c_rdwr(self, *i2c_msgs: Any) -> None:
        addr = int(i2c_msgs[0].addr) if i2c_msgs else 0
        self._call("combined transfer", addr, self._bus.i2c_rdwr, *i2c_msgs)

    def read_block(self, i2c_addr: int, register: int, length: int) -> bytes:
        """:func:`read_block` through the retries (one combined transfer per try)."""
        if not self._inner_reads_blocks:
            return _read_block_with_messages(self, i2c_addr, register, length)
        self.stats.transactions += 1
        fn = self._bus.read_block  # type: ignore[attr-defined]
        try:
            return bytes(fn(i2c_addr, register, length))
        except OSError as error:
            return bytes(
                self._retry(error, "combined transfer", i2c_addr, fn, i2c_addr, register, length)
            )

    def close(self) -> None:
        self._bus.close()
