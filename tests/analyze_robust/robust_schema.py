"""The documented shape of an ``analyze --json`` object (README, section core), for the checks."""

from __future__ import annotations

import json
import math
from typing import Any

from spinecoach.analysis import summary_text

TOP = {"file", "exercise", "duration_s", "streams", "reps", "holds", "contractions",
       "movement_onsets_s", "summary", "notes"}
REP = {"start_s", "end_s", "rom_deg", "tempo", "peak_eccentric_speed_dps",
       "mean_eccentric_speed_dps", "peak_concentric_speed_dps", "mean_concentric_speed_dps",
       "eccentric_sparc", "overshoot_deg", "eccentric_first", "stabilisation_s", "sway_rms_deg",
       "rotation_speed_dps", "velocity_loss_pct"}
REP_FORCE = {"peak_force_n", "mean_force_n", "angle_at_peak_force_deg", "onset_asynchrony_s",
             "band_stiffness_n_per_deg", "sticking_region_deg", "force_angle"}
TEMPO = {"eccentric_s", "pause_lengthened_s", "concentric_s", "pause_shortened_s"}
HOLD = {"start_s", "end_s", "duration_s", "mean_angle_deg", "mean_force_n", "end_reason",
        "stabilisation_s", "overshoot_deg", "sway_rms_deg"}
CONTRACTION = {"onset_s", "end_s", "baseline_n", "baseline_sd_n", "threshold_n", "peak_force_n",
               "time_to_peak_s", "mean_force_n", "force_at_n", "rfd_n_per_s",
               "peak_rfd_n_per_s", "impulse_n_s", "pretensioned", "invalid_samples", "rate_hz"}
SUMMARY = {"rep_count", "hold_count", "contraction_count", "primary_axis_sensor"}


def _finite_or_null(value: Any, where: str) -> None:
    if isinstance(value, float):
        assert math.isfinite(value), where
    elif isinstance(value, dict):
        for k, v in value.items():
            _finite_or_null(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _finite_or_null(v, f"{where}[{i}]")


def check_document(doc: dict[str, Any]) -> dict[str, Any]:
    """Assert ``doc`` is valid JSON of the documented schema, every number finite or null."""
    doc = json.loads(json.dumps(doc, allow_nan=False))
    assert TOP <= set(doc), TOP - set(doc)
    has_force = any(s["kind"] == "force" for s in doc["streams"].values())
    for s in doc["streams"].values():
        assert s["rate_hz"] > 0 and s["samples"] >= 0
    for rep in doc["reps"]:
        assert REP <= set(rep), REP - set(rep)
        assert set(rep["tempo"]) == TEMPO
        if has_force:
            assert REP_FORCE <= set(rep), REP_FORCE - set(rep)
        assert rep["start_s"] <= rep["end_s"]
    for hold in doc["holds"]:
        assert HOLD <= set(hold), HOLD - set(hold)
        assert hold["duration_s"] >= 0
    for c in doc["contractions"]:
        assert CONTRACTION <= set(c), CONTRACTION - set(c)
        assert set(c["rfd_n_per_s"]) == {"0-50", "0-100", "0-150", "0-200"}
        assert {"0-100", "0-200", "0-300"} <= set(c["impulse_n_s"])
    assert SUMMARY <= set(doc["summary"])
    assert doc["summary"]["rep_count"] == len(doc["reps"])
    _finite_or_null(doc, "doc")
    assert summary_text(doc)  # the readable summary copes with every null too
    return doc
