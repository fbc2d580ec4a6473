"""The haptic buzzer on gpiozero's mock pins: full pin-state timelines, pre-emption, safety."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin
from spinecoach.drivers.buzzer import PATTERNS, Buzzer, BuzzerUnavailable, UnknownPatternError
from spinecoach.errors import SpinecoachError

PIN = 18
#: Thread scheduling on a loaded 2-core CI machine: each interval within this of its target.
#: Thread scheduling on a loaded 2-core CI machine: a transition may come this late, never
#: earlier than EARLY_S before its time (the worker waits for absolute deadlines).
LATE_S = 0.06
EARLY_S = 0.002


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    factory = MockFactory(pin_class=MockPWMPin)
    yield factory
    factory.reset()


def timeline(steps: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Expected pin.states for a pattern started right after clear_states: (interval_s, duty).

    Each entry's interval is the time since the previous change, as gpiozero records it.
    Consecutive steps with the same duty make no change on the pin.
    """
    expected = [(0.0, 0.0)]
    pending_s = 0.0
    for duty, duration_s in [*steps, (0.0, 0.0)]:
        if duty != expected[-1][1]:
            expected.append((pending_s, duty))
            pending_s = 0.0
        pending_s += duration_s
    return expected


def assert_timeline(pin: MockPWMPin, expected: list[tuple[float, float]]) -> None:
    """The pin went through exactly the expected duties, each change on time.

    Times are compared from the first change on (gpiozero records intervals; their running sum
    is the time since the motor came on): never early, at most ``LATE_S`` late, so a step is
    never cut short and scheduling delays do not pile up.
    """
    actual = [(state.timestamp, float(state.state)) for state in pin.states]
    assert [duty for _, duty in actual] == [duty for _, duty in expected], actual
    assert actual[0][0] == 0.0
    if len(actual) > 1:
        assert actual[1][0] <= LATE_S, actual  # motor on soon after the command
    actual_at = np.cumsum([interval for interval, _ in actual[2:]])
    expected_at = np.cumsum([interval for interval, _ in expected[2:]])
    assert np.all(actual_at >= expected_at - EARLY_S), (actual, expected)
    assert np.all(actual_at <= expected_at + LATE_S), (actual, expected)


def sleep_after_onset(buzzer: Buzzer, seconds: float) -> None:
    """Sleep until ``seconds`` after the playing pattern drove its first step."""
    deadline = time.monotonic() + 2.0
    while buzzer.last_onset is None and time.monotonic() < deadline:
        time.sleep(0.001)
    assert buzzer.last_onset is not None
    time.sleep(max(0.0, buzzer.last_onset[2] + seconds - time.monotonic()))


def start(factory: MockFactory, **kwargs: object) -> tuple[Buzzer, MockPWMPin]:
    buzzer = Buzzer(PIN, pin_factory=factory, **kwargs)  # type: ignore[arg-type]
    pin = factory.pin(PIN)
    pin.clear_states()
    return buzzer, pin


def test_timeline_helper_merges_equal_duties() -> None:
    assert timeline([(1.0, 0.125), (1.0, 0.25), (0.0, 0.125), (0.5, 0.125)]) == [
        (0.0, 0.0),
        (0.0, 1.0),
        (0.375, 0.0),
        (0.125, 0.5),
        (0.125, 0.0),
    ]


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_each_pattern_drives_the_pin_through_its_full_timeline(
    factory: MockFactory, name: str
) -> None:
    buzzer, pin = start(factory)
    with buzzer:
        buzzer.play(name)
        assert buzzer.wait_idle(timeout_s=2.0)
        assert_timeline(pin, timeline(PATTERNS[name]))
        assert buzzer.value == 0.0


def test_play_returns_at_once_with_the_issue_time(factory: MockFactory) -> None:
    buzzer, pin = start(factory)
    with buzzer:
        before = time.monotonic()
        issued_s = buzzer.play("long")
        returned = time.monotonic()
        assert before <= issued_s <= returned and returned - before < LATE_S
        sleep_after_onset(buzzer, 0.05)
        assert buzzer.playing == "long" and buzzer.value == 1.0
        # The motor came on within a few ms of the command, and the buzzer says when.
        assert pin.states[1].timestamp < LATE_S + (issued_s - before)
        assert buzzer.last_onset is not None
        name, issued_again_s, onset_s = buzzer.last_onset
        assert (name, issued_again_s) == ("long", issued_s)
        assert 0 <= onset_s - issued_s < LATE_S


def test_new_pattern_preempts_the_current_one(factory: MockFactory) -> None:
    buzzer, pin = start(factory)
    with buzzer:
        buzzer.play("long")
        sleep_after_onset(buzzer, 0.1)
        buzzer.play("ramp")
        assert buzzer.wait_idle(timeout_s=2.0)
    expected = [(0.0, 0.0), (0.0, 1.0), (0.1, 0.3), (0.1, 0.55), (0.1, 0.8), (0.1, 1.0), (0.1, 0.0)]
    assert_timeline(pin, expected)


def test_stop_switches_off_mid_pattern(factory: MockFactory) -> None:
    buzzer, pin = start(factory)
    with buzzer:
        buzzer.play("long")
        sleep_after_onset(buzzer, 0.1)
        buzzer.stop()
        assert buzzer.wait_idle(timeout_s=1.0)
        assert_timeline(pin, [(0.0, 0.0), (0.0, 1.0), (0.1, 0.0)])


def test_close_mid_pattern_leaves_the_motor_off(factory: MockFactory) -> None:
    buzzer, pin = start(factory)
    buzzer.play("long")
    sleep_after_onset(buzzer, 0.1)
    buzzer.close()
    buzzer.close()  # idempotent
    assert_timeline(pin, [(0.0, 0.0), (0.0, 1.0), (0.1, 0.0)])
    with pytest.raises(SpinecoachError, match="closed"):
        buzzer.play("tick")


class FailingPWMPin(MockPWMPin):
    """A pin whose driver fails when asked for 55 % duty (e.g. a PWM channel error)."""

    def _set_state(self, value: float) -> None:
        if value == 0.55:
            raise OSError("PWM channel error")
        super()._set_state(value)


def test_error_in_the_pattern_thread_switches_the_motor_off() -> None:
    factory = MockFactory(pin_class=FailingPWMPin)
    try:
        buzzer, pin = start(factory)
        buzzer.play("ramp")
        assert buzzer.wait_idle(timeout_s=1.0)
        assert isinstance(buzzer.error, OSError)
        assert_timeline(pin, [(0.0, 0.0), (0.0, 0.3), (0.1, 0.0)])
        with pytest.raises(SpinecoachError, match="stopped after an error"):
            buzzer.play("tick")
        buzzer.close()
    finally:
        factory.reset()


def test_unknown_pattern_names_the_known_ones(factory: MockFactory) -> None:
    buzzer, pin = start(factory)
    with buzzer, pytest.raises(UnknownPatternError, match="'buzz'.*tick, double, long"):
        buzzer.play("buzz")
    assert_timeline(pin, [(0.0, 0.0)])


@pytest.mark.parametrize("steps", [[], [(1.5, 0.1)], [(0.5, 0.0)], [(-0.1, 0.1)]])
def test_invalid_patterns_are_refused(
    factory: MockFactory, steps: list[tuple[float, float]]
) -> None:
    with pytest.raises(ValueError, match="pattern 'bad'"):
        Buzzer(PIN, pin_factory=factory, patterns={"bad": steps})


def test_pwm_frequency_is_set_on_the_configured_pin(factory: MockFactory) -> None:
    buzzer = Buzzer(23, pin_factory=factory, frequency_hz=250.0)
    with buzzer:
        assert factory.pin(23).frequency == 250.0


def test_motor_is_switched_off_at_interpreter_exit() -> None:
    # The script's own atexit hook is registered first, so it runs after the buzzer's.
    script = textwrap.dedent(
        """
        import atexit, time
        from gpiozero.pins.mock import MockFactory, MockPWMPin
        from spinecoach.drivers.buzzer import Buzzer

        factory = MockFactory(pin_class=MockPWMPin)
        pin = factory.pin(18)
        atexit.register(lambda: print([float(s.state) for s in pin.states], flush=True))
        buzzer = Buzzer(18, pin_factory=factory)
        buzzer.play("long")
        deadline = time.monotonic() + 5.0
        while buzzer.value != 1.0 and time.monotonic() < deadline:
            time.sleep(0.001)
        print("on", buzzer.value, flush=True)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines == ["on 1.0", "[0.0, 1.0, 0.0]"]


def test_pin_in_use_is_a_clear_error(factory: MockFactory) -> None:
    with Buzzer(PIN, pin_factory=factory), pytest.raises(BuzzerUnavailable, match="BCM pin 18"):
        Buzzer(PIN, pin_factory=factory)


def test_no_gpio_on_this_machine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")
    with pytest.raises(BuzzerUnavailable, match="no GPIO on this machine"):
        Buzzer(PIN)
