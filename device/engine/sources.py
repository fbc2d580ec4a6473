"""Where a session's samples and buzzer come from, per backend.

Samples: :func:`spinecoach.acquisition.source.open_source` (hardware chips, a simulated rig, or a
replayed recording). Buzzer: the vibration motor on its GPIO pin for ``hardware``; for ``sim``
and ``replay`` the same :class:`~spinecoach.drivers.buzzer.Buzzer` code on gpiozero's mock pins,
so the cue path (and its latency) is exercised exactly as on the device.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from spinecoach.backend import Backend
from spinecoach.config import Config
from spinecoach.drivers.blocks import Block, StreamInfo

if TYPE_CHECKING:
    from spinecoach.rig_calibration import CalibrationRecord


@contextmanager
def open_blocks(
    backend: Backend, realtime: bool = False, calibration: CalibrationRecord | None = None
) -> Iterator[tuple[list[StreamInfo], Iterator[Block]]]:
    """The stream table and the block iterator of ``backend``; the source is closed after.

    ``realtime`` paces a simulated rig or a replay to the wall clock (hardware always is).
    ``calibration``: a stored calibration record to put in force on the sensors (see
    :func:`spinecoach.calibration_steps.put_in_force`; the stream table then carries it).
    """
    from spinecoach.acquisition.source import open_source

    with open_source(backend, realtime=realtime) as source:
        for note in getattr(source, "notes", []):
            print(f"spinecoach: {note}", flush=True)
        blocks = source.blocks()  # starts the chips: the stream table is final after this
        if calibration is not None:
            from spinecoach.calibration_steps import put_in_force

            yield put_in_force(calibration, source), iter(blocks)
            return
        yield list(source.streams), iter(blocks)


def make_haptics(backend: Backend, config: Config) -> Any:
    """The buzzer for ``backend``, or None when haptics are switched off in the configuration."""
    if not config.get("coaching", "haptics"):
        return None
    from spinecoach.drivers.buzzer import Buzzer

    if backend.kind == "hardware":
        return Buzzer()
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    return Buzzer(pin_factory=MockFactory(pin_class=MockPWMPin))
