"""The hold panel says in words how the last hold ended."""

from __future__ import annotations

from spinecoach.tui.model import CoachModel
from spinecoach.tui.render import hold_text


def test_last_hold_end_reason_in_words() -> None:
    model = CoachModel()
    model.last_hold = {"duration_s": 4.96, "end_reason": "left_band"}
    assert hold_text(model).plain == "Hold last 5.0 s (angle left the band)"
    model.last_hold = {"duration_s": 3.0, "end_reason": "force_unstable"}
    assert hold_text(model).plain.endswith("(band tension lost)")
    model.last_hold = {"duration_s": 3.0}
    assert hold_text(model).plain == "Hold last 3.0 s"
