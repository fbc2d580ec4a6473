"""analyze counts what the movement holds at every IMU rate from 25 Hz to 1 kHz.

The simulated scenarios (1 kHz IMU, 320 SPS load cell) and BROAD (285.7 Hz) are resampled
(anti-aliased before decimating) to the corpus' rates, written as interchange CSV whose time
column alone tells the rate (no sidecar), and read back through the importer.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import robust_corpus as rc
from robust_schema import check_document
from spinecoach.analysis import analyze_recording
from spinecoach.recording.load import load_recording
from spinecoach.recording.model import Recording


@functools.cache
def _scenario(name: str) -> Recording:
    return rc.scenario(name)


def _via_csv(rec: Recording, tmp_path, name: str = "r.csv", jitter_s: float = 0.0) -> Recording:
    header, rows = rc.table(rec, jitter_s=jitter_s, seed=7)
    path = rc.write(tmp_path / name, rc.csv_of(header, rows))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean file raises no remark
        return load_recording(path)


@pytest.mark.parametrize("rate_hz", rc.IMU_RATES_HZ)
@pytest.mark.parametrize("scenario", rc.REP_SCENARIOS)
def test_rep_count_is_exact_at_every_rate(scenario: str, rate_hz: float, tmp_path) -> None:
    truth = rc.truth(scenario)
    rec = _via_csv(rc.at_rate(_scenario(scenario), rate_hz), tmp_path)
    assert rec.imu[next(iter(rec.imu))].info.rate_hz == pytest.approx(rate_hz, rel=1e-6)
    doc = check_document(analyze_recording(rec, None))
    assert len(doc["reps"]) == len(truth["reps"])
    assert doc["notes"] == []  # a clean file raises no remark
    if rate_hz in (25.0, 1000.0):
        named = check_document(analyze_recording(rec, truth["exercise"]))
        assert len(named["reps"]) == len(truth["reps"])
        starts = np.array([r["start_s"] for r in named["reps"]])
        true_starts = np.array([r["start_s"] for r in truth["reps"]])
        assert np.abs(starts - true_starts).max() < max(0.1, 3.0 / rate_hz)


@pytest.mark.parametrize("rate_hz", [37.3, 123.45, 333.3])
def test_odd_non_integer_rates(rate_hz: float, tmp_path) -> None:
    truth = rc.truth("good_morning_tempo")
    rec = _via_csv(rc.at_rate(_scenario("good_morning_tempo"), rate_hz, 97.7), tmp_path)
    assert rec.imu["trunk"].info.rate_hz == pytest.approx(rate_hz, rel=1e-6)
    assert rec.force["force"].info.rate_hz == pytest.approx(97.7, rel=1e-6)
    doc = check_document(analyze_recording(rec, truth["exercise"]))
    assert len(doc["reps"]) == len(truth["reps"])
    assert all(r["peak_force_n"] is not None for r in doc["reps"])


@pytest.mark.parametrize("rate_hz", [25.0, 100.0, 1000.0])
@pytest.mark.parametrize("scenario", ["back_extension_holds", "sorensen_hold"])
def test_holds_are_found_at_every_rate(scenario: str, rate_hz: float, tmp_path) -> None:
    truth = rc.truth(scenario)
    rec = _via_csv(rc.at_rate(_scenario(scenario), rate_hz), tmp_path)
    doc = check_document(analyze_recording(rec, truth["exercise"]))
    assert len(doc["holds"]) == len(truth["holds"])
    for found, true in zip(doc["holds"], truth["holds"], strict=True):
        assert abs(found["start_s"] - true["start_s"]) < 0.25
        assert abs(found["duration_s"] - (true["end_s"] - true["start_s"])) < 0.3


@pytest.mark.parametrize("force_rate_hz", [100.0, 320.0, 1000.0])
@pytest.mark.parametrize("scenario", ["isometric_max_pulls", "repeaters_7_3"])
def test_contractions_are_found_at_every_force_rate(scenario: str, force_rate_hz: float,
                                                    tmp_path) -> None:
    truth = rc.truth(scenario)
    rec = _via_csv(rc.at_rate(_scenario(scenario), 100.0, force_rate_hz), tmp_path)
    doc = check_document(analyze_recording(rec, truth["exercise"]))
    assert len(doc["contractions"]) == len(truth["contractions"])
    assert doc["notes"] == []
    for found, true in zip(doc["contractions"], truth["contractions"], strict=True):
        assert found["peak_force_n"] == pytest.approx(true["peak_force_n"], rel=0.03)
        assert found["rate_hz"] == pytest.approx(force_rate_hz, rel=1e-6)


@pytest.mark.parametrize("rate_hz", [25.0, 1000.0 / 3.5, 1000.0])
def test_real_imu_recording_at_every_rate(rate_hz: float, tmp_path) -> None:
    """BROAD's fast rotations: figures finite, schema complete, the rate recovered."""
    rec = rc.broad()
    if rate_hz != rec.imu["trunk"].info.rate_hz:
        rec = _via_csv(rc.at_rate(rec, rate_hz), tmp_path)
    doc = check_document(analyze_recording(rec, None))
    assert doc["streams"]["trunk"]["rate_hz"] == pytest.approx(rate_hz, rel=1e-5)
    assert doc["duration_s"] == pytest.approx(183.8, abs=0.1)
    assert doc["notes"] == []
