"""Results do not depend on which stream is fed ahead: a hold decided long after the movement
that led into it (its force came late) still finds that movement's onset."""

from __future__ import annotations

import numpy as np
from spinecoach.core.pipeline import Pipeline
from spinecoach.core.results import AnalysisResult, MotionSettings
from spinecoach.drivers.blocks import StreamInfo
from spinecoach.drivers.sim.scenarios import build_scenario

FLEXION = (0.0, 1.0, 0.0)


def _fed(imu_first: bool) -> AnalysisResult:
    sc = build_scenario("back_extension_holds")
    h = sc.truth.holds[0]
    motion = MotionSettings(primary_axis=FLEXION, eccentric_sign=1, hold_target_deg=h.target_deg,
                            hold_tolerance_deg=h.tolerance_deg)
    t = np.arange(int(sc.duration_s * sc.imu_rate_hz)) / sc.imu_rate_hz
    tf = np.arange(int(sc.duration_s * sc.force_rate_hz)) / sc.force_rate_hz
    p = Pipeline([StreamInfo("trunk", "imu", sc.imu_rate_hz),
                  StreamInfo("force", "force", sc.force_rate_hz)], motion, primary_imu="trunk")
    gyro, accel = sc.imu_signal("trunk")(t)
    feeds = [lambda: p.feed_imu("trunk", np.arange(len(t)), gyro, accel),
             lambda: p.feed_force("force", np.arange(len(tf)), sc.force_signal()(tf))]
    for feed in feeds if imu_first else feeds[::-1]:
        feed()
    return p.finish()


def test_holds_measure_their_approach_whichever_stream_came_first() -> None:
    force_first, imu_first = _fed(imu_first=False), _fed(imu_first=True)
    assert len(force_first.holds) >= 5 and len(force_first.movement_onsets_s) > 8
    assert all(h.stabilisation_s is not None and h.overshoot_deg is not None
               for h in imu_first.holds)
    assert imu_first.holds == force_first.holds
