"""What the sampler needs from a chip driver, independent of the chip.

The MPU-6050 and the LSM6DSOX both implement :class:`ImuDriver`; the NAU7802 implements
:class:`ForceDriver`. Drivers know chips and signals, nothing of exercises, and never read the
wall clock themselves: the time base belongs to the bus owner (a :class:`Clock`), as gpiozero's
pin factory owns its clock, so the simulated rig can run faster than real time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.blocks import StreamInfo


class Clock(Protocol):
    """Monotonic time source of a backend (s). Hardware: ``time.monotonic``; sim: virtual."""

    def monotonic_s(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class FifoRead:
    """Result of one FIFO drain.

    ``raw`` (int16, n×6): whole frames only, gx gy gz ax ay az codes in chip axes.
    ``overflowed``: the FIFO had overflowed; the driver has reset it and the frames it held are
    discarded (their order cannot be trusted), so ``raw`` is empty and the caller records a gap
    from its clock. ``reinitialised``: the driver found the chip reset (configuration read back
    wrong) and configured it again; the caller records a ``chip_reset`` gap.
    """

    raw: npt.NDArray[np.int16]
    overflowed: bool = False
    reinitialised: bool = False


@dataclass(frozen=True)
class AdcRead:
    """Result of one load-cell poll: 0 or 1 new conversion.

    ``code`` is the signed 24-bit value or None when no conversion was ready; ``saturated``
    marks a code at the rails (invalid); ``reinitialised`` that the chip was found reset (the
    tare is stale). ``missed``: conversions the chip completed since the previous delivered one
    that were overwritten before they could be read (the ADC has no FIFO), estimated by the
    driver from its clock (totals exact when polled every half period or faster; right after a
    stall one skipped conversion may be booked on the following read); the caller counts them
    in a ``missed_conversion`` gap.
    """

    code: int | None
    saturated: bool = False
    reinitialised: bool = False
    missed: int = 0


class ImuDriver(Protocol):
    """A 6-axis IMU with a FIFO."""

    @property
    def info(self) -> StreamInfo: ...

    def start(self) -> None:
        """Reset, check identity, configure ranges/DLPF/rate, enable and clear the FIFO."""

    def drain(self, max_frames: int | None = None) -> FifoRead:
        """Read all whole frames in the FIFO in as few transfers as possible (at most
        ``max_frames`` when given: a bounded transfer on a shared bus)."""

    def check_configuration(self) -> bool:
        """Read configuration back; on a silent reset re-initialise and return True."""

    def close(self) -> None:
        """Put the chip to sleep; never raises on an absent chip."""


class ForceDriver(Protocol):
    """A load-cell ADC polled for conversions."""

    @property
    def info(self) -> StreamInfo: ...

    def start(self) -> None:
        """Power up, configure LDO/gain/rate, run the internal calibration."""

    def poll(self) -> AdcRead:
        """Return the next conversion if one is ready (one block read of the 24-bit value)."""

    def close(self) -> None:
        """Power the chip down; never raises on an absent chip."""
