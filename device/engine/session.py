"""One coached session end to end: configuration, library, source, runner, store, summary.

The command ``spinecoach session`` and the daemon both build sessions through
:func:`prepare_session`; :func:`run_session` drives one from any iterable of blocks.
"""

from __future__ import annotations

import math
import time
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from spinecoach.backend import Backend
from spinecoach.config import Config
from spinecoach.drivers.blocks import Block, StreamInfo
from spinecoach.engine.cues import CueEngine, rules_for
from spinecoach.engine.library import Exercise, load_library
from spinecoach.engine.progression import (
    History,
    ProgressionSettings,
    compare_sides,
    suggest,
)
from spinecoach.engine.protocols import protocol_params
from spinecoach.engine.reader import SetRow, StoreReader
from spinecoach.engine.runner import (
    Haptics,
    PipelineFactory,
    SessionPlan,
    SessionReport,
    SessionRunner,
    core_pipeline,
    replay_set,
)
from spinecoach.engine.store import Store, db_path
from spinecoach.errors import SpinecoachError, UsageError

SIDE_CHOICES = ("left", "right", "alternate")

#: Thread switch interval (s) for a process that runs sessions: a cue waits at most about this
#: long for the GIL held by the store's writer or the buzzer thread (Python's default is 5 ms).
SWITCH_INTERVAL_S = 0.0005


@dataclass(frozen=True)
class SessionRequest:
    """What the athlete asked for; None means "the default" (scenario, exercise, config)."""

    exercise: str | None = None
    protocol: str | None = None
    params: tuple[str, ...] = ()  # "key=value" strings
    sets: int = 1
    set_rest_s: float = 60.0
    side: str | None = None
    athlete: str | None = None
    mode: str | None = None


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``["reps=6", "tempo=4-1-1-0"]`` -> typed values (TOML scalars, else strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {item!r}: use NAME=VALUE, e.g. --param reps=6")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        out[key.strip()] = value
    return out


@dataclass(frozen=True)
class ScenarioDefaults:
    """What a simulated scenario implies: its exercise, protocol and scripted prescription."""

    exercise: str
    protocol: str
    params: dict[str, Any]


def scenario_defaults(name: str) -> ScenarioDefaults:
    """The exercise and protocol a simulated scenario was made for, and the prescription it
    scripted (tempo and reps, holds, pulls), so its sets end when its script does."""
    from spinecoach.drivers.sim.scenarios import build_scenario

    scenario = build_scenario(name)  # UsageError naming the known scenarios
    truth = scenario.truth
    params: dict[str, Any] = {}
    if scenario.protocol == "tempo_set" and truth.reps:
        params["reps"] = len(truth.reps)
        if truth.tempo:
            params["tempo"] = truth.tempo
    elif scenario.protocol in ("isometric_holds", "holds_with_transitions") and truth.holds:
        params["holds"] = len(truth.holds)
    elif scenario.protocol == "max_pulls" and truth.contractions:
        params["trials"] = min(5, max(3, len(truth.contractions)))
    elif scenario.protocol in ("repeaters", "critical_force") and truth.contractions:
        params["reps"] = len(truth.contractions)
    return ScenarioDefaults(scenario.exercise, scenario.protocol, params)


def resolve_plan(
    request: SessionRequest, backend: Backend, config: Config,
    defaults_for_scenario: Callable[[str], ScenarioDefaults] = scenario_defaults,
) -> SessionPlan:
    """Exercise, protocol and parameters: flags, else the scenario's, else the exercise's.

    A scenario's scripted prescription applies when its exercise and protocol are used; every
    ``--param`` overrides it.
    """
    library = load_library(config.exercises_dir())
    exercise_id, protocol_id = request.exercise, request.protocol
    implied: dict[str, Any] = {}
    if backend.kind == "sim" and (exercise_id is None or protocol_id is None):
        scenario = defaults_for_scenario(backend.target)
        if exercise_id is None:
            exercise_id = scenario.exercise
            protocol_id = protocol_id or scenario.protocol
        if (exercise_id, protocol_id) == (scenario.exercise, scenario.protocol):
            implied = scenario.params
    if exercise_id is None:
        raise UsageError("name an exercise with --exercise NAME (`spinecoach history "
                         "--exercises` lists them) or use --backend sim:SCENARIO")
    exercise: Exercise = library.get(exercise_id)
    protocol_id = protocol_id or exercise.default_protocol
    params = protocol_params(
        protocol_id, exercise, {**implied, **parse_params(request.params)},
        defaults={"velocity_loss_stop_pct": config.get("coaching", "velocity_loss_stop_pct")},
    )
    if request.side is None:
        sides: tuple[str | None, ...] = (None,)
    elif request.side == "alternate":
        sides = ("left", "right")
    elif request.side in ("left", "right"):
        sides = (request.side,)
    else:
        raise UsageError(f"--side {request.side!r}: use left, right or alternate")
    if request.sets < 1:
        raise UsageError("--sets must be at least 1")
    return SessionPlan(exercise, protocol_id, params, request.sets, request.set_rest_s, sides)


def plan_for_set(row: SetRow, config: Config) -> SessionPlan:
    """The plan a stored set ran with (exercise from the current library, stored parameters)."""
    exercise = load_library(config.exercises_dir()).get(row.exercise)
    params = protocol_params(row.protocol, exercise, row.params)
    return SessionPlan(exercise, row.protocol, params, sides=(row.side,))


def verify_set(
    reader: StoreReader, row: SetRow, config: Config,
    pipeline_factory: PipelineFactory = core_pipeline,
) -> list[str]:
    """Replay a stored set through the engine; the figures that differ from the stored ones."""
    stored = {(m.name, m.index): m.value for m in reader.metrics(row.id)}
    report = replay_set(reader.blocks(row.id), plan_for_set(row, config),
                        reader.recording(row.id).streams, pipeline_factory)
    replayed = {(m.name, m.index): m.value for m in report.metrics}
    differ = []
    for key in sorted(stored.keys() | replayed.keys(), key=lambda k: (k[0], k[1] or 0)):
        a, b = stored.get(key, math.nan), replayed.get(key, math.nan)
        if not (a == b or (math.isnan(a) and math.isnan(b))):
            name = key[0] if key[1] is None else f"{key[0]}[{key[1]}]"
            differ.append(f"{name}: stored {a!r}, replayed {b!r}")
    return differ


def open_store(config: Config, on_problem: Callable[[str], None]) -> Store:
    """The store in the configured state directory; problems are reported, never raised."""
    return Store(
        db_path(config.state_dir()),
        commit_interval_s=config.get("store", "commit_interval_s"),
        memory_buffer_bytes=int(config.get("store", "memory_buffer_mb") * 1_000_000),
        retry_interval_s=config.get("store", "retry_interval_s"),
        keep_raw=config.get("store", "keep_raw"),
        on_problem=on_problem,
    )


def run_session(
    plan: SessionPlan,
    streams: Sequence[StreamInfo],
    blocks: Iterable[Block],
    config: Config,
    *,
    store: Store | None,
    haptics: Haptics | None,
    athlete: str,
    backend: str,
    mode: str,
    say: Callable[[str], None],
    pipeline_factory: PipelineFactory = core_pipeline,
) -> SessionReport:
    """Feed ``blocks`` until the plan is done or the source ends; Ctrl-C stops the session.

    The caller should have shortened the interpreter's thread switch interval
    (:data:`SWITCH_INTERVAL_S`): with the default 5 ms the store's writer thread can hold the
    GIL that long while a cue waits.
    """
    cues = CueEngine(rules_for(plan.exercise.cues), mode, haptics=config.get("coaching", "haptics"))
    runner = SessionRunner(plan, streams, cues=cues, haptics=haptics, store=store,
                           athlete=athlete, backend=backend, pipeline_factory=pipeline_factory,
                           on_line=say)
    say(f"session {runner.session_id if runner.session_id is not None else '-'}: "
        f"{plan.exercise.name}, {plan.protocol_id}, {mode} mode, athlete {athlete}")
    try:
        for block in blocks:
            runner.feed(block, time.perf_counter_ns())
            if runner.finished:
                break
    except KeyboardInterrupt:
        runner.finish("stopped")
        raise
    return runner.finish()


def summarise(report: SessionReport, plan: SessionPlan, config: Config, athlete: str,
              say: Callable[[str], None]) -> None:
    """Side comparison and the next-session suggestion, from what was stored."""
    by_side: dict[str, list[dict[str, float]]] = {}
    for s in report.sets:
        if s.side:
            by_side.setdefault(s.side, []).append(s.figures())
    for c in compare_sides(by_side, plan.protocol_id):
        say(f"left/right {c.figure}: left {c.left:.1f}, right {c.right:.1f} "
            f"({c.asymmetry_pct:+.0f} %)")
    try:
        with StoreReader(config.state_dir()) as reader:
            history = History(reader, athlete, plan.exercise.id)
            suggestion = suggest(history, ProgressionSettings.from_config(config))
    except SpinecoachError:
        return  # nothing stored (storage failed): no suggestion from history
    if suggestion is not None:
        say(f"next session: {suggestion.sentence}")
