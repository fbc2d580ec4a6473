"""A measurement session speaking the hub protocol: blocks in, hub messages out (no Textual).

:class:`HubSession` is what both the coach's in-process feed and the daemon run: it feeds each
block to the measurement pipeline, turns the pipeline's live values into decimated ``frame``
messages and its core events into ``event`` messages, keeps the ``state`` (set counters, sensor
health, mode) and answers commands. Everything runs on sample time, so a replay produces exactly
the messages the live session produced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass, replace
from typing import Any, Protocol

from spinecoach import __version__
from spinecoach.core.results import CoreEvent, HoldResult, RepResult
from spinecoach.drivers.blocks import Block, StreamInfo
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


class LiveValues(Protocol):
    """The pipeline's newest values (sample time s, primary angle °, angular speed °/s, N)."""

    t_s: float
    angle_deg: float | None
    speed_dps: float | None
    force_n: float | None
    phase: str


class Measure(Protocol):
    """The streaming measurement pipeline as the session uses it."""

    def process(self, block: Block) -> Sequence[CoreEvent]:
        """Feed one block; return the core events it completed, in sample-time order."""

    @property
    def live(self) -> LiveValues | None:
        """Values at the last processed sample (None before the first)."""


def result_json(data: Any) -> dict[str, Any]:
    """A core result (dataclass) or a plain mapping as a JSON-ready dict."""
    if data is None:
        return {}
    if is_dataclass(data) and not isinstance(data, type):
        return asdict(data)
    if isinstance(data, dict):
        return dict(data)
    return {"value": data}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class HubSession:
    """One session: measurement, set bookkeeping and sensor health as hub messages.

    ``autostart``: open the first set at once (a replay is one recorded set; the standalone coach
    on sensors waits for ``start_set``). ``meta``: recording metadata (exercise, protocol, side).
    """

    def __init__(
        self,
        measure: Measure,
        backend: str,
        streams: Sequence[StreamInfo] = (),
        *,
        demo: bool = False,
        athlete: str = "",
        exercise: str = "",
        protocol: str = "free",
        side: str = "none",
        autostart: bool = False,
    ) -> None:
        self._measure = measure
        self._backend = backend
        self._demo = demo
        self._monitor = SensorMonitor(list(streams))
        self._decimator = FrameDecimator()
        self._state = State(
            athlete=athlete,
            exercise=exercise,
            protocol=protocol,
            target={"side": side},
            sensors=self._monitor.statuses(),
        )
        self._autostart = autostart
        self._hold_start_s: float | None = None
        self._sensors_sent_s = -math.inf
        self._now_s = 0.0
        self._set_reps: list[RepResult] = []
        self._set_holds: list[HoldResult] = []
        self._set_peaks_n: list[float] = []
        self._session_sets: list[Summary] = []

    # --- Stage -------------------------------------------------------------------------------

    def hello(self) -> Hello:
        return Hello(daemon=__version__, backend=self._backend, demo=self._demo)

    def start(self) -> list[Message]:
        if self._autostart:
            return self._start_set()
        return [self._state]

    def process(self, block: Block) -> list[Message]:
        out: list[Message] = []
        self._monitor.add(block)
        for core_event in self._measure.process(block):
            out.extend(self._on_core_event(core_event))
        live = self._measure.live
        if live is not None:
            self._now_s = max(self._now_s, live.t_s)
            frame = self._frame(live)
            if self._decimator.offer(frame) is not None:
                out.append(frame)
        out.extend(self._sensor_state())
        return out

    def handle(self, command: Command) -> list[Message]:
        cmd = command.cmd
        state = self._state
        if cmd == "start_set":
            if state.set_state == "running":
                return [Ack(cmd, False, "a set is already running: Enter stops it")]
            return [Ack(cmd, True, f"set {state.set_no + 1} started"), *self._start_set()]
        if cmd == "stop_set":
            if state.set_state != "running":
                return [Ack(cmd, False, "no set is running: Enter starts one")]
            return [Ack(cmd, True, f"set {state.set_no} stopped"), *self._stop_set()]
        if cmd == "set_mode":
            self._state = replace(state, mode=command.args["mode"])
            return [Ack(cmd, True, f"mode {command.args['mode']}"), self._state]
        if cmd == "tag_side":
            self._state = replace(state, target={**state.target, "side": command.args["side"]})
            return [Ack(cmd, True, f"side {command.args['side']}"), self._state]
        if cmd == "select_athlete":
            self._state = replace(state, athlete=command.args["name"])
            return [Ack(cmd, True, f"athlete {command.args['name']}"), self._state]
        if cmd in ("select_exercise", "select_protocol"):
            if state.set_state == "running":
                return [Ack(cmd, False, "stop the set first (Enter), then choose")]
            field = "exercise" if cmd == "select_exercise" else "protocol"
            self._state = replace(state, **{field: command.args["name"]})
            return [Ack(cmd, True, f"{field} {command.args['name']}"), self._state]
        return [Ack(cmd, False, self._refusal(cmd))]

    def _refusal(self, cmd: str) -> str:
        if self._backend.startswith("replay"):
            return f"{cmd.replace('_', ' ')} needs the sensors: this is a recording"
        return f"{cmd.replace('_', ' ')} is done by the daemon's calibration, not this session"

    def finish(self) -> list[Message]:
        out: list[Message] = []
        if self._state.set_state == "running":
            out.extend(self._stop_set())
        self._state = replace(self._state, set_state="done")
        out.append(self._state)
        out.append(self._session_summary())
        return out

    # --- internals ---------------------------------------------------------------------------

    def _frame(self, live: LiveValues) -> Frame:
        phase = live.phase if live.phase in PHASES else "moving"
        hold_s = live.t_s - self._hold_start_s if self._hold_start_s is not None else 0.0
        return Frame(
            t_s=live.t_s,
            angle_deg=_finite(live.angle_deg),
            speed_dps=_finite(live.speed_dps),
            force_n=_finite(live.force_n),
            phase=phase,  # type: ignore[arg-type]
            hold_s=max(0.0, hold_s),
        )

    def _on_core_event(self, core_event: CoreEvent) -> list[Message]:
        kind, data = core_event.kind, core_event.data
        message = ""
        if kind == "phase" or kind == "movement_onset" or kind == "contraction_onset":
            # Too frequent to list; the frame carries the phase.
            return []
        if kind == "hold_start":
            self._hold_start_s = core_event.t_s
        elif kind == "hold_end":
            self._hold_start_s = None
            if isinstance(data, HoldResult):
                self._set_holds.append(data)
        elif kind == "rep" and isinstance(data, RepResult):
            self._set_reps.append(data)
            self._state = replace(self._state, rep_no=len(self._set_reps))
        elif kind == "contraction":
            peak = getattr(data, "peak_force_n", None)
            if isinstance(peak, (int, float)):
                self._set_peaks_n.append(float(peak))
        elif kind == "limit":
            values = result_json(data)
            message = (
                f"Past the limit: {values.get('angle_deg', float('nan')):.0f}° "
                f"(limit {values.get('limit_deg', float('nan')):.0f}°)"
            )
        out: list[Message] = [
            Event(core_event.t_s, kind, message, "", result_json(data)),
        ]
        if kind == "rep":
            out.append(self._state)
        return out

    def _sensor_state(self) -> list[Message]:
        statuses = self._monitor.statuses()
        changed = {n: s.status for n, s in statuses.items()} != {
            n: s.status for n, s in self._state.sensors.items()
        }
        if not changed and self._now_s - self._sensors_sent_s < SENSOR_REFRESH_S:
            return []
        self._sensors_sent_s = self._now_s
        self._state = replace(self._state, sensors=statuses)
        return [self._state]

    def _start_set(self) -> list[Message]:
        self._set_reps, self._set_holds, self._set_peaks_n = [], [], []
        self._state = replace(
            self._state, set_state="running", set_no=self._state.set_no + 1, rep_no=0
        )
        return [self._state]

    def _stop_set(self) -> list[Message]:
        summary = self._set_summary()
        self._session_sets.append(summary)
        self._state = replace(self._state, set_state="rest")
        return [summary, self._state]

    def _set_summary(self) -> Summary:
        reps, holds = self._set_reps, self._set_holds
        figures: dict[str, float | int | str | None] = {"reps": len(reps)}
        if reps:
            figures["mean_rom_deg"] = _mean([r.rom_deg for r in reps])
            figures["mean_eccentric_s"] = _mean([r.tempo.eccentric_s for r in reps])
            figures["mean_concentric_s"] = _mean([r.tempo.concentric_s for r in reps])
            figures["peak_eccentric_speed_dps"] = max(r.peak_eccentric_speed_dps for r in reps)
        peaks = [r.peak_force_n for r in reps if r.peak_force_n is not None] + self._set_peaks_n
        figures["peak_force_n"] = max(peaks) if peaks else None
        if holds:
            figures["holds"] = len(holds)
            figures["best_hold_s"] = max(h.duration_s for h in holds)
        rows = [
            {
                "rom_deg": r.rom_deg,
                "eccentric_s": r.tempo.eccentric_s,
                "concentric_s": r.tempo.concentric_s,
                "peak_eccentric_speed_dps": r.peak_eccentric_speed_dps,
                "peak_force_n": r.peak_force_n,
            }
            for r in reps
        ] + [{"hold_s": h.duration_s, "mean_force_n": h.mean_force_n} for h in holds]
        return Summary("set", self._state.set_no, self._state.exercise, figures, rows)

    def _session_summary(self) -> Summary:
        sets = self._session_sets
        reps = sum(int(s.figures.get("reps") or 0) for s in sets)
        peaks = [float(p) for s in sets if isinstance(p := s.figures.get("peak_force_n"), float)]
        holds = [float(h) for s in sets if isinstance(h := s.figures.get("best_hold_s"), float)]
        figures: dict[str, float | int | str | None] = {
            "sets": len(sets),
            "reps": reps,
            "peak_force_n": max(peaks) if peaks else None,
            "best_hold_s": max(holds) if holds else None,
        }
        rows = [{"set": s.set_no, **{k: v for k, v in s.figures.items()}} for s in sets]
        return Summary("session", 0, self._state.exercise, figures, rows)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
