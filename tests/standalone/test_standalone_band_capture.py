"""The band-profile capture on full-rate samples: phases by their boundary times, force paired
with the angle across the two sensors' rates, and its limits."""

from __future__ import annotations

import numpy as np
import pytest
from spinecoach.band_profile import MAX_CAPTURE_S, BandCapture
from spinecoach.core.calibration import CalibrationError


def feed_lift(capture: BandCapture, *, t0_s: float = 0.0, seconds: float = 1.0,
              top_deg: float = 80.0, block_s: float = 0.01) -> None:
    """A lowering then a lift of ``seconds`` each (angle 1 kHz), a band whose force rises 2 N/°
    as the angle falls (320 SPS), in blocks like the sampler's; the phase changes reported late,
    as the pipeline decides them, with the sample time of each boundary."""
    t_imu = t0_s + np.arange(0, 2 * seconds, 0.001)
    angle = np.where(t_imu - t0_s < seconds, top_deg * (t_imu - t0_s) / seconds,
                     top_deg * (2 - (t_imu - t0_s) / seconds))
    t_force = t0_s + np.arange(0, 2 * seconds, 1 / 320)
    angle_at_force = np.interp(t_force, t_imu, angle)
    force = 300.0 - 2.0 * angle_at_force
    for start in np.arange(t0_s, t0_s + 2 * seconds, block_s):
        i = (t_imu >= start) & (t_imu < start + block_s)
        capture.samples("angle_deg", t_imu[i], angle[i])
        j = (t_force >= start) & (t_force < start + block_s)
        capture.samples("force_n", t_force[j], force[j])
        capture.samples("omega_dps", t_imu[i], angle[i])  # not the capture's: ignored
        if start == t0_s + 0.05:
            capture.phase(t0_s, "eccentric")
        if abs(start - (t0_s + seconds + 0.05)) < 1e-9:
            capture.phase(t0_s + seconds, "concentric")


def test_a_one_second_lift_fills_every_bin_with_the_band_force() -> None:
    capture = BandCapture("banded_good_morning", " red band ")
    feed_lift(capture)
    profile = capture.finish("2026-11-21T23:00:00+00:00")
    assert profile.name == "red band" and profile.key == "banded_good_morning/red band"
    edges = [edge for edge, _ in profile.concentric]
    assert edges == [float(e) for e in range(0, 82, 2)]  # the lift starts at the top, 80°
    assert [e for e, _ in profile.eccentric] == edges[:-1]
    for edge, force_n in profile.concentric[:-1]:
        assert force_n == pytest.approx(300 - 2 * (edge + 1), abs=0.5)  # the bin's mean
    assert profile.stiffness_n_per_deg == pytest.approx(-2.0, abs=0.01)
    assert profile.range_deg == pytest.approx((0.0, 80.0), abs=0.1)


def test_samples_after_the_longest_capture_are_not_kept() -> None:
    capture = BandCapture("banded_good_morning")
    feed_lift(capture)
    kept = capture.samples_kept
    capture.samples("angle_deg", [MAX_CAPTURE_S + 1, MAX_CAPTURE_S + 2], [10.0, 20.0])
    assert capture.samples_kept == kept and capture.overflow == 2


def test_a_capture_without_force_or_without_a_lift_is_refused() -> None:
    no_force = BandCapture("banded_good_morning")
    no_force.samples("angle_deg", np.arange(0, 1, 0.001), np.linspace(0, 60, 1000))
    with pytest.raises(CalibrationError, match="no angle and force came in"):
        no_force.finish("now")
    lowering_only = BandCapture("banded_good_morning")
    t = np.arange(0, 1, 0.001)
    lowering_only.samples("angle_deg", t, 60 * t)
    lowering_only.samples("force_n", t, 300 - 120 * t)
    lowering_only.phase(0.0, "eccentric")
    with pytest.raises(CalibrationError, match="no lift back"):
        lowering_only.finish("now")
