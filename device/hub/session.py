"""A coached session speaking the hub protocol: blocks in, hub messages out (no Textual).

:class:`HubSession` is what both the coach's in-process feed and the daemon run. With an
exercise it drives the engine's :class:`~spinecoach.engine.runner.SessionRunner` (protocol,
cues, buzzer, store); without one it runs the bare measurement pipeline, which only measures.
Either way it turns the pipeline's live values into decimated ``frame`` messages, core events
and cues into ``event`` messages, set starts and ends into ``state`` and ``summary`` messages,
tracks sensor health and answers commands. Everything that decides what happens reads sample
time only, so a replay produces exactly the messages the live session produced.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from typing import Any, Protocol

from spinecoach import __version__
from spinecoach.core.imu_calibration import ImuCalibration
from spinecoach.core.results import CoreEvent
from spinecoach.drivers.blocks import Block, ForceBlock, ImuBlock, StreamInfo
from spinecoach.engine.cues import Cue, CueEngine, rules_for
from spinecoach.engine.library import Exercise, Library, parse_tempo
from spinecoach.engine.protocols import Metric, protocol_params
from spinecoach.engine.runner import (
    Haptics,
    LatencyStats,
    PipelineFactory,
    PipelineLike,
    SessionPlan,
    SessionRunner,
    SetReport,
    core_pipeline,
)
from spinecoach.engine.store import Store
from spinecoach.errors import SpinecoachError
from spinecoach.hub.messages import (
    PHASES,
    Ack,
    Command,
    Event,
    Frame,
    FrameDecimator,
    Hello,
    Message,
    State,
    Summary,
)
from spinecoach.hub.sensors import SensorMonitor

#: Sensor health is re-sent at most this often (s of sample time) unless a status changes.
SENSOR_REFRESH_S = 1.0
#: Sensor statuses are looked at again after this much sample time (s), and at once when a block
#: brings a stream's first samples or lost samples (a status changes otherwise only with time:
#: stale after a second, ok again five seconds after a loss).
SENSOR_CHECK_S = 0.1
#: Core event kinds not sent as events: too frequent, and the frame carries the phase.
QUIET_KINDS = frozenset({"phase", "movement_onset", "contraction_onset"})


class SampleListener(Protocol):
    """Receives the measuring pipeline's full-rate samples (see :meth:`HubSession.listen`)."""

    def samples(self, kind: str, t_s: Any, values: Any) -> None:
        """A block of ``angle_deg`` (primary angle) or ``force_n`` samples at times ``t_s``."""

    def phase(self, t_s: float, label: str) -> None:
        """The movement phase ``label`` from sample time ``t_s`` on."""


#: Makes a measure-only pipeline (no exercise) for the session's streams.
BarePipelineFactory = Callable[[list[StreamInfo]], PipelineLike]


def bare_core_pipeline(streams: list[StreamInfo]) -> PipelineLike:
    """The real measurement pipeline without exercise settings (imported late, as the engine's)."""
    from spinecoach.core.pipeline import Pipeline

    return Pipeline(list(streams))  # type: ignore[no-any-return]


def calibrated_streams(streams: Sequence[StreamInfo],
                       imu_calibration: Mapping[str, ImuCalibration] | None) -> list[StreamInfo]:
    """``streams`` with the IMU calibrations of ``imu_calibration`` (by stream name) on them."""
    calibration = imu_calibration or {}
    return [replace(s, **calibration[s.name].stream_fields())
            if s.kind == "imu" and s.name in calibration else s for s in streams]


def result_json(data: Any) -> dict[str, Any]:
    """A core result (dataclass) or a plain mapping as a JSON-ready dict."""
    if data is None:
        return {}
    if is_dataclass(data) and not isinstance(data, type):
        return asdict(data)
    if isinstance(data, dict):
        return dict(data)
    return {"value": data}


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class _TappedPipeline:
    """A pipeline handed to the runner, remembered so the session can read its live values."""

    def __init__(self, inner: PipelineLike) -> None:
        self.inner = inner
        self.fed = False

    def feed_imu(self, name: str, index: Any, gyro_dps: Any, accel_g: Any, valid: Any) -> list[CoreEvent]:
        self.fed = True
        return self.inner.feed_imu(name, index, gyro_dps, accel_g, valid)

    def feed_force(self, name: str, index: Any, force_n: Any, valid: Any) -> list[CoreEvent]:
        self.fed = True
        return self.inner.feed_force(name, index, force_n, valid)

    def finish(self) -> Any:
        return self.inner.finish()

    @property
    def live(self) -> dict[str, Any]:
        return dict(getattr(self.inner, "live", {}) or {})


def _feed(pipeline: PipelineLike, block: Block) -> list[CoreEvent]:
    if isinstance(block, ImuBlock):
        return pipeline.feed_imu(block.info.name, block.index, block.gyro_dps, block.accel_g,
                                 block.valid)
    assert isinstance(block, ForceBlock)
    return pipeline.feed_force(block.info.name, block.index, block.force_n, block.valid)


@dataclass
class SessionChoice:
    """What the next session runs: athlete, exercise and protocol ids, side, mode, and protocol
    parameters (e.g. a scenario's scripted reps and tempo; dropped when the choice changes)."""

    athlete: str = ""
    exercise: str = ""
    protocol: str = ""
    side: str = "none"
    mode: str = "training"
    params: dict[str, Any] = field(default_factory=dict)


class HubSession:
    """One coach session: measurement, engine, sensor health and commands as hub messages.

    ``library``: the exercise library (None: measure only, whatever the choice says).
    ``autostart``: start a session at once (a replay, the demo); otherwise ``start_set`` does.
    ``store``/``haptics``: where sets are stored and cues buzzed (None: neither).
    ``problems``: a list the store appends its one-line problem reports to; each is shown as a
    cue (kind ``cue``, rule ``store``).
    ``imu_calibration``: IMU calibrations by stream name, put on the session's stream table
    (:func:`calibrated_streams`), so every pipeline of the session applies them and every
    stored set carries them: a replay of the set measures the same angles.
    """

    def __init__(
        self,
        streams: Sequence[StreamInfo],
        backend: str,
        choice: SessionChoice,
        *,
        library: Library | None = None,
        demo: bool = False,
        autostart: bool = False,
        store: Store | None = None,
        haptics: Haptics | None = None,
        pipeline_factory: PipelineFactory = core_pipeline,
        bare_pipeline: BarePipelineFactory = bare_core_pipeline,
        problems: list[str] | None = None,
        imu_calibration: Mapping[str, ImuCalibration] | None = None,
    ) -> None:
        self._streams = calibrated_streams(streams, imu_calibration)
        # The store reports trouble (disk full, read-only) from its own thread by appending
        # here; list.append and pop(0) are atomic, and the session shows each once.
        self._problems = problems if problems is not None else []
        self._backend = backend
        self._choice = choice
        self._library = library
        self._demo = demo
        self._autostart = autostart
        self._store = store
        self._haptics = haptics
        self._pipeline_factory = pipeline_factory
        self._bare_pipeline = bare_pipeline
        self._monitor = SensorMonitor(self._streams)
        self._decimator = FrameDecimator()
        self._runner: SessionRunner | None = None
        self._cues: CueEngine | None = None
        self._set_pipeline: _TappedPipeline | None = None
        self._idle_pipeline: PipelineLike | None = None
        self._reports_seen = 0
        self._listener: SampleListener | None = None
        self._pending: list[Message] = []
        self._hold_start_s: float | None = None
        self._sensors_sent_s = -math.inf
        self._sensors_checked_s = -math.inf
        self._now_s = 0.0
        self._state = State(
            athlete=choice.athlete,
            exercise=choice.exercise,
            protocol=choice.protocol or self._default_protocol(choice.exercise),
            target=self._target(),
            sensors=self._monitor.statuses(),
            mode=choice.mode,  # type: ignore[arg-type]
        )

    # --- Stage -------------------------------------------------------------------------------

    def stream(self, name: str) -> StreamInfo | None:
        """The session's entry for stream ``name`` (None when it has none)."""
        return next((info for info in self._streams if info.name == name), None)

    def hello(self) -> Hello:
        return Hello(daemon=__version__, backend=self._backend, demo=self._demo)

    def start(self) -> list[Message]:
        if self._autostart:
            self._open_session()
        return [self._state]

    def process(self, block: Block, arrival_ns: int | None = None) -> list[Message]:
        """Messages caused by one block. ``arrival_ns``: ``perf_counter_ns`` when the sampler
        handed the block over (the start of the sample-to-buzzer latency; default: now)."""
        if len(block) == 0:
            return []
        sensor_news = self._monitor.add(block)
        self._now_s = max(self._now_s, float(block.t_s[-1]))
        if self._set_pipeline is not None:
            self._set_pipeline.fed = False
        if self._runner is not None and not self._runner.finished:
            self._runner.feed(block, arrival_ns)
            self._check_set_end()
        elif self._runner is None and self._autostart_bare():
            for event in _feed(self._bare(), block):
                self._on_core_event(event)
        tapped = self._set_pipeline
        if tapped is None or not tapped.fed:
            # Between sets (rest, before the first, after the last) the display still moves.
            for event in _feed(self._idle(), block):
                if event.kind == "phase" and self._listener is not None:
                    self._listener.phase(event.t_s, str(event.data))
            live = getattr(self._idle(), "live", {}) or {}
        else:
            live = tapped.live
        self._frame(live)
        if sensor_news or self._now_s - self._sensors_checked_s >= SENSOR_CHECK_S:
            self._sensor_state()
        while self._problems:
            self._pending.append(
                Event(self._now_s, "cue", self._problems.pop(0), "", {"rule": "store"})
            )
        out, self._pending = self._pending, []
        return out

    def handle(self, command: Command) -> list[Message]:
        try:
            ack = self._command(command)
        except SpinecoachError as error:
            ack = Ack(command.cmd, False, str(error))
        out = [ack, *self._pending]
        self._pending = []
        return out

    def finish(self) -> list[Message]:
        if self._runner is not None and not self._runner.finished:
            self._runner.finish()
            self._check_set_end()
        self._state = replace(self._state, set_state="done")
        self._pending.append(self._state)
        if self._runner is not None:
            self._pending.append(self._session_summary())
        out, self._pending = self._pending, []
        return out

    def listen(self, listener: SampleListener | None) -> None:
        """Hand every primary-angle and force sample the measuring pipeline processes, and its
        phase changes, to ``listener`` (None: to no one), e.g. a band-profile capture."""
        self._listener = listener
        tapped = self._set_pipeline.inner if self._set_pipeline is not None else None
        for pipeline in (self._idle_pipeline, tapped):
            if pipeline is not None:
                self._listened(pipeline)

    def _listened(self, pipeline: PipelineLike) -> PipelineLike:
        """``pipeline`` reporting its samples to the listener, if any: without one the pipeline
        spends nothing on it (a pipeline without the hook, e.g. a test's fake, reports none)."""
        if hasattr(pipeline, "on_samples"):
            pipeline.on_samples = self._on_samples if self._listener is not None else None
        return pipeline

    def _on_samples(self, kind: str, t_s: Any, values: Any) -> None:
        if self._listener is not None:
            self._listener.samples(kind, t_s, values)

    @property
    def latency(self) -> LatencyStats | None:
        """Sample-to-buzzer latencies of the engine session (None before one started)."""
        return self._runner.latency if self._runner is not None else None

    # --- commands ----------------------------------------------------------------------------

    def _running(self) -> bool:
        return self._runner is not None and not self._runner.finished

    def _command(self, command: Command) -> Ack:
        cmd, args = command.cmd, command.args
        if cmd == "start_set":
            if self._running():
                return Ack(cmd, False, "a session is running: Enter stops it")
            if not self._open_session():
                return Ack(cmd, False, "choose an exercise first (h: home)")
            return Ack(cmd, True, "session started: the set begins with the next samples")
        if cmd == "stop_set":
            if not self._running():
                return Ack(cmd, False, "no set is running: Enter starts one")
            assert self._runner is not None
            self._runner.finish("stopped")
            self._check_set_end()
            self._state = replace(self._state, set_state="done")
            self._pending.extend([self._state, self._session_summary()])
            return Ack(cmd, True, "stopped")
        if cmd == "set_mode":
            self._choice.mode = args["mode"]
            if self._cues is not None:
                self._cues.mode = args["mode"]
            self._set_state(mode=args["mode"])
            return Ack(cmd, True, f"{args['mode']} mode")
        if cmd == "tag_side":
            self._choice.side = args["side"]
            self._set_state(target={**self._state.target, "side": args["side"]})
            return Ack(cmd, True, f"side {args['side']} from the next set")
        if cmd in ("select_athlete", "select_exercise", "select_protocol"):
            if self._running():
                return Ack(cmd, False, "stop the session first (Enter), then choose")
            return self._select(cmd, args["name"])
        if self._backend.startswith("replay"):
            return Ack(cmd, False, f"{cmd.replace('_', ' ')} needs the sensors: this is a recording")
        return Ack(cmd, False, f"{cmd.replace('_', ' ')}: use `spinecoach calibrate` on the device")

    def _select(self, cmd: str, name: str) -> Ack:
        if cmd == "select_athlete":
            self._choice.athlete = name
            self._set_state(athlete=name)
            return Ack(cmd, True, f"athlete {name}")
        if self._library is None:
            return Ack(cmd, False, "no exercise library on this device")
        if cmd == "select_exercise":
            exercise = self._library.get(name)  # UsageError names the choices
            self._choice.exercise = exercise.id
            self._choice.protocol = exercise.default_protocol
            self._choice.params = {}
        else:
            if not self._choice.exercise:
                return Ack(cmd, False, "choose an exercise first")
            protocol_params(name, self._library.get(self._choice.exercise))  # validates the id
            self._choice.protocol = name
            self._choice.params = {}
        self._idle_pipeline = None  # the exercise's motion settings apply to the display too
        self._set_state(exercise=self._choice.exercise, protocol=self._choice.protocol,
                        target=self._target())
        what = "exercise" if cmd == "select_exercise" else "protocol"
        return Ack(cmd, True, f"{what} {name.replace('_', ' ')}")

    # --- sessions and sets -------------------------------------------------------------------

    def _plan(self) -> SessionPlan | None:
        if self._library is None or not self._choice.exercise:
            return None
        exercise = self._library.get(self._choice.exercise)
        protocol = self._choice.protocol or exercise.default_protocol
        side = None if self._choice.side == "none" else self._choice.side
        params = protocol_params(protocol, exercise, self._choice.params)
        return SessionPlan(exercise, protocol, params, sides=(side,))

    def _default_protocol(self, exercise_id: str) -> str:
        if self._library is None or not exercise_id or exercise_id not in self._library:
            return "free" if not exercise_id else ""
        return self._library.get(exercise_id).default_protocol

    def _open_session(self) -> bool:
        """A new engine session with the current choice; False when there is no exercise."""
        plan = self._plan()
        if plan is None:
            return self._autostart  # measure-only sessions start with the samples
        self._cues = CueEngine(rules_for(plan.exercise.cues), self._choice.mode)
        self._runner = SessionRunner(
            plan, self._streams, cues=self._cues, haptics=self._haptics, store=self._store,
            athlete=self._choice.athlete or "default", backend=self._backend,
            pipeline_factory=self._tap, on_cue=self._on_cue, on_event=self._on_core_event,
        )
        self._reports_seen = 0
        return True

    def _autostart_bare(self) -> bool:
        """Measure-only (no exercise): the bare pipeline runs as the set."""
        if self._state.set_state == "idle" and self._autostart:
            self._set_state(set_state="running", set_no=1, rep_no=0)
        return self._state.set_state == "running"

    def _bare(self) -> PipelineLike:
        if self._set_pipeline is None:
            self._set_pipeline = _TappedPipeline(self._listened(self._bare_pipeline(self._streams)))
        return self._set_pipeline

    def _idle(self) -> PipelineLike:
        """The display's pipeline while no set runs (the exercise's settings when chosen)."""
        if self._idle_pipeline is None:
            plan = self._plan()
            self._idle_pipeline = self._listened(
                self._pipeline_factory(self._streams, plan.exercise) if plan is not None
                else self._bare_pipeline(self._streams)
            )
        return self._idle_pipeline

    def _tap(self, streams: list[StreamInfo], exercise: Exercise) -> PipelineLike:
        """The runner's pipeline factory: a set starts."""
        pipeline = self._listened(self._pipeline_factory(streams, exercise))
        self._set_pipeline = _TappedPipeline(pipeline)
        self._hold_start_s = None
        self._set_state(set_state="running", set_no=self._state.set_no + 1, rep_no=0,
                        target=self._target())
        return self._set_pipeline

    def _check_set_end(self) -> None:
        runner = self._runner
        if runner is None:
            return
        while self._reports_seen < len(runner.reports):
            report = runner.reports[self._reports_seen]
            self._reports_seen += 1
            self._pending.append(_set_summary(report))
            self._set_pipeline = None
            self._set_state(set_state="done" if runner.finished else "rest")

    def _session_summary(self) -> Summary:
        reports = self._runner.reports if self._runner is not None else []
        rows: list[dict[str, Any]] = []
        totals: dict[str, float | int | str | None] = {"sets": len(reports)}
        for report in reports:
            figures = report.figures()
            rows.append({"set": report.number, "status": report.status, **figures})
            for name, value in figures.items():
                if name.startswith(("peak_", "best_", "longest_")):
                    old = totals.get(name)
                    totals[name] = value if not isinstance(old, float) else max(old, value)
                elif name in ("reps", "holds", "contractions"):
                    old_count = totals.get(name)
                    totals[name] = int(value) + (old_count if isinstance(old_count, int) else 0)
        return Summary("session", 0, self._choice.exercise, totals, rows)

    # --- messages ----------------------------------------------------------------------------

    def _target(self) -> dict[str, Any]:
        """The prescription for the state's ``target``."""
        target: dict[str, Any] = {"side": self._choice.side}
        plan = self._plan()
        if plan is None:
            return target
        params, exercise = plan.params, plan.exercise
        if "reps" in params:
            target["reps"] = params["reps"]
        if "holds" in params:
            target["reps"] = params["holds"]
        if plan.protocol_id in ("tempo_set", "free"):
            tempo = parse_tempo(params["tempo"]) if params.get("tempo") else exercise.tempo
            target["tempo_s"] = [tempo.eccentric_s, tempo.pause_lengthened_s,
                                 tempo.concentric_s, tempo.pause_shortened_s]
        if "target_s" in params:
            target["hold_s"] = params["target_s"] or exercise.hold_target_s
        if "rest_s" in params:
            target["rest_s"] = params["rest_s"]
        target["sets"] = plan.sets
        return target

    def _set_state(self, **changes: Any) -> None:
        self._state = replace(self._state, **changes)
        self._pending.append(self._state)

    def _on_core_event(self, event: CoreEvent) -> None:
        if event.kind == "hold_start":
            self._hold_start_s = event.t_s
        elif event.kind == "hold_end":
            self._hold_start_s = None
        elif event.kind == "phase" and self._listener is not None:
            self._listener.phase(event.t_s, str(event.data))
        if event.kind in QUIET_KINDS:
            return
        self._pending.append(Event(event.t_s, event.kind, "", "", result_json(event.data)))
        if event.kind == "rep":
            self._set_state(rep_no=self._state.rep_no + 1)

    def _on_cue(self, cue: Cue) -> None:
        self._pending.append(
            Event(cue.t_s, "cue", cue.message, cue.pattern or "", {"rule": cue.kind})
        )

    def _frame(self, live: dict[str, Any]) -> None:
        if not self._decimator.due(self._now_s):
            return
        phase = live.get("phase", "still")
        frame = Frame(
            t_s=self._now_s,
            angle_deg=_finite(live.get("angle_deg")),
            speed_dps=_finite(live.get("omega_dps")),
            force_n=_finite(live.get("force_n")),
            phase=phase if phase in PHASES else "moving",  # type: ignore[arg-type]
            hold_s=self._now_s - self._hold_start_s if self._hold_start_s is not None else 0.0,
        )
        if self._decimator.offer(frame) is not None:
            self._pending.append(frame)

    def _sensor_state(self) -> None:
        self._sensors_checked_s = self._now_s
        statuses = self._monitor.statuses()
        changed = {n: s.status for n, s in statuses.items()} != {
            n: s.status for n, s in self._state.sensors.items()
        }
        if changed or self._now_s - self._sensors_sent_s >= SENSOR_REFRESH_S:
            self._sensors_sent_s = self._now_s
            self._set_state(sensors=statuses)


def _set_summary(report: SetReport) -> Summary:
    """A finished set's figures (whole-set metrics) and rows (per-rep/per-trial metrics)."""
    figures: dict[str, float | int | str | None] = {
        m.name: _figure(m) for m in report.metrics if m.index is None
    }
    figures["status"] = report.status
    if report.targets_met is not None:
        figures["targets"] = "met" if report.targets_met else "not met"
    rows: dict[int, dict[str, Any]] = {}
    for m in report.metrics:
        if m.index is not None:
            rows.setdefault(m.index, {})[m.name] = _figure(m)
    return Summary("set", report.number, report.exercise, figures,
                   [rows[k] for k in sorted(rows)])


def _figure(metric: Metric) -> float | int | None:
    if metric.unit in ("count", "rep") and math.isfinite(metric.value):
        return int(metric.value)
    return metric.value if math.isfinite(metric.value) else None

