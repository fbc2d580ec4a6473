"""The haptic buzzer: a coin ERM vibration motor on a GPIO PWM pin, through gpiozero.

A pattern is a list of (duty 0..1, duration_s) steps played by a worker thread; after the last
step the motor is off. :meth:`Buzzer.play` returns at once with the monotonic time the command
was issued, so cue latency can be measured downstream. A new pattern pre-empts the one playing.

The motor is never left on: off after every pattern, on :meth:`Buzzer.close`, when the pattern
thread fails (the error is kept in :attr:`Buzzer.error`) and at interpreter exit (atexit).

Patterns (what the coach uses each for):

========= ===================================================== =================================
name      steps (duty, s)                                       meaning
========= ===================================================== =================================
tick      (1.0, 0.04)                                           rep counted, phase boundary
double    (1.0, 0.05) (0, 0.08) (1.0, 0.05)                     hold started / hold complete
long      (1.0, 0.40)                                           set complete, band lost
warning   (1.0, 0.12) (0, 0.08) × 3, the last off omitted       spinal limit passed, lowering
                                                                too fast
ramp      (0.3, 0.1) (0.55, 0.1) (0.8, 0.1) (1.0, 0.1)          countdown to the end of a hold
========= ===================================================== =================================

Pulses are at least 40 ms because a coin ERM needs about that long to spin up and be felt;
the ramp starts at 30 % duty, about where such motors start turning.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Self

from gpiozero import PWMOutputDevice
from gpiozero.exc import BadPinFactory, GPIOZeroError
from spinecoach.errors import SensorError, SpinecoachError

HapticStep = tuple[float, float]
"""One step of a pattern: (duty 0..1, duration_s)."""

#: BCM pin of the motor's MOSFET gate (hardware PWM0, physical pin 12; see hardware.md).
DEFAULT_PIN = 18
#: PWM frequency (Hz): smooth on an ERM, inaudible hum at most.
DEFAULT_FREQUENCY_HZ = 200.0

PATTERNS: Mapping[str, tuple[HapticStep, ...]] = {
    "tick": ((1.0, 0.04),),
    "double": ((1.0, 0.05), (0.0, 0.08), (1.0, 0.05)),
    "long": ((1.0, 0.40),),
    "warning": ((1.0, 0.12), (0.0, 0.08), (1.0, 0.12), (0.0, 0.08), (1.0, 0.12)),
    "ramp": ((0.3, 0.1), (0.55, 0.1), (0.8, 0.1), (1.0, 0.1)),
}


class UnknownPatternError(SpinecoachError, ValueError):
    """A haptic pattern name that is not defined."""


class BuzzerUnavailable(SensorError):
    """The motor's GPIO pin cannot be driven (no GPIO on this machine, pin in use)."""


def validate_patterns(
    patterns: Mapping[str, Sequence[HapticStep]],
) -> dict[str, tuple[HapticStep, ...]]:
    """Check every step (duty in 0..1, duration > 0); return the patterns as tuples."""
    checked: dict[str, tuple[HapticStep, ...]] = {}
    for name, steps in patterns.items():
        if not steps:
            raise ValueError(f"haptic pattern {name!r} has no steps")
        for duty, duration_s in steps:
            if not 0.0 <= duty <= 1.0 or duration_s <= 0:
                raise ValueError(
                    f"haptic pattern {name!r}: step ({duty}, {duration_s}) needs duty 0..1 and "
                    "a positive duration"
                )
        checked[name] = tuple((float(d), float(s)) for d, s in steps)
    return checked


class Buzzer:
    """A vibration motor on BCM ``pin`` playing named patterns without blocking.

    ``pin_factory`` is gpiozero's pin factory (None: gpiozero's default; tests pass a
    ``MockFactory(pin_class=MockPWMPin)``).
    """

    def __init__(
        self,
        pin: int = DEFAULT_PIN,
        pin_factory: Any = None,
        frequency_hz: float = DEFAULT_FREQUENCY_HZ,
        patterns: Mapping[str, Sequence[HapticStep]] = PATTERNS,
    ) -> None:
        self.patterns = validate_patterns(patterns)
        try:
            self._device = PWMOutputDevice(
                pin, initial_value=0.0, frequency=frequency_hz, pin_factory=pin_factory
            )
        except BadPinFactory as error:
            raise BuzzerUnavailable(
                f"no GPIO on this machine for the buzzer ({error}): run on a Raspberry Pi with "
                "lgpio installed, or without the buzzer"
            ) from error
        except GPIOZeroError as error:
            raise BuzzerUnavailable(
                f"cannot drive BCM pin {pin} for the buzzer ({error}): check the pin number and "
                "that no other program uses it"
            ) from error
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._request: tuple[str, float] | None = None
        self._closing = False
        self._playing: str | None = None
        #: The exception that stopped the pattern thread, if any (the motor was switched off).
        self.error: BaseException | None = None
        #: (name, issued_s, onset_s) of the latest pattern that reached the pin: the monotonic
        #: times play() was called and its first step was driven (cue latency = the difference).
        self.last_onset: tuple[str, float, float] | None = None
        self._issued_s = 0.0
        self._thread = threading.Thread(target=self._run, name="buzzer", daemon=True)
        self._thread.start()
        # A weak reference: registering the bound method would keep every buzzer alive.
        reference = weakref.ref(self)
        self._atexit = lambda: _close_if_alive(reference)
        atexit.register(self._atexit)

    # -- public -----------------------------------------------------------------------------
    def play(self, name: str) -> float:
        """Start pattern ``name`` (pre-empting any other); return the issue time (monotonic s)."""
        if name not in self.patterns:
            raise UnknownPatternError(
                f"no haptic pattern {name!r}: use one of {', '.join(self.patterns)}"
            )
        issued_s = time.monotonic()
        with self._lock:
            if self._closing:
                raise SpinecoachError("the buzzer is closed: create a new Buzzer to play patterns")
            if self.error is not None:
                raise SpinecoachError(
                    f"the buzzer stopped after an error ({self.error}); check the motor pin"
                )
            self._request = (name, issued_s)
        self._wake.set()
        return issued_s

    def stop(self) -> None:
        """Cancel the pattern playing, if any; the motor goes off."""
        with self._lock:
            self._request = ("", time.monotonic())
        self._wake.set()

    @property
    def playing(self) -> str | None:
        """Name of the pattern playing now, None when idle."""
        return self._playing

    @property
    def value(self) -> float:
        """Current motor duty (0 = off)."""
        return float(self._device.value)

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Wait until no pattern is queued or playing; True if idle within ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._request is not None or self._playing is not None:
            if not self._thread.is_alive():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True

    def close(self) -> None:
        """Stop the thread and switch the motor off; safe to call more than once."""
        with self._lock:
            already = self._closing
            self._closing = True
        self._wake.set()
        if not already:
            atexit.unregister(self._atexit)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        if not self._device.closed:
            self._off()
            self._device.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pattern thread ---------------------------------------------------------------------
    def _off(self) -> None:
        self._device.value = 0.0

    def _take_request(self) -> str | None:
        with self._lock:
            request = self._request
            # Marked playing before the request is cleared, so wait_idle() never sees a gap.
            if request is not None and request[0]:
                self._playing = request[0]
                self._issued_s = request[1]
            self._request = None
        self._wake.clear()
        if self._request is not None:  # a play() raced the clear: keep its wake-up
            self._wake.set()
        return None if request is None else request[0]

    def _run(self) -> None:
        try:
            while not self._closing:
                self._wake.wait()
                name = self._take_request()
                while name and not self._closing:
                    name = self._play_steps(name)
                # Also after stop() or a pre-emption that ended the chain: motor off.
                self._off()
                self._playing = None
        except Exception as error:  # noqa: BLE001 - kept for the owner; the motor goes off below
            self.error = error
        finally:
            self._playing = None
            # The device may already be closed (interpreter exit): nothing left to switch.
            with contextlib.suppress(Exception):
                self._off()

    def _play_steps(self, name: str) -> str | None:
        """Play one pattern; return the name of a pattern that pre-empted it, if any."""
        self._playing = name
        end_s = time.monotonic()
        for step, (duty, duration_s) in enumerate(self.patterns[name]):
            self._device.value = duty
            if step == 0:
                self.last_onset = (name, self._issued_s, time.monotonic())
            # Deadlines from the pattern's start, so scheduling delays do not accumulate.
            end_s += duration_s
            if self._wake.wait(max(0.0, end_s - time.monotonic())):
                if self._closing:
                    return None
                return self._take_request()
        self._off()
        self._playing = None
        return None


def _close_if_alive(reference: weakref.ref[Buzzer]) -> None:
    buzzer = reference()
    if buzzer is not None:
        buzzer.close()
