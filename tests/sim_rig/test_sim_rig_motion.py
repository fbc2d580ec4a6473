"""Movement scripts: analytic derivatives, continuity, sway statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from spinecoach.drivers.sim.motion import Script, Wobble

segments = st.lists(
    st.tuples(
        st.sampled_from(["move", "pause", "hold"]),
        st.floats(-120.0, 120.0),
        st.floats(0.05, 3.0),
    ),
    min_size=1,
    max_size=8,
)


def _script(spec: list[tuple[str, float, float]]) -> Script:
    script = Script(10.0, t0_s=0.5)
    for kind, value, duration in spec:
        if kind == "move":
            script.move(value, duration)
        elif kind == "pause":
            script.pause(duration)
        else:
            script.hold(duration)
    return script


@given(segments)
def test_sim_rig_script_derivatives_match_finite_differences(spec: list) -> None:
    script = _script(spec)
    h = 1e-6
    t = np.linspace(0.0, script.end_s + 0.5, 997)
    d = script.evaluate(t)
    rate_fd = (script.evaluate(t + h).value - script.evaluate(t - h).value) / (2 * h)
    accel_fd = (script.evaluate(t + h).rate - script.evaluate(t - h).rate) / (2 * h)
    # Central differences: rounding ~eps*|f|/h, truncation ~h^2 * (third derivative), but
    # ~h * (jump of the third derivative) where a step straddles a segment boundary (a
    # minimum-jerk move's jerk is 60 delta/d^3 at its ends).
    jerk = max(
        (60.0 * abs(m.to_value - m.from_value) / m.duration_s**3 for m in script.segments),
        default=0.0,
    )
    np.testing.assert_allclose(d.rate, rate_fd, atol=1e-6 * max(1.0, np.abs(d.rate).max()) + 1e-4)
    np.testing.assert_allclose(
        d.accel, accel_fd, atol=1e-6 * max(1.0, np.abs(d.accel).max()) + h * jerk + 1e-2
    )


@given(segments)
def test_sim_rig_script_is_continuous_and_rests_between_moves(spec: list) -> None:
    script = _script(spec)
    previous_end = script.start_value
    for segment in script.segments:
        at = script.evaluate(np.array([segment.start_s, segment.end_s]))
        assert at.value[0] == pytest.approx(previous_end, abs=1e-9)
        assert at.value[1] == pytest.approx(segment.to_value, abs=1e-9)
        # Minimum-jerk moves start and end at rest: speed and acceleration vanish there.
        np.testing.assert_allclose(at.rate, 0.0, atol=1e-9)
        previous_end = segment.to_value
    before = script.evaluate(np.array([0.0, 0.4]))
    assert np.all(before.value == script.start_value)


def test_sim_rig_min_jerk_peak_speed_closed_form() -> None:
    script = Script(0.0).move(90.0, 2.0)
    d = script.evaluate(np.array([1.0]))
    assert d.value[0] == pytest.approx(45.0)
    assert d.rate[0] == pytest.approx(1.875 * 90.0 / 2.0)
    assert d.accel[0] == pytest.approx(0.0, abs=1e-12)


def test_sim_rig_wobble_rms_and_band() -> None:
    wobble = Wobble.seeded([1, 2, 3], rms=0.5, band_hz=(0.2, 0.8), components=4)
    t = np.arange(0.0, 600.0, 0.01)
    value = wobble.evaluate(t).value
    assert np.sqrt(np.mean(value**2)) == pytest.approx(0.5, rel=0.05)
    assert all(0.2 <= f <= 0.8 for f in wobble.frequencies_hz)
    assert Wobble.seeded([1, 2, 3], 0.5, (0.2, 0.8), 4) == wobble


def test_sim_rig_script_rejects_bad_segments() -> None:
    with pytest.raises(ValueError, match="positive duration"):
        Script(0.0).move(10.0, 0.0)
    with pytest.raises(ValueError, match=">= 0"):
        Script(0.0).pause(-1.0)
    with pytest.raises(ValueError, match="not one of"):
        Script(0.0).move(10.0, 1.0, phase="lowering")
