"""The tempo set's "eccentric too fast" cue: never for a lowering at or slower than the target,
always and at once for a clearly fast one (simulated rig, several seeds; see engine_tempo_rig)."""

from __future__ import annotations

import pytest
from engine_tempo_rig import EXERCISES, coach, exercise, tempo_variant
from spinecoach.core.results import CoreEvent, LoweringResult
from spinecoach.drivers.sim.scenarios import build_scenario
from spinecoach.engine.protocols import make_protocol, protocol_params

SEEDS = (1, 2, 3)


def _target_s(exercise_id: str) -> float:
    return EXERCISES[exercise_id][1][0]


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
@pytest.mark.parametrize("factor", [1.1, 1.0, 0.9])
def test_a_lowering_at_or_slower_than_the_target_is_never_cued(exercise_id: str,
                                                                factor: float) -> None:
    for seed in SEEDS:
        result = coach(tempo_variant(exercise_id, factor, seed), exercise_id)
        assert len(result.lowerings) == 6
        assert result.cued == 0
        assert not [c for c in result.cues if c.kind == "eccentric_too_fast"]
        # Judged on the fitted lowering, not the phase thresholds: the reading is unbiased
        # where the thresholds read every lowering short.
        measured = [lw.measured_s for lw in result.lowerings]
        phases = [lw.phase_s for lw in result.lowerings]
        assert None not in measured and None not in phases
        true_s = factor * _target_s(exercise_id)
        assert sum(measured) / len(measured) == pytest.approx(true_s, rel=0.04)
        assert max(phases) < true_s


@pytest.mark.parametrize("factor", [0.8, 0.75])
def test_a_lowering_between_the_threshold_and_the_target_is_not_cued(factor: float) -> None:
    """0.7 x the target is the threshold. The phase thresholds read these banded good mornings
    0.1-0.3 s short and cued half of those at 0.75; the fitted reading is within 0.07 s.
    (The slower row is read up to 0.5 s short in a few lowerings under sway: see the README.)"""
    for seed in SEEDS:
        result = coach(tempo_variant("banded_good_morning", factor, seed), "banded_good_morning")
        assert result.cued == 0
        assert all(abs(lw.measured_s - lw.duration_s) < 0.1 for lw in result.lowerings)


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_the_scenario_itself_gets_no_too_fast_cue(exercise_id: str) -> None:
    scenario = EXERCISES[exercise_id][0]
    for seed in SEEDS:
        result = coach(build_scenario(scenario, seed), exercise_id)
        assert result.lowerings and result.cued == 0


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
@pytest.mark.parametrize("factor", [0.6, 0.5])
def test_a_clearly_fast_lowering_is_cued_at_once(exercise_id: str, factor: float) -> None:
    for seed in SEEDS:
        result = coach(tempo_variant(exercise_id, factor, seed), exercise_id)
        assert result.cued == len(result.lowerings) == 6
        for lw in result.lowerings:
            # decided by the block that saw the stop: within 0.1 s of the true end
            assert lw.decided_s is not None and lw.decided_s - lw.end_s < 0.1
            assert lw.measured_s == pytest.approx(lw.duration_s, rel=0.06)
        # the buzzer respects the rule's minimum interval; the first one says the reading
        first = next(c for c in result.cues if c.kind == "eccentric_too_fast")
        assert first.pattern == "warning"
        assert f"{result.lowerings[0].measured_s:.1f} s" in first.message


def _lowering(duration_s: float, rom_deg: float, end_s: float = 10.0) -> CoreEvent:
    return CoreEvent("eccentric_end", end_s,
                     LoweringResult(end_s - duration_s, end_s, duration_s, rom_deg, True))


def test_the_rule_judges_the_lowering_duration_against_the_fraction_of_the_target() -> None:
    ex = exercise("banded_good_morning")  # target 3 s, fraction 0.7: cued below 2.1 s
    protocol = make_protocol("tempo_set", ex, protocol_params("tempo_set", ex), 0.0)
    assert protocol.on_event(_lowering(2.1, 80.0)) == []
    out = protocol.on_event(_lowering(2.05, 80.0, end_s=20.0))
    assert [e.kind for e in out] == ["eccentric_too_fast"]
    assert out[0].t_s == 20.0 and out[0].values == {"eccentric_s": 2.05, "target_s": 3.0}
    # smaller than a rep (min_rom_deg 30): an adjustment, not a lowering to coach
    assert protocol.on_event(_lowering(0.4, 12.0, end_s=30.0)) == []
    # the phase events alone no longer judge anything
    assert [e.kind for e in protocol.on_event(CoreEvent("phase", 40.0, "eccentric"))] == ["phase"]
    assert [e.kind for e in protocol.on_event(CoreEvent("phase", 40.5, "still"))] == ["phase"]
    assert protocol.too_fast == 1
