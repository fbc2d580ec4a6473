"""Helpers shared by the IMU driver tests: test signals and the reference quantisation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.blocks import StreamInfo
from spinecoach.drivers.interfaces import FifoRead

FloatArray = npt.NDArray[np.float64]


def moving_signal(t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Every axis different and changing fast enough that a byte or axis shift shows."""
    two_pi_t = 2 * np.pi * t_s
    gyro = np.column_stack(
        (
            300 * np.sin(3.1 * two_pi_t),
            250 * np.cos(1.7 * two_pi_t + 0.3),
            180 * np.sin(7.3 * two_pi_t) - 40,
        )
    )
    accel = np.column_stack(
        (
            0.9 * np.sin(2.3 * two_pi_t),
            0.7 * np.cos(0.9 * two_pi_t) + 0.1,
            1 + 0.5 * np.sin(5.1 * two_pi_t),
        )
    )
    return gyro, accel


def expected_codes(
    signal: Callable[[FloatArray], tuple[FloatArray, FloatArray]], t_s: FloatArray, info: StreamInfo
) -> npt.NDArray[np.int64]:
    """gx gy gz ax ay az codes a chip with ``info``'s scales gives for ``signal`` at ``t_s``."""
    gyro, accel = signal(t_s)
    codes = np.column_stack((gyro / info.gyro_dps_per_lsb, accel / info.accel_g_per_lsb))
    return np.clip(np.rint(codes), -32768, 32767).astype(np.int64)


def table_signal(
    table: FloatArray, gyro_full_scale_dps: float, accel_full_scale_g: float
) -> Callable[[FloatArray], tuple[FloatArray, FloatArray]]:
    """A signal that shows row ``round(t_s * 1e5) % len(table)`` of ``table`` (fractions of
    full scale: gx gy gz ax ay az) at each time: arbitrary values, reproducible from t alone."""

    def signal(t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        rows = table[np.rint(t_s * 1e5).astype(np.int64) % table.shape[0]]
        return rows[:, :3] * gyro_full_scale_dps, rows[:, 3:] * accel_full_scale_g

    return signal


class StreamingDriver(Protocol):
    @property
    def info(self) -> StreamInfo: ...

    @property
    def fifo_started_s(self) -> float: ...


class FrameChecker:
    """Compares every delivered frame with ``signal`` at its sample time.

    A run starts at the driver's ``fifo_started_s``; frame k of the run was sampled at
    ``fifo_started_s + k / rate``. Counts the frames that differ by more than one LSB.
    """

    def __init__(
        self,
        driver: StreamingDriver,
        signal: Callable[[FloatArray], tuple[FloatArray, FloatArray]] = moving_signal,
    ) -> None:
        self.driver = driver
        self.signal = signal
        self.run_start_s = driver.fifo_started_s
        self.k = 0
        self.frames = 0
        self.misaligned = 0

    def check(self, read: FifoRead) -> None:
        if read.overflowed or read.reinitialised:
            assert read.raw.shape == (0, 6)
            self.run_start_s = self.driver.fifo_started_s
            self.k = 0
            return
        n = read.raw.shape[0]
        if n == 0:
            return
        info = self.driver.info
        t_s = self.run_start_s + np.arange(self.k, self.k + n) / info.rate_hz
        wrong = np.abs(read.raw.astype(np.int64) - expected_codes(self.signal, t_s, info)) > 1
        self.misaligned += int(wrong.any(axis=1).sum())
        self.k += n
        self.frames += n


def assert_si_within_one_lsb(
    raw: npt.NDArray[np.int16], truth: tuple[FloatArray, FloatArray], info: StreamInfo
) -> None:
    """Codes converted with ``info``'s scales are the truth within one LSB; values beyond full
    scale are saturated codes (and some must be present)."""
    for codes, true, lsb in (
        (raw[:, :3], truth[0], info.gyro_dps_per_lsb),
        (raw[:, 3:], truth[1], info.accel_g_per_lsb),
    ):
        inside = np.abs(true) < 32767 * lsb
        assert np.all(np.abs(codes * lsb - true)[inside] <= lsb)
        assert set(np.unique(codes[~inside]).tolist()) <= {-32768, 32767}
        assert (~inside).any()


class FrameReadHook:
    """Wraps a simulated bus; runs ``action()`` before the next FIFO data read at
    ``data_register`` once armed (a stall, a failure)."""

    def __init__(self, bus: Any, data_register: int, action: Callable[[], None]) -> None:
        self.bus = bus
        self.data_register = data_register
        self.action = action
        self.armed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bus, name)

    def i2c_rdwr(self, *msgs: Any) -> None:
        if self.armed and not msgs[0].flags and bytes(msgs[0])[0] == self.data_register:
            self.armed = False
            self.action()
        self.bus.i2c_rdwr(*msgs)
