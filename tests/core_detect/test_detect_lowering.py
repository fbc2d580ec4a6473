"""The pipeline's ``eccentric_end`` event: a lowering measured by its fitted bell as it stops."""

from __future__ import annotations

import numpy as np
import pytest
from core_detect_synth import cosine_moves, hinge_set, imu_from_angle
from spinecoach.core.pipeline import Pipeline
from spinecoach.core.results import CoreEvent, LoweringResult, MotionSettings
from spinecoach.drivers.blocks import StreamInfo

RATE_HZ = 200.0
HINGE = MotionSettings(primary_axis=(0.0, 1.0, 0.0), eccentric_sign=1)
ROW = MotionSettings(primary_axis=(0.0, 1.0, 0.0), eccentric_sign=-1)  # lowering = angle falls


def _signals(n_reps: int = 3, **tempo: float):
    _t, angle, omega, edges = cosine_moves(hinge_set(n_reps, **tempo), RATE_HZ)
    gyro, accel = imu_from_angle(angle, omega)
    return gyro, accel, edges


def _feed(motion: MotionSettings | None, gyro, accel, block: int) -> list[CoreEvent]:
    p = Pipeline([StreamInfo("trunk", "imu", RATE_HZ)], motion)
    events: list[CoreEvent] = []
    for a in range(0, len(gyro), block):
        sl = slice(a, a + block)
        events += p.feed_imu("trunk", np.arange(len(gyro))[sl], gyro[sl], accel[sl])
    p.finish()
    return events


def test_a_lowering_is_reported_with_its_fitted_duration_as_soon_as_it_stops() -> None:
    gyro, accel, edges = _signals(ecc_s=2.0)
    events = _feed(HINGE, gyro, accel, 50)
    ends = [e for e in events if e.kind == "eccentric_end"]
    assert len(ends) == 3
    for i, e in enumerate(ends):
        lowering = e.data
        assert isinstance(lowering, LoweringResult) and lowering.fitted
        true_start, true_end = edges[1 + 4 * i], edges[2 + 4 * i]
        assert lowering.start_s == pytest.approx(true_start, abs=0.03)
        assert lowering.end_s == pytest.approx(true_end, abs=0.03)
        assert lowering.duration_s == pytest.approx(2.0, abs=0.04)
        assert lowering.rom_deg == pytest.approx(60.0, abs=1.5)
        # decided by the sample that committed the stop: before the rep, at most the phase
        # detector's minimum phase after the speed fell below the still threshold
        assert true_end - 0.3 < e.t_s < true_end + 0.15
        rep = next(r for r in events if r.kind == "rep" and r.t_s > e.t_s)
        assert rep.data.tempo.eccentric_s == pytest.approx(lowering.duration_s, abs=0.04)


def test_the_lowering_may_come_second() -> None:
    gyro, accel, edges = _signals(con_s=1.5)
    ends = [e.data for e in _feed(ROW, gyro, accel, 50) if e.kind == "eccentric_end"]
    assert len(ends) == 3  # the returns, angle falling
    for i, lowering in enumerate(ends):
        assert lowering.start_s == pytest.approx(edges[3 + 4 * i], abs=0.03)
        assert lowering.duration_s == pytest.approx(1.5, abs=0.04)
        assert lowering.rom_deg == pytest.approx(60.0, abs=1.5)


@pytest.mark.parametrize("block", [1, 7, 64, 333])
def test_lowering_events_do_not_depend_on_the_block_size(block: int) -> None:
    gyro, accel, _ = _signals(n_reps=2)
    whole = [e for e in _feed(HINGE, gyro, accel, len(gyro)) if e.kind == "eccentric_end"]
    assert len(whole) == 2
    assert [e for e in _feed(HINGE, gyro, accel, block) if e.kind == "eccentric_end"] == whole


def test_no_lowering_is_reported_without_an_exercise() -> None:
    gyro, accel, _ = _signals(n_reps=2)
    kinds = [e.kind for e in _feed(None, gyro, accel, 100)]
    assert "phase" in kinds and "eccentric_end" not in kinds
