"""Protocols and cue rules driven by constructed core-event sequences (the engine's real input)."""

from __future__ import annotations

import numpy as np
import pytest
from spinecoach.core.results import (
    ContractionResult,
    CoreEvent,
    HoldResult,
    LoweringResult,
    RepResult,
    Tempo,
)
from spinecoach.engine.cues import CueEngine, rules_for
from spinecoach.engine.library import CueOverride, load_library
from spinecoach.engine.protocols import (
    EngineEvent,
    SetProtocol,
    make_protocol,
    protocol_params,
)
from spinecoach.errors import UsageError

LIBRARY = load_library()


def _run(protocol: SetProtocol, events: list[CoreEvent], end_s: float) -> list[EngineEvent]:
    """Feed events in time order the way the runner does (time first, then the event)."""
    out: list[EngineEvent] = []
    for event in sorted(events, key=lambda e: e.t_s):
        out += protocol.on_time(event.t_s)
        out += protocol.on_event(event)
    out += protocol.on_time(end_s)
    return out


def _rep(start: float, ecc: float, speed: float, rom: float = 60.0) -> RepResult:
    return RepResult(start, start + ecc + 1.0, rom, Tempo(ecc, 0.5, 0.5, 0.0),
                     mean_concentric_speed_dps=speed, peak_concentric_speed_dps=speed * 1.5)


def _protocol(protocol_id: str, exercise_id: str, **overrides: object) -> SetProtocol:
    exercise = LIBRARY.get(exercise_id)
    return make_protocol(protocol_id, exercise, protocol_params(protocol_id, exercise, overrides),
                         0.0)


def test_tempo_set_metronome_too_fast_and_completion() -> None:
    p = _protocol("tempo_set", "banded_good_morning", reps=3, lead_in_s=1.0)
    events = []
    t = 2.0
    for ecc in (3.0, 1.0, 2.9):  # the second eccentric is too fast (< 0.7 x 3 s)
        events += [CoreEvent("phase", t, "eccentric"), CoreEvent("phase", t + ecc, "still"),
                   CoreEvent("eccentric_end", t + ecc, LoweringResult(t, t + ecc, ecc, 60.0, True))]
        events.append(CoreEvent("rep", t + ecc + 1.5, _rep(t, ecc, 60.0)))
        t += ecc + 3.0
    out = _run(p, events, 40.0)
    kinds = [e.kind for e in out]
    assert kinds.count("eccentric_too_fast") == 1 and kinds.count("rep") == 3
    assert kinds[-1] == "set_complete" and p.done and p.targets_met()
    ticks = [e for e in out if e.kind == "metronome"]
    # 3-1-1-0: ticks at 1, 4, 5, 6, 9, 10, ... exactly on the prescribed boundaries.
    assert [e.t_s for e in ticks[:5]] == [1.0, 4.0, 5.0, 6.0, 9.0]
    assert [e.values["phase"] for e in ticks[:4]] == ["lower", "pause", "lift", "lower"]
    metrics = {m.name: m.value for m in p.summary() if m.index is None}
    assert metrics["reps"] == 3 and metrics["eccentric_too_fast"] == 1
    assert metrics["min_eccentric_s"] == 1.0


def test_tempo_set_stops_on_velocity_loss() -> None:
    p = _protocol("tempo_set", "banded_good_morning", reps=10, velocity_loss_stop_pct=20.0)
    events = [CoreEvent("rep", 5.0 * i + 5, _rep(5.0 * i, 3.0, s)) for i, s in
              enumerate([50.0, 52.0, 45.0, 41.0, 30.0])]
    out = _run(p, events, 60.0)
    stop = [e for e in out if e.kind == "velocity_loss_stop"]
    assert len(stop) == 1 and stop[0].t_s == 20.0  # 41 is 21 % below 52
    assert p.done and not p.targets_met() and len(p.reps) == 4


def test_isometric_holds_complete_lost_and_rest_over() -> None:
    p = _protocol("isometric_holds", "back_extension_hold", holds=3, rest_s=10.0)
    events = [
        CoreEvent("hold_start", 1.0), CoreEvent("hold_end", 6.0, HoldResult(1.0, 6.0, 5.0)),
        CoreEvent("hold_start", 17.0),
        CoreEvent("hold_end", 19.5, HoldResult(17.0, 19.5, 2.5, end_reason="force")),
        CoreEvent("hold_start", 30.0), CoreEvent("hold_end", 34.5, HoldResult(30.0, 34.5, 4.5)),
    ]
    out = _run(p, events, 50.0)
    assert [(e.kind, e.t_s) for e in out] == [
        ("hold_started", 1.0), ("hold_complete", 5.25), ("rest_over", 16.0),
        ("hold_started", 17.0), ("band_lost", 19.5), ("rest_over", 29.5),
        ("hold_started", 30.0), ("hold_complete", 34.25), ("set_complete", 34.5),
    ]
    metrics = {m.name: m.value for m in p.summary() if m.index is None}
    assert metrics["holds_completed"] == 2 and metrics["holds_attempted"] == 3
    assert not p.targets_met()


def test_holds_with_transitions_name_positions() -> None:
    p = _protocol("holds_with_transitions", "bridge_lateral_shift", holds=1, segment_s=5.0)
    out = _run(p, [CoreEvent("hold_start", 2.0),
                   CoreEvent("hold_end", 33.0, HoldResult(2.0, 33.0, 31.0))], 40.0)
    moves = [(e.t_s, e.values["position"]) for e in out if e.kind == "transition"]
    assert moves == [(7.0, "left"), (12.0, "centre"), (17.0, "right"), (22.0, "centre"),
                     (27.0, "left")]
    assert out[-1].kind == "set_complete" and p.targets_met()


def _contraction(onset: float, peak: float, rfd: float) -> ContractionResult:
    return ContractionResult(onset, onset + 3.0, 10.0, peak, 0.4, rfd_n_per_s={"100": rfd / 2},
                             peak_rfd_n_per_s=rfd)


def test_max_pulls_go_cues_and_best_of_trials() -> None:
    p = _protocol("max_pulls", "isometric_pull", trials=3, rest_s=30.0, lead_in_s=2.0)
    events = [CoreEvent("contraction", 1.5, _contraction(0.5, 999.0, 1.0))]  # before go: ignored
    for k, (peak, rfd) in enumerate([(800.0, 5000.0), (850.0, 4800.0), (820.0, 5200.0)]):
        onset = 2.5 + 33.0 * k
        events.append(CoreEvent("contraction", onset + 3.0, _contraction(onset, peak, rfd)))
    out = _run(p, events, 200.0)
    assert [e.t_s for e in out if e.kind == "go"] == [2.0, 35.5, 68.5]
    metrics = {m.name: m.value for m in p.summary() if m.index is None}
    assert metrics["best_peak_force_n"] == 850.0 and metrics["best_peak_rfd_n_per_s"] == 5200.0
    assert metrics["trials"] == 3 and p.done


def test_protocol_parameters_are_validated() -> None:
    exercise = LIBRARY.get("isometric_pull")
    with pytest.raises(UsageError, match="trials = 7"):
        protocol_params("max_pulls", exercise, {"trials": 7})
    with pytest.raises(UsageError, match="no parameter 'holds'"):
        protocol_params("max_pulls", exercise, {"holds": 3})
    with pytest.raises(UsageError, match="unknown protocol"):
        protocol_params("crossfit", exercise)


def _square_force(p_on: float, reps: int, means: list[float], rate_hz: float = 80.0):
    t = np.arange(0, 3.0 + reps * 10.0 + 1.0, 1.0 / rate_hz)
    force = np.zeros_like(t)
    for k, m in enumerate(means):
        on = 3.0 + 10.0 * k
        force[(t >= on) & (t < on + p_on)] = m
    return t, force


@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_repeaters_mean_force_fatigue_and_critical_force(chunk: int) -> None:
    means = [500.0 - 10.0 * k for k in range(24)]
    p = _protocol("critical_force", "repeaters", lead_in_s=3.0)
    t, force = _square_force(7.0, 24, means)
    out: list[EngineEvent] = []
    for i in range(0, len(t), chunk):
        p.on_force(t[i:i + chunk], force[i:i + chunk], np.ones(len(t[i:i + chunk]), bool))
        out += p.on_time(float(t[min(i + chunk, len(t)) - 1]))
    assert sum(e.kind == "go" for e in out) == 24 and out[-1].kind == "set_complete"
    assert "reps 19-24" in out[-1].values["summary"]
    metrics = {m.name: m.value for m in p.summary() if m.index is None}
    cf = float(np.mean(means[18:]))
    assert metrics["critical_force_n"] == pytest.approx(cf)
    assert metrics["w_prime_n_s"] == pytest.approx(sum((m - cf) * 7.0 for m in means if m > cf))
    assert metrics["fatigue_index_pct"] == pytest.approx((500.0 - 270.0) / 500.0 * 100)
    assert (metrics["cf_window_first_rep"], metrics["cf_window_last_rep"]) == (19, 24)


def test_sorensen_ends_on_hold_end_or_cap() -> None:
    p = _protocol("sorensen", "sorensen_hold")
    _run(p, [CoreEvent("hold_start", 2.0),
             CoreEvent("hold_end", 95.0, HoldResult(2.0, 95.0, 93.0))], 100.0)
    assert {m.name: m.value for m in p.summary()}["sorensen_hold_s"] == 93.0
    capped = _protocol("sorensen", "sorensen_hold", cap_s=60.0)
    out = _run(capped, [CoreEvent("hold_start", 2.0)], 100.0)
    assert out[-1].kind == "set_complete" and out[-1].t_s == 62.0 and capped.targets_met()


def test_angle_limit_cue_delay_cancel_and_min_interval() -> None:
    engine = CueEngine(mode="training")
    limit = {"angle_deg": -14.0, "limit_deg": -10.0}
    cues = engine.submit([EngineEvent("angle_limit", 1.0, limit)])
    assert cues == []  # 0.1 s delay
    cues = engine.advance(1.2)
    assert len(cues) == 1 and cues[0].pattern == "warning" and cues[0].t_s == pytest.approx(1.1)
    assert "-14 deg" in cues[0].message
    engine.submit([EngineEvent("angle_limit", 2.0, limit)])
    assert engine.advance(3.0) == []  # inside the 3 s minimum interval
    engine.submit([EngineEvent("angle_limit", 5.0, limit)])
    assert len(engine.advance(5.5)) == 1


def test_tracking_mode_and_per_exercise_overrides() -> None:
    tracking = CueEngine(mode="tracking")
    assert tracking.submit([EngineEvent("go", 1.0, {"n": 1, "trials": 3})]) == []
    done = tracking.submit([EngineEvent("set_complete", 2.0, {"summary": "3 reps"})])
    assert len(done) == 1 and done[0].pattern is None
    rules = rules_for({"go": CueOverride(pattern="none", message="Pull!"),
                       "hold_started": CueOverride(enabled=False)})
    engine = CueEngine(rules)
    go = engine.submit([EngineEvent("go", 1.0, {})])
    assert go[0].pattern is None and go[0].message == "Pull!"
    assert engine.submit([EngineEvent("hold_started", 1.0, {})]) == []
    exercise_rules = rules_for(LIBRARY.get("back_extension_hold").cues)
    assert exercise_rules["hold_started"].message.startswith("Hold - breath held")


def test_hold_timing_starts_where_the_pipeline_found_the_hold() -> None:
    # The pipeline decides a hold 1 s after it began and reports the start in the data.
    p = _protocol("isometric_holds", "back_extension_hold", holds=1)
    out = _run(p, [CoreEvent("hold_start", 5.2, {"start_s": 4.2}),
                   CoreEvent("hold_end", 9.0, HoldResult(4.2, 8.8, 4.6))], 20.0)
    assert [(e.kind, e.t_s) for e in out] == [
        ("hold_started", 5.2), ("hold_complete", pytest.approx(8.45)), ("set_complete", 9.0)]
    assert p.targets_met()
    # A hold that broke 0.1 s before its target (reported after the debounce) is not complete.
    short = _protocol("isometric_holds", "back_extension_hold", holds=1)
    out = _run(short, [CoreEvent("hold_start", 5.2, {"start_s": 4.2}),
                       CoreEvent("hold_end", 8.3, HoldResult(4.2, 8.1, 3.9))], 20.0)
    assert [e.kind for e in out] == ["hold_started", "band_lost", "set_complete"]
    assert not short.targets_met()


def test_optional_kernel_figures_are_summarised_when_present() -> None:
    p = _protocol("free", "rotational_throw")
    rep = RepResult(1.0, 2.0, 90.0, Tempo(0.6, 0.1, 0.3, 0.0), rotation_speed_dps=700.0,
                    sway_rms_deg=1.5)
    _run(p, [CoreEvent("rep", 2.0, rep),
             CoreEvent("rep", 5.0, RepResult(4.0, 5.0, 80.0, Tempo(0.6, 0.1, 0.3, 0.0),
                                             rotation_speed_dps=750.0))], 6.0)
    metrics = {m.name: m.value for m in p.summary() if m.index is None}
    assert metrics["peak_rotation_speed_dps"] == 750.0 and metrics["mean_sway_rms_deg"] == 1.5
    assert "mean_stabilisation_s" not in metrics


def test_a_scenario_implies_exercise_protocol_and_its_prescription() -> None:
    from spinecoach.backend import Backend
    from spinecoach.config import load_config
    from spinecoach.engine.session import ScenarioDefaults, SessionRequest, resolve_plan

    def scenario(name: str) -> ScenarioDefaults:
        return ScenarioDefaults("chained_good_morning", "tempo_set", {"reps": 6, "tempo": "3-1-1-1"})

    config, sim = load_config([]), Backend.parse("sim:chained")
    plan = resolve_plan(SessionRequest(), sim, config, scenario)
    assert (plan.exercise.id, plan.protocol_id) == ("chained_good_morning", "tempo_set")
    assert (plan.params["reps"], plan.params["tempo"]) == (6, "3-1-1-1")
    plan = resolve_plan(SessionRequest(params=("reps=4",)), sim, config, scenario)
    assert (plan.params["reps"], plan.params["tempo"]) == (4, "3-1-1-1")
    plan = resolve_plan(SessionRequest(protocol="free"), sim, config, scenario)
    assert plan.protocol_id == "free" and plan.params == {}
    with pytest.raises(UsageError, match="--exercise"):
        resolve_plan(SessionRequest(), Backend.parse("hardware"), config, scenario)
    plan = resolve_plan(SessionRequest(exercise="bird_dog", side="alternate", sets=4),
                        Backend.parse("hardware"), config, scenario)
    assert plan.protocol_id == "isometric_holds" and [plan.side(n) for n in (1, 2, 3)] == [
        "left", "right", "left"]
