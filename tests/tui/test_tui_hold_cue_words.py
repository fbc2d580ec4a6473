"""The cue of a hold lost early says how it ended in words, as the hold panel does: the core's
end codes (``left_band``, ``force_unstable``) never reach the screen."""

from __future__ import annotations

import pytest
from spinecoach.core.results import CoreEvent, HoldResult
from spinecoach.engine.cues import CueEngine, rules_for
from spinecoach.engine.library import load_library
from spinecoach.engine.protocols import make_protocol, protocol_params


@pytest.mark.parametrize(("code", "words"), [("left_band", "angle left the band"),
                                             ("force_unstable", "band tension lost"),
                                             ("unheard_of", "ended")])
def test_band_lost_cue_names_the_end_in_words(code: str, words: str) -> None:
    exercise = load_library().get("back_extension_hold")
    protocol = make_protocol("isometric_holds", exercise,
                             protocol_params("isometric_holds", exercise, {"holds": 2}), 0.0)
    events = []
    for core in (CoreEvent("hold_start", 5.2, {"start_s": 4.2}),
                 CoreEvent("hold_end", 6.5, HoldResult(4.2, 6.3, 2.1, end_reason=code))):
        events += protocol.on_time(core.t_s)
        events += protocol.on_event(core)
    lost = [e for e in events if e.kind == "band_lost"]
    assert len(lost) == 1
    cues = CueEngine(rules_for(exercise.cues), "training")
    messages = [c.message for c in cues.submit(lost) + cues.advance(7.0)]
    assert messages == [f"Hold lost after 2.1 s ({words})"]
    assert code not in messages[0]
