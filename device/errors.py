"""One error hierarchy for the whole product.

Every error a user can cause or fix derives from :class:`SpinecoachError`; subclasses also
inherit the builtin they resemble so callers can catch either (``SensorTimeout`` is a
``TimeoutError`` too). Messages say what is wrong *and what to do*: the command line prints
``str(error)`` as one line and exits with :attr:`SpinecoachError.exit_status`.
"""

from __future__ import annotations

import os


class SpinecoachError(Exception):
    """Base of every error the product raises on purpose."""

    #: Process exit status the command line uses for this error (sysexits.h numbers).
    exit_status: int = 1


class UsageError(SpinecoachError, ValueError):
    """A command-line argument that cannot be used (EX_USAGE)."""

    exit_status = os.EX_USAGE if hasattr(os, "EX_USAGE") else 64


class ConfigError(SpinecoachError, ValueError):
    """A configuration key with a bad value; systemd must not restart on it (EX_CONFIG=78)."""

    exit_status = 78


class DataFormatError(SpinecoachError, ValueError):
    """A malformed recording, CSV or exercise file (EX_DATAERR)."""

    exit_status = 65


class StorageError(SpinecoachError, OSError):
    """The state directory or an output file cannot be written (disk full, read-only) (EX_CANTCREAT)."""

    exit_status = 73


class SensorError(SpinecoachError, OSError):
    """A sensor or bus problem that the user fixes with wiring or configuration (EX_UNAVAILABLE)."""

    exit_status = 69


class BusError(SensorError):
    """An I2C transfer failed after the bounded retries."""


class SensorTimeout(SensorError, TimeoutError):
    """A chip did not answer (ready bit, power-up, calibration) within its time limit."""


class WrongChipError(SensorError):
    """A chip answered with an unexpected identity register (WHO_AM_I / revision)."""


class ChipResetDetected(SensorError):
    """A chip lost its configuration (brown-out or reset) and was re-initialised."""


class NoBusError(SensorError, FileNotFoundError):
    """This machine has no I2C bus device (/dev/i2c-N)."""
