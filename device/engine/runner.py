"""The session runner: blocks of samples in; coaching cues, stored results and summaries out.

One runner drives one session: a number of sets of one exercise and protocol, with rest between
sets. For every set it makes a fresh measurement pipeline, so a set's stored raw recording,
replayed through a runner, goes through exactly the same computation and reproduces the stored
figures bit for bit (:func:`replay_set`).

Everything that decides *what* happens reads sample time only. The wall clock is read for one
thing: the latency from a block's arrival (the moment the runner is handed the samples, or the
``arrival_ns`` the sampler stamped) to the buzzer command it causes, kept in
:class:`LatencyStats` and reported at the end of the session. Fixed-schedule cues (metronome,
repeaters) are issued before the pipeline processes the block; cues reacting to a detected event
wait for it, and the pipeline's share is reported apart from the engine's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from spinecoach.core.results import (
    ContractionResult,
    CoreEvent,
    HoldResult,
    RepResult,
)
from spinecoach.drivers.blocks import Block, ForceBlock, ImuBlock, StreamInfo
from spinecoach.engine.cues import Cue, CueEngine
from spinecoach.engine.library import Exercise
from spinecoach.engine.protocols import EngineEvent, Metric, SetProtocol, describe, make_protocol
from spinecoach.engine.store import Store


class PipelineLike(Protocol):
    """What the runner needs from ``spinecoach.core.pipeline.Pipeline``."""

    def feed_imu(self, name: str, index: Any, gyro_dps: Any, accel_g: Any, valid: Any) -> list[CoreEvent]: ...

    def feed_force(self, name: str, index: Any, force_n: Any, valid: Any) -> list[CoreEvent]: ...

    def finish(self) -> Any: ...


#: Makes the pipeline of one set: (the session's streams, the exercise) -> pipeline.
PipelineFactory = Callable[[list[StreamInfo], Exercise], PipelineLike]


class Haptics(Protocol):
    """The buzzer: ``play`` issues a named pattern and returns at once."""

    def play(self, name: str) -> None: ...


def core_pipeline(streams: list[StreamInfo], exercise: Exercise) -> PipelineLike:
    """The real measurement pipeline with the exercise's motion settings, its primary angle from
    the exercise's IMU placement when that stream is present (imported late: the engine also
    runs on scripted events)."""
    from spinecoach.core.pipeline import Pipeline

    imus = [s.name for s in streams if s.kind == "imu"]
    primary = exercise.imu if exercise.imu in imus else None
    return Pipeline(list(streams), exercise.motion_settings(), primary_imu=primary)


@dataclass
class LatencyStats:
    """Sample-arrival to buzzer-command latencies (ns), and the engine's own share of each
    (the latency less the time the pipeline spent on the block before the cue)."""

    samples_ns: list[int] = field(default_factory=list)
    engine_ns: list[int] = field(default_factory=list)

    def add(self, ns: int, pipeline_ns: int = 0) -> None:
        self.samples_ns.append(ns)
        self.engine_ns.append(ns - pipeline_ns)

    def percentile_ms(self, q: float, engine_only: bool = False) -> float:
        values = self.engine_ns if engine_only else self.samples_ns
        if not values:
            return float("nan")
        return float(np.percentile(np.asarray(values, np.float64), q)) / 1e6

    def metrics(self) -> list[Metric]:
        return [
            Metric("cue_latency_count", len(self.samples_ns), "count"),
            Metric("cue_latency_p50_ms", self.percentile_ms(50), "ms"),
            Metric("cue_latency_p99_ms", self.percentile_ms(99), "ms"),
            Metric("cue_latency_max_ms", self.percentile_ms(100), "ms"),
            Metric("cue_engine_p99_ms", self.percentile_ms(99, engine_only=True), "ms"),
        ]

    def describe(self) -> str:
        if not self.samples_ns:
            return "no buzzer commands"
        return (f"{len(self.samples_ns)} buzzer commands, sample-to-buzzer p50 "
                f"{self.percentile_ms(50):.3f} ms, p99 {self.percentile_ms(99):.3f} ms, "
                f"max {self.percentile_ms(100):.3f} ms (engine's own share p99 "
                f"{self.percentile_ms(99, engine_only=True):.3f} ms)")


@dataclass(frozen=True)
class SessionPlan:
    """What to run. ``sides``: one side for every set, or a sequence cycled over the sets."""

    exercise: Exercise
    protocol_id: str
    params: dict[str, Any]
    sets: int = 1
    set_rest_s: float = 60.0
    sides: Sequence[str | None] = (None,)

    def side(self, number: int) -> str | None:
        return self.sides[(number - 1) % len(self.sides)] if self.sides else None


@dataclass
class SetReport:
    """A finished set: identity, status and figures."""

    number: int
    set_id: int | None
    exercise: str
    protocol: str
    side: str | None
    prescription: str
    status: str
    targets_met: bool | None
    start_s: float
    end_s: float
    metrics: list[Metric]

    def figures(self) -> dict[str, float]:
        return {m.name: m.value for m in self.metrics if m.index is None}


@dataclass
class SessionReport:
    session_id: int | None
    sets: list[SetReport]
    latency: LatencyStats
    status: str


@dataclass
class _ActiveSet:
    number: int
    protocol: SetProtocol
    pipeline: PipelineLike
    set_id: int | None
    side: str | None
    start_s: float
    end_s: float
    #: (event kind, start time) of every result the pipeline reported as an event.
    seen: set[tuple[str, float]] = field(default_factory=set)


def _result_key(kind: str, data: object) -> tuple[str, float] | None:
    if kind == "rep" and isinstance(data, RepResult):
        return kind, data.start_s
    if kind == "hold_end" and isinstance(data, HoldResult):
        return kind, data.start_s
    if kind == "contraction" and isinstance(data, ContractionResult):
        return kind, data.onset_s
    return None


def _closed_at_finish(result: Any, seen: set[tuple[str, float]]) -> list[CoreEvent]:
    """Results the pipeline closed only at ``finish()`` (open at the end of the data), as events."""
    events = [CoreEvent("rep", r.end_s, r) for r in getattr(result, "reps", ())]
    events += [CoreEvent("hold_end", h.end_s, h) for h in getattr(result, "holds", ())]
    events += [CoreEvent("contraction", c.end_s, c) for c in getattr(result, "contractions", ())]
    return sorted((e for e in events if _result_key(e.kind, e.data) not in seen),
                  key=lambda e: e.t_s)


class SessionRunner:
    """Feeds blocks to the pipeline and protocol of the current set and delivers the cues."""

    def __init__(
        self,
        plan: SessionPlan,
        streams: Sequence[StreamInfo],
        *,
        cues: CueEngine,
        haptics: Haptics | None = None,
        store: Store | None = None,
        athlete: str = "default",
        backend: str = "",
        pipeline_factory: PipelineFactory = core_pipeline,
        on_line: Callable[[str], None] | None = None,
        on_cue: Callable[[Cue], None] | None = None,
        on_event: Callable[[CoreEvent], None] | None = None,
    ) -> None:
        self.plan = plan
        self.streams = list(streams)
        self.cues = cues
        self.haptics = haptics
        self.store = store
        self.pipeline_factory = pipeline_factory
        self._say = on_line or (lambda _line: None)
        self._on_cue = on_cue
        self._on_event = on_event
        self.latency = LatencyStats()
        self.reports: list[SetReport] = []
        self._active: _ActiveSet | None = None
        self._rest_until_s: float | None = None
        self._last_t_s = 0.0
        self._arrival_ns = 0
        self._pipeline_ns = 0
        self.session_id = (
            store.start_session(athlete, backend, cues.mode, {
                "exercise": plan.exercise.id, "protocol": plan.protocol_id,
                "sets": plan.sets, "params": plan.params,
            }) if store is not None else None
        )

    @property
    def finished(self) -> bool:
        """All planned sets are done."""
        return len(self.reports) >= self.plan.sets and self._active is None

    # Input ------------------------------------------------------------------------------------

    def feed(self, block: Block, arrival_ns: int | None = None) -> None:
        """Process one block (in arrival order). ``arrival_ns``: perf_counter_ns at arrival."""
        self._arrival_ns = time.perf_counter_ns() if arrival_ns is None else arrival_ns
        self._pipeline_ns = 0
        if not len(block) or self.finished:
            return
        t = block.t_s
        first_s, last_s = float(t[0]), float(t[-1])
        self._last_t_s = max(self._last_t_s, last_s)
        if self._active is None:
            if self._rest_until_s is not None:
                self._deliver(self.cues.advance(first_s))
                if first_s < self._rest_until_s:
                    return
                self._deliver(self.cues.submit([EngineEvent(
                    "set_rest_over", self._rest_until_s, {"next": len(self.reports) + 1})]))
                self._rest_until_s = None
            self._start_set(first_s)
        active = self._active
        assert active is not None
        active.end_s = max(active.end_s, last_s)
        if self.store is not None and active.set_id is not None:
            self.store.add_block(active.set_id, block)
        if isinstance(block, ForceBlock):
            active.protocol.on_force(t, block.force_n, block.valid)
        # Fixed-schedule cues (metronome, repeaters) need nothing from the pipeline: buzz them
        # before it spends time on the block.
        self._engine_events(active.protocol.lookahead(last_s))
        pipeline_start_ns = time.perf_counter_ns()
        if isinstance(block, ImuBlock):
            events = active.pipeline.feed_imu(block.info.name, block.index, block.gyro_dps,
                                              block.accel_g, block.valid)
        else:
            assert isinstance(block, ForceBlock)
            events = active.pipeline.feed_force(block.info.name, block.index, block.force_n,
                                                block.valid)
        self._pipeline_ns = time.perf_counter_ns() - pipeline_start_ns
        for event in sorted(events, key=lambda e: e.t_s):
            self._core_event(active, event)
        self._engine_events(active.protocol.on_time(last_s))
        self._deliver(self.cues.advance(last_s))
        if active.protocol.done:
            self._end_set("complete")

    def _core_event(self, active: _ActiveSet, event: CoreEvent) -> None:
        self._engine_events(active.protocol.on_time(event.t_s))
        self._deliver(self.cues.advance(event.t_s))
        if self._on_event is not None:
            self._on_event(event)
        key = _result_key(event.kind, event.data)
        if key is not None:
            active.seen.add(key)
            if self.store is not None and active.set_id is not None:
                self.store.add_result(active.set_id, event.data)
        self._engine_events(active.protocol.on_event(event))

    def _engine_events(self, events: list[EngineEvent]) -> None:
        if events:
            self._deliver(self.cues.submit(events))

    def _deliver(self, cues: Iterable[Cue]) -> None:
        for cue in cues:
            if cue.pattern is not None and self.haptics is not None:
                issued_ns = time.perf_counter_ns()
                self.haptics.play(cue.pattern)
                self.latency.add(issued_ns - self._arrival_ns, self._pipeline_ns)
            if self._on_cue is not None:
                self._on_cue(cue)
            self._say(f"{cue.t_s:9.2f} s  {cue.pattern or '-':<7}  {cue.message}")
            if self.store is not None and self._active is not None and self._active.set_id:
                self.store.add_cue(self._active.set_id, cue.t_s, cue.kind, cue.pattern,
                                   cue.message)

    # Sets -------------------------------------------------------------------------------------

    def _start_set(self, start_s: float) -> None:
        number = len(self.reports) + 1
        side = self.plan.side(number)
        exercise = self.plan.exercise
        protocol = make_protocol(self.plan.protocol_id, exercise, self.plan.params, start_s)
        pipeline = self.pipeline_factory(self.streams, exercise)
        prescription = describe(protocol)
        set_id = None
        if self.store is not None and self.session_id is not None:
            set_id = self.store.start_set(
                self.session_id, number, exercise.id, self.plan.protocol_id, side, prescription,
                self.plan.params, start_s, self.streams)
        self._active = _ActiveSet(number, protocol, pipeline, set_id, side, start_s, start_s)
        side_text = f" ({side})" if side else ""
        self._say(f"set {number}/{self.plan.sets}: {exercise.name}{side_text} - {prescription}")

    def _end_set(self, status: str) -> SetReport:
        active = self._active
        assert active is not None
        for event in _closed_at_finish(active.pipeline.finish(), active.seen):
            self._core_event(active, event)
        protocol = active.protocol
        end_s = protocol.done_s if protocol.done_s is not None else active.end_s
        metrics = protocol.summary()
        report = SetReport(
            active.number, active.set_id, self.plan.exercise.id, self.plan.protocol_id,
            active.side, describe(protocol), status, protocol.targets_met(), active.start_s,
            end_s, metrics,
        )
        if self.store is not None and active.set_id is not None:
            self.store.end_set(active.set_id, end_s, status, report.targets_met, metrics)
        self.reports.append(report)
        self._active = None
        self._say(f"set {active.number} {status}: {headline(report)}")
        if len(self.reports) < self.plan.sets:
            self._rest_until_s = end_s + self.plan.set_rest_s
            self._say(f"rest {self.plan.set_rest_s:g} s")
        return report

    def finish(self, status: str = "complete") -> SessionReport:
        """End the session: a set still running ends as ``stopped`` (the source ran out)."""
        if self._active is not None:
            self._end_set("stopped" if status == "complete" else status)
        if self.store is not None and self.session_id is not None:
            self.store.end_session(self.session_id, status, self.latency.metrics())
        self._say("latency: " + self.latency.describe())
        return SessionReport(self.session_id, self.reports, self.latency, status)


#: The figures a one-line set summary shows, per protocol, in order.
_HEADLINES: dict[str, tuple[str, ...]] = {
    "tempo_set": ("reps", "mean_rom_deg", "mean_eccentric_s", "eccentric_too_fast",
                  "velocity_loss_pct", "mean_sway_rms_deg"),
    "isometric_holds": ("holds_completed", "holds_attempted", "longest_hold_s"),
    "holds_with_transitions": ("holds_completed", "holds_attempted", "transitions"),
    "max_pulls": ("trials", "best_peak_force_n", "best_peak_rfd_n_per_s"),
    "repeaters": ("work_reps", "mean_force_n", "fatigue_index_pct"),
    "critical_force": ("critical_force_n", "w_prime_n_s", "cf_window_first_rep",
                       "cf_window_last_rep"),
    "sorensen": ("sorensen_hold_s",),
    "free": ("reps", "holds", "contractions", "peak_rotation_speed_dps", "mean_sway_rms_deg",
             "peak_force_n"),
}


def headline(report: SetReport) -> str:
    """A short summary of a set's figures with units."""
    by_name = {m.name: m for m in report.metrics if m.index is None}
    parts = []
    for name in _HEADLINES.get(report.protocol, ()):
        if name in by_name:
            m = by_name[name]
            value = f"{m.value:.0f}" if m.unit in ("count", "rep", "N", "N/s", "N*s") else f"{m.value:.1f}"
            unit = "" if m.unit in ("count", "rep", "") else f" {m.unit}"
            parts.append(f"{name} {value}{unit}")
    if report.targets_met is not None:
        parts.append("targets met" if report.targets_met else "targets not met")
    return ", ".join(parts) if parts else "nothing measured"


def replay_set(
    blocks: Iterable[Block], plan: SessionPlan, streams: Sequence[StreamInfo],
    pipeline_factory: PipelineFactory = core_pipeline,
) -> SetReport:
    """Run one stored set again (no store, no buzzer) and return its report."""
    runner = SessionRunner(
        SessionPlan(plan.exercise, plan.protocol_id, plan.params, sets=1,
                    sides=(plan.side(1),)),
        streams, cues=CueEngine(mode="tracking"), pipeline_factory=pipeline_factory,
    )
    for block in blocks:
        runner.feed(block)
    report = runner.finish()
    return report.sets[0]
