"""Protocols: one set of an exercise as a state machine driven by core events and sample time.

A protocol never reads the wall clock. The runner hands it, in sample-time order:

* :meth:`SetProtocol.on_time` with the time (s) the samples have reached, first before each core
  event (with that event's time) and then with the end of every block, so scheduled things
  (metronome, "go", rest over) fire at their exact due time whatever the block size;
* :meth:`SetProtocol.on_event` with each :class:`~spinecoach.core.results.CoreEvent`;
* :meth:`SetProtocol.on_force` with the force samples (repeaters average the force over the "on"
  time themselves).

Each call returns :class:`EngineEvent` objects; the cue rules (``cues.py``) decide what the athlete
feels and reads. :meth:`SetProtocol.summary` gives the set's figures as :class:`Metric` values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from spinecoach.config import Key, check_value
from spinecoach.core.results import (
    ContractionResult,
    CoreEvent,
    HoldResult,
    LoweringResult,
    RepResult,
    Tempo,
)
from spinecoach.engine.library import Exercise, format_tempo, parse_tempo
from spinecoach.errors import UsageError

#: How a hold ended, in the athlete's words (the core's ``HoldResult.end_reason`` codes): the
#: codes are identifiers, never shown; cues and the coach's hold panel say these.
HOLD_END_WORDS: dict[str, str] = {
    "left_band": "angle left the band",
    "force_unstable": "band tension lost",
    "released": "released",
}


def hold_end_words(reason: str) -> str:
    """``end_reason`` in words; a code without words is said as "ended" rather than shown."""
    return HOLD_END_WORDS.get(reason, "ended")


@dataclass(frozen=True)
class EngineEvent:
    """Something the coaching rules may react to, at the sample time ``t_s`` that triggered it.

    ``kind`` names the cue rule (see ``cues.DEFAULT_RULES``); ``values`` fill its message.
    """

    kind: str
    t_s: float
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    """One figure of a set. ``index`` numbers per-rep/per-trial values (None: the whole set)."""

    name: str
    value: float
    unit: str
    index: int | None = None


#: Protocol ids in the order the documentation lists them.
PROTOCOL_IDS = (
    "tempo_set", "isometric_holds", "holds_with_transitions", "max_pulls", "repeaters",
    "critical_force", "sorensen", "free",
)


class SetProtocol:
    """Base: limits become angle-limit events; results are collected for the generic summary."""

    id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: Parameters with defaults; an exercise's ``[protocols.ID]`` table and flags override them.
    PARAMS: ClassVar[dict[str, Key]] = {}

    def __init__(self, exercise: Exercise, params: Mapping[str, Any], start_s: float) -> None:
        self.exercise = exercise
        self.params = params
        self.start_s = start_s
        self.done = False
        self.done_s: float | None = None
        self.reps: list[RepResult] = []
        self.holds: list[HoldResult] = []
        self.contractions: list[ContractionResult] = []
        self._now_s = start_s

    # Inputs -----------------------------------------------------------------------------------

    def on_time(self, t_s: float) -> list[EngineEvent]:
        """Samples have reached ``t_s``: fire what is due up to then."""
        if t_s < self._now_s:
            return []
        self._now_s = t_s
        return [] if self.done else self._scheduled(t_s) + self._due(t_s)

    def lookahead(self, t_s: float) -> list[EngineEvent]:
        """Fixed-schedule events due by ``t_s`` (the last sample of a block that just arrived).

        Only what no core event can change (a metronome, the repeaters' clock) fires here, so
        the runner can buzz them before the pipeline has processed the block.
        """
        return [] if self.done else self._scheduled(t_s)

    def on_event(self, event: CoreEvent) -> list[EngineEvent]:
        """React to one core event (ignored once the set is complete)."""
        if self.done:
            return []
        if event.kind == "limit":
            data = event.data or {}
            return [EngineEvent("angle_limit", event.t_s, {
                "angle_deg": float(data.get("angle_deg", float("nan"))),
                "limit_deg": float(data.get("limit_deg", float("nan"))),
            })]
        if event.kind == "rep" and isinstance(event.data, RepResult):
            self.reps.append(event.data)
        elif event.kind == "hold_end" and isinstance(event.data, HoldResult):
            self.holds.append(event.data)
        elif event.kind == "contraction" and isinstance(event.data, ContractionResult):
            self.contractions.append(event.data)
        return self._event(event)

    def on_force(
        self, t_s: npt.NDArray[np.float64], force_n: npt.NDArray[np.float64],
        valid: npt.NDArray[np.bool_],
    ) -> None:
        """Force samples of the set (N at sample times s); most protocols need only events."""

    # Hooks for subclasses ---------------------------------------------------------------------

    def _scheduled(self, t_s: float) -> list[EngineEvent]:
        """Events on a fixed clock, independent of core events (see :meth:`lookahead`)."""
        return []

    def _due(self, t_s: float) -> list[EngineEvent]:
        return []

    def _event(self, event: CoreEvent) -> list[EngineEvent]:
        return []

    def _complete(self, t_s: float, **values: Any) -> EngineEvent:
        self.done = True
        self.done_s = t_s
        return EngineEvent("set_complete", t_s, {"protocol": self.title, **values})

    # Results ----------------------------------------------------------------------------------

    def summary(self) -> list[Metric]:
        """Figures of the set: what every protocol measures plus the protocol's own."""
        return generic_metrics(self.reps, self.holds, self.contractions) + self._own_metrics()

    def _own_metrics(self) -> list[Metric]:
        return []

    def targets_met(self) -> bool | None:
        """Whether the set reached its prescription (None when the protocol has no target)."""
        return None


def generic_metrics(
    reps: Sequence[RepResult], holds: Sequence[HoldResult], contractions: Sequence[ContractionResult]
) -> list[Metric]:
    """Counts, means and bests of whatever the core measured during a set."""
    out: list[Metric] = []
    if reps:
        out += [
            Metric("reps", len(reps), "count"),
            Metric("mean_rom_deg", _mean(r.rom_deg for r in reps), "deg"),
            Metric("mean_eccentric_s", _mean(r.tempo.eccentric_s for r in reps), "s"),
            Metric("min_eccentric_s", min(r.tempo.eccentric_s for r in reps), "s"),
            Metric("mean_concentric_s", _mean(r.tempo.concentric_s for r in reps), "s"),
            Metric("peak_eccentric_speed_dps", max(r.peak_eccentric_speed_dps for r in reps), "deg/s"),
            Metric("peak_concentric_speed_dps", max(r.peak_concentric_speed_dps for r in reps),
                   "deg/s"),
        ]
        sparc = [r.eccentric_sparc for r in reps if r.eccentric_sparc is not None]
        if sparc:
            out.append(Metric("mean_eccentric_sparc", _mean(sparc), ""))
        overshoot = [r.overshoot_deg for r in reps if r.overshoot_deg is not None]
        if overshoot:
            out.append(Metric("max_overshoot_deg", max(overshoot), "deg"))
        peaks = [r.peak_force_n for r in reps if r.peak_force_n is not None]
        if peaks:
            out.append(Metric("rep_peak_force_n", max(peaks), "N"))
        out += _optional(reps, (
            ("stabilisation_s", "mean_stabilisation_s", "s", _mean),
            ("sway_rms_deg", "mean_sway_rms_deg", "deg", _mean),
            ("rotation_speed_dps", "peak_rotation_speed_dps", "deg/s", max),
            ("onset_asynchrony_s", "mean_onset_asynchrony_s", "s", _mean),
            ("band_stiffness_n_per_deg", "mean_band_stiffness_n_per_deg", "N/deg", _mean),
        ))
        for i, rep in enumerate(reps, 1):
            out.append(Metric("rep_eccentric_s", rep.tempo.eccentric_s, "s", i))
            out.append(Metric("rep_mean_concentric_speed_dps", rep.mean_concentric_speed_dps,
                              "deg/s", i))
    if holds:
        out += [
            Metric("holds", len(holds), "count"),
            Metric("longest_hold_s", max(h.duration_s for h in holds), "s"),
            Metric("total_hold_s", sum(h.duration_s for h in holds), "s"),
        ]
        out += _optional(holds, (
            ("stabilisation_s", "hold_stabilisation_s", "s", _mean),
            ("sway_rms_deg", "hold_sway_rms_deg", "deg", _mean),
            ("overshoot_deg", "hold_max_overshoot_deg", "deg", max),
        ))
    if contractions:
        out += [
            Metric("contractions", len(contractions), "count"),
            Metric("peak_force_n", max(c.peak_force_n for c in contractions), "N"),
            Metric("peak_rfd_n_per_s", max(c.peak_rfd_n_per_s for c in contractions), "N/s"),
        ]
    return out


def _optional(results: Sequence[Any], fields: Sequence[tuple[str, str, str, Any]]) -> list[Metric]:
    """Figures from result fields the kernels fill only when they apply (None otherwise)."""
    out = []
    for attribute, name, unit, combine in fields:
        values = [v for r in results if (v := getattr(r, attribute, None)) is not None]
        if values:
            out.append(Metric(name, float(combine(values)), unit))
    return out


def hold_started_s(event: CoreEvent) -> float:
    """When a hold began: the pipeline decides a hold after its minimum duration and reports the
    start it found in ``data["start_s"]``; the event time is when it decided."""
    data = event.data
    if isinstance(data, dict) and isinstance(data.get("start_s"), (int, float)):
        return float(data["start_s"])
    return event.t_s


def _mean(values: Any) -> float:
    items = list(values)
    return float(sum(items) / len(items)) if items else float("nan")


def _rep_event(rep: RepResult, t_s: float, n: int, of: int | None) -> EngineEvent:
    """A counted rep; ``of`` is the prescribed number (None in free mode)."""
    return EngineEvent("rep", t_s, {
        "n": n, "reps": of, "of": "" if of is None else f"/{of}", "rom_deg": rep.rom_deg,
        "eccentric_s": rep.tempo.eccentric_s, "concentric_s": rep.tempo.concentric_s,
    })


# Tempo sets -----------------------------------------------------------------------------------

_PHASE_WORDS = ("lower", "pause", "lift", "pause")


class TempoSet(SetProtocol):
    """Reps × tempo with a metronome, eccentric control and a velocity-loss stop.

    The metronome starts ``lead_in_s`` after the set starts and ticks at every boundary of the
    prescribed E-P-C-P cycle (zero-length phases skipped). A lowering of at least the
    exercise's ``min_rom_deg`` that took less than ``too_fast_fraction`` × the prescribed
    eccentric is cued as soon as the core reports it stopped (``eccentric_end``: its duration
    from the bell fit of its speed, not from the phase thresholds, which cut a slow lowering's
    soft start and end and read it up to 0.6 s short). The set stops at
    ``reps`` or when the mean concentric speed drops ``velocity_loss_stop_pct`` below the
    fastest rep (METRICS.md velocity loss).
    """

    id = "tempo_set"
    title = "Tempo set"
    PARAMS = {
        "reps": Key(int, 8, "reps", "Reps in the set.", min_value=1, max_value=100),
        "tempo": Key(str, "", "s", "E-P-C-P tempo; empty: the exercise's default."),
        "metronome": Key(bool, True, "", "Tick the prescribed phase boundaries."),
        "lead_in_s": Key(float, 3.0, "s", "Time before the metronome starts.", min_value=0.0,
                         max_value=60.0),
        "velocity_loss_stop_pct": Key(float, 20.0, "%", "Velocity loss that ends the set.",
                                      min_value=1.0, max_value=90.0),
    }

    def __init__(self, exercise: Exercise, params: Mapping[str, Any], start_s: float) -> None:
        super().__init__(exercise, params, start_s)
        self.tempo: Tempo = parse_tempo(params["tempo"]) if params["tempo"] else exercise.tempo
        phases = [self.tempo.eccentric_s, self.tempo.pause_lengthened_s,
                  self.tempo.concentric_s, self.tempo.pause_shortened_s]
        self._cycle = [(d, w) for d, w in zip(phases, _PHASE_WORDS, strict=True) if d > 0]
        self._cycle_s = sum(d for d, _ in self._cycle)
        self._next_tick_s = start_s + params["lead_in_s"]
        self._tick_k = 0
        self.too_fast = 0
        self.best_speed_dps = 0.0
        self.velocity_loss_pct = 0.0
        self.stopped_on_velocity = False

    def _scheduled(self, t_s: float) -> list[EngineEvent]:
        out: list[EngineEvent] = []
        if not self.params["metronome"] or self._cycle_s <= 0:
            return out
        while self._next_tick_s <= t_s:
            duration, word = self._cycle[self._tick_k % len(self._cycle)]
            out.append(EngineEvent("metronome", self._next_tick_s, {"phase": word,
                                                                   "seconds": duration}))
            self._next_tick_s += duration
            self._tick_k += 1
        return out

    def _event(self, event: CoreEvent) -> list[EngineEvent]:
        out: list[EngineEvent] = []
        if event.kind == "phase":
            out.append(EngineEvent("phase", event.t_s, {"phase": str(event.data)}))
        elif event.kind == "eccentric_end" and isinstance(event.data, LoweringResult):
            out += self._eccentric_ended(event.data, event.t_s)
        elif event.kind == "rep" and isinstance(event.data, RepResult):
            out += self._rep(event.data, event.t_s)
        return out

    def _eccentric_ended(self, lowering: LoweringResult, t_s: float) -> list[EngineEvent]:
        """The too-fast rule; a lowering smaller than a rep (an adjustment, a wobble) is no
        lowering to coach."""
        target = self.tempo.eccentric_s
        if (target <= 0 or lowering.rom_deg < self.exercise.min_rom_deg
                or lowering.duration_s >= target * self.exercise.too_fast_fraction):
            return []
        self.too_fast += 1
        return [EngineEvent("eccentric_too_fast", t_s, {"eccentric_s": lowering.duration_s,
                                                        "target_s": target})]

    def _rep(self, rep: RepResult, t_s: float) -> list[EngineEvent]:
        n = len(self.reps)
        out = [_rep_event(rep, t_s, n, self.params["reps"])]
        speed = rep.mean_concentric_speed_dps
        self.best_speed_dps = max(self.best_speed_dps, speed)
        if self.best_speed_dps > 0:
            self.velocity_loss_pct = (self.best_speed_dps - speed) / self.best_speed_dps * 100.0
        if n >= 2 and self.velocity_loss_pct >= self.params["velocity_loss_stop_pct"]:
            self.stopped_on_velocity = True
            out.append(EngineEvent("velocity_loss_stop", t_s, {
                "loss_pct": self.velocity_loss_pct, "stop_pct": self.params["velocity_loss_stop_pct"]
            }))
            out.append(self._complete(t_s, summary=f"{n} reps, stopped at "
                                      f"{self.velocity_loss_pct:.0f} % velocity loss"))
        elif n >= self.params["reps"]:
            out.append(self._complete(t_s, summary=f"{n} reps"))
        return out

    def _own_metrics(self) -> list[Metric]:
        return [
            Metric("target_reps", self.params["reps"], "count"),
            Metric("target_eccentric_s", self.tempo.eccentric_s, "s"),
            Metric("eccentric_too_fast", self.too_fast, "count"),
            Metric("velocity_loss_pct", self.velocity_loss_pct, "%"),
        ]

    def targets_met(self) -> bool:
        return len(self.reps) >= self.params["reps"] and not self.stopped_on_velocity


# Isometric holds ------------------------------------------------------------------------------


class IsometricHolds(SetProtocol):
    """Target seconds × holds with rest: cues hold started, complete, lost, and rest over.

    "Complete" is cued once the hold has lasted the target plus the exercise's hold debounce
    (+ 50 ms), the time the pipeline needs to report a break. A hold that ends before the target
    counts as an attempt ("band lost" cue). After each hold
    the rest timer runs from the hold's end; starting the next hold early cancels it.
    """

    id = "isometric_holds"
    title = "Isometric holds"
    PARAMS = {
        "holds": Key(int, 5, "holds", "Holds in the set.", min_value=1, max_value=50),
        "target_s": Key(float, 0.0, "s", "Hold target; 0: the exercise's.", min_value=0.0,
                        max_value=600.0),
        "rest_s": Key(float, 10.0, "s", "Rest after each hold.", min_value=0.0, max_value=600.0),
    }

    def __init__(self, exercise: Exercise, params: Mapping[str, Any], start_s: float) -> None:
        super().__init__(exercise, params, start_s)
        self.target_s: float = params["target_s"] or exercise.hold_target_s
        self._hold_start_s: float | None = None
        self._complete_cued = False
        self._rest_until_s: float | None = None
        self.attempts = 0
        self.completed = 0

    def _due(self, t_s: float) -> list[EngineEvent]:
        out: list[EngineEvent] = []
        if self._hold_start_s is not None:
            out += self._during_hold(self._hold_start_s, t_s)
            # The pipeline reports a broken hold only after its debounce: wait that long past
            # the target so "complete" is never cued for a hold that broke just before it.
            due = self._hold_start_s + self.target_s + self.exercise.hold_debounce_s + 0.05
            if not self._complete_cued and t_s >= due:
                self._complete_cued = True
                out.append(EngineEvent("hold_complete", due, {
                    "n": self.attempts + 1, "holds": self.params["holds"], "target_s": self.target_s
                }))
        elif self._rest_until_s is not None and t_s >= self._rest_until_s:
            out.append(EngineEvent("rest_over", self._rest_until_s, {
                "next": self.attempts + 1, "holds": self.params["holds"]
            }))
            self._rest_until_s = None
        return out

    def _during_hold(self, start_s: float, t_s: float) -> list[EngineEvent]:
        return []

    def _event(self, event: CoreEvent) -> list[EngineEvent]:
        if event.kind == "hold_start" and self._hold_start_s is None:
            self._hold_start_s = hold_started_s(event)
            self._complete_cued = False
            self._rest_until_s = None
            self._hold_started(self._hold_start_s)
            return [EngineEvent("hold_started", event.t_s, {
                "n": self.attempts + 1, "holds": self.params["holds"], "target_s": self.target_s
            })]
        if event.kind == "hold_end" and isinstance(event.data, HoldResult):
            if self._hold_start_s is None:
                return []
            self._hold_start_s = None
            return self._hold_ended(event.data, event.t_s)
        return []

    def _hold_started(self, t_s: float) -> None:
        """Hook for holds with transitions."""

    def _hold_ended(self, hold: HoldResult, t_s: float) -> list[EngineEvent]:
        self.attempts += 1
        out: list[EngineEvent] = []
        if hold.duration_s >= self.target_s:
            self.completed += 1
        else:
            out.append(EngineEvent("band_lost", t_s, {
                "held_s": hold.duration_s, "target_s": self.target_s,
                "reason": hold_end_words(hold.end_reason),
            }))
        if self.attempts >= self.params["holds"]:
            out.append(self._complete(t_s, summary=f"{self.completed}/{self.attempts} holds "
                                      f"of {self.target_s:g} s"))
        else:
            self._rest_until_s = hold.end_s + self.params["rest_s"]
        return out

    def _own_metrics(self) -> list[Metric]:
        out = [
            Metric("target_hold_s", self.target_s, "s"),
            Metric("holds_completed", self.completed, "count"),
            Metric("holds_attempted", self.attempts, "count"),
        ]
        out += [Metric("hold_s", h.duration_s, "s", i) for i, h in enumerate(self.holds, 1)]
        return out

    def targets_met(self) -> bool:
        return self.completed >= self.params["holds"]


class HoldsWithTransitions(IsometricHolds):
    """Holds with dynamic transitions (bridge with lateral pelvic shifts).

    During each hold a ``transition`` cue every ``segment_s`` names the next position (left,
    centre, right, centre, ...); the primary angle must stay in the hold band meanwhile.
    """

    id = "holds_with_transitions"
    title = "Holds with transitions"
    PARAMS = {
        **IsometricHolds.PARAMS,
        "holds": Key(int, 3, "holds", "Holds in the set.", min_value=1, max_value=50),
        "segment_s": Key(float, 5.0, "s", "Time in each position.", min_value=1.0, max_value=120.0),
        "rest_s": Key(float, 30.0, "s", "Rest after each hold.", min_value=0.0, max_value=600.0),
    }
    POSITIONS = ("left", "centre", "right", "centre")

    def __init__(self, exercise: Exercise, params: Mapping[str, Any], start_s: float) -> None:
        super().__init__(exercise, params, start_s)
        self._segment_k = 0
        self.transitions = 0

    def _hold_started(self, t_s: float) -> None:
        self._segment_k = 0

    def _during_hold(self, start_s: float, t_s: float) -> list[EngineEvent]:
        out: list[EngineEvent] = []
        segment = self.params["segment_s"]
        while True:
            due = start_s + (self._segment_k + 1) * segment
            if due > t_s or due >= start_s + self.target_s - 1e-9:
                break
            position = self.POSITIONS[self._segment_k % len(self.POSITIONS)]
            self._segment_k += 1
            self.transitions += 1
            out.append(EngineEvent("transition", due, {"position": position}))
        return out

    def _own_metrics(self) -> list[Metric]:
        return super()._own_metrics() + [Metric("transitions", self.transitions, "count")]


# Max pulls ------------------------------------------------------------------------------------


class MaxPulls(SetProtocol):
    """Maximal isometric pulls: "go", pull, rest; best of peak force and peak RFD over 3-5 trials."""

    id = "max_pulls"
    title = "Max pulls"
    PARAMS = {
        "trials": Key(int, 3, "trials", "Pulls in the set.", min_value=3, max_value=5),
        "rest_s": Key(float, 60.0, "s", "Rest between pulls.", min_value=5.0, max_value=600.0),
        "lead_in_s": Key(float, 3.0, "s", "Time before the first go.", min_value=0.0,
                         max_value=60.0),
    }

    def __init__(self, exercise: Exercise, params: Mapping[str, Any], start_s: float) -> None:
        super().__init__(exercise, params, start_s)
        self._go_due_s: float | None = start_s + params["lead_in_s"]
        self._armed = False
        self.trials: list[ContractionResult] = []

    def _due(self, t_s: float) -> list[EngineEvent]:
        if self._go_due_s is not None and t_s >= self._go_due_s:
            due, self._go_due_s = self._go_due_s, None
            self._armed = True
            return [EngineEvent("go", due, {"n": len(self.trials) + 1,
                                            "trials": self.params["trials"]})]
        return []

    def _event(self, event: CoreEvent) -> list[EngineEvent]:
        if event.kind != "contraction" or not isinstance(event.data, ContractionResult):
            return []
        if not self._armed:
            return []  # a pull before "go" is not a trial
        self._armed = False
        c = event.data
        self.trials.append(c)
        out = [EngineEvent("trial", event.t_s, {
            "n": len(self.trials), "peak_force_n": c.peak_force_n,
            "peak_rfd_n_per_s": c.peak_rfd_n_per_s,
        })]
        if len(self.trials) >= self.params["trials"]:
            best = max(t.peak_force_n for t in self.trials)
            out.append(self._complete(event.t_s, summary=f"best peak force {best:.0f} N"))
        else:
            self._go_due_s = c.end_s + self.params["rest_s"]
        return out

    def _own_metrics(self) -> list[Metric]:
        if not self.trials:
            return [Metric("trials", 0, "count")]
        out = [
            Metric("trials", len(self.trials), "count"),
            Metric("best_peak_force_n", max(t.peak_force_n for t in self.trials), "N"),
            Metric("best_peak_rfd_n_per_s", max(t.peak_rfd_n_per_s for t in self.trials), "N/s"),
        ]
        for window in ("50", "100", "150", "200"):
            values = [t.rfd_n_per_s[window] for t in self.trials if window in t.rfd_n_per_s]
            if values:
                out.append(Metric(f"best_rfd_{window}ms_n_per_s", max(values), "N/s"))
        for i, t in enumerate(self.trials, 1):
            out.append(Metric("trial_peak_force_n", t.peak_force_n, "N", i))
            out.append(Metric("trial_peak_rfd_n_per_s", t.peak_rfd_n_per_s, "N/s", i))
        return out

    def targets_met(self) -> bool:
        return len(self.trials) >= self.params["trials"]


# Repeaters and the critical-force test --------------------------------------------------------


class Repeaters(SetProtocol):
    """``on_s`` on / ``off_s`` off × ``reps``, paced by the device ("go" and "relax").

    Per rep: mean and peak force over the on-time, from valid force samples with
    ``on_start <= t < on_end``. Fatigue index (%) = (first − last) / first × 100 over per-rep peak
    force, skipping the first ``skip_reps`` (METRICS.md).
    """

    id = "repeaters"
    title = "Repeaters"
    PARAMS = {
        "reps": Key(int, 6, "reps", "Work bouts.", min_value=1, max_value=100),
        "on_s": Key(float, 7.0, "s", "Work time per bout.", min_value=1.0, max_value=60.0),
        "off_s": Key(float, 3.0, "s", "Rest time per bout.", min_value=1.0, max_value=60.0),
        "lead_in_s": Key(float, 3.0, "s", "Time before the first go.", min_value=0.0,
                         max_value=60.0),
        "skip_reps": Key(int, 0, "reps", "First reps left out of the fatigue index.",
                         min_value=0, max_value=50),
    }

    def __init__(self, exercise: Exercise, params: Mapping[str, Any], start_s: float) -> None:
        super().__init__(exercise, params, start_s)
        self._t0 = start_s + params["lead_in_s"]
        self._period = params["on_s"] + params["off_s"]
        n = params["reps"]
        self._sum = np.zeros(n)
        self._count = np.zeros(n, dtype=np.int64)
        self._peak = np.full(n, -np.inf)
        self._next_boundary = 0  # even: go of rep k = b // 2; odd: relax of rep k

    def _window(self, k: int) -> tuple[float, float]:
        on = self._t0 + k * self._period
        return on, on + self.params["on_s"]

    def on_force(
        self, t_s: npt.NDArray[np.float64], force_n: npt.NDArray[np.float64],
        valid: npt.NDArray[np.bool_],
    ) -> None:
        if not len(t_s):
            return
        k = np.floor((t_s - self._t0) / self._period).astype(np.int64)
        on_start = self._t0 + k * self._period
        inside = (
            valid & (k >= 0) & (k < self.params["reps"])
            & (t_s >= on_start) & (t_s < on_start + self.params["on_s"])
        )
        if not inside.any():
            return
        np.add.at(self._sum, k[inside], force_n[inside])
        np.add.at(self._count, k[inside], 1)
        np.maximum.at(self._peak, k[inside], force_n[inside])

    def _scheduled(self, t_s: float) -> list[EngineEvent]:
        out: list[EngineEvent] = []
        reps = self.params["reps"]
        while self._next_boundary < 2 * reps and not self.done:
            k, is_end = divmod(self._next_boundary, 2)
            on, off = self._window(k)
            due = off if is_end else on
            if due > t_s:
                break
            self._next_boundary += 1
            if not is_end:
                out.append(EngineEvent("go", due, {"n": k + 1, "trials": reps}))
                continue
            mean = self.rep_mean_force(k)
            values = {"n": k + 1, "reps": reps, "mean_force_n": mean}
            if k + 1 >= reps:
                out.append(self._complete(due, **self._final_values()))
            else:
                out.append(EngineEvent("relax", due, values))
        return out

    def rep_mean_force(self, k: int) -> float:
        return float(self._sum[k] / self._count[k]) if self._count[k] else float("nan")

    def rep_means(self) -> list[float]:
        return [self.rep_mean_force(k) for k in range(self._reps_done())]

    def rep_peaks(self) -> list[float]:
        return [float(p) if np.isfinite(p) else float("nan") for p in self._peak[: self._reps_done()]]

    def _reps_done(self) -> int:
        return self._next_boundary // 2

    def fatigue_index_pct(self) -> float:
        peaks = self.rep_peaks()[self.params["skip_reps"]:]
        if len(peaks) < 2 or not peaks[0] > 0:
            return float("nan")
        return (peaks[0] - peaks[-1]) / peaks[0] * 100.0

    def _final_values(self) -> dict[str, Any]:
        return {"summary": f"{self._reps_done()} reps, fatigue index "
                           f"{self.fatigue_index_pct():.0f} %"}

    def _own_metrics(self) -> list[Metric]:
        means, peaks = self.rep_means(), self.rep_peaks()
        out = [Metric("work_reps", len(means), "count"),
               Metric("fatigue_index_pct", self.fatigue_index_pct(), "%")]
        if means:
            out.append(Metric("mean_force_n", float(np.nanmean(means)) if any(
                np.isfinite(means)) else float("nan"), "N"))
        out += [Metric("rep_mean_force_n", m, "N", i) for i, m in enumerate(means, 1)]
        out += [Metric("rep_peak_force_n", p, "N", i) for i, p in enumerate(peaks, 1)]
        return out

    def targets_met(self) -> bool:
        return self._reps_done() >= self.params["reps"]


class CriticalForce(Repeaters):
    """All-out 7:3 × 24; critical force = mean of the per-rep means over the last ``last_reps``.

    W′ (N·s) = Σ over reps above CF of (rep mean − CF) × on-time; no duty-cycle scaling. The end
    window is named in the summary ("reps 19-24").
    """

    id = "critical_force"
    title = "Critical-force test"
    PARAMS = {
        **Repeaters.PARAMS,
        "reps": Key(int, 24, "reps", "All-out work bouts.", min_value=4, max_value=100),
        "last_reps": Key(int, 6, "reps", "Reps averaged for critical force.", min_value=1,
                         max_value=50),
    }

    def end_window(self) -> tuple[int, int]:
        """1-based first and last rep of the critical-force window."""
        n = self._reps_done()
        return max(1, n - self.params["last_reps"] + 1), n

    def critical_force_n(self) -> float:
        first, last = self.end_window()
        window = [m for m in self.rep_means()[first - 1:last] if np.isfinite(m)]
        return float(np.mean(window)) if window else float("nan")

    def w_prime_n_s(self) -> float:
        cf = self.critical_force_n()
        if not np.isfinite(cf):
            return float("nan")
        on = self.params["on_s"]
        return float(sum((m - cf) * on for m in self.rep_means() if np.isfinite(m) and m > cf))

    def _final_values(self) -> dict[str, Any]:
        first, last = self.end_window()
        return {"summary": f"critical force {self.critical_force_n():.0f} N (mean of reps "
                           f"{first}-{last}), W' {self.w_prime_n_s():.0f} N*s"}

    def _own_metrics(self) -> list[Metric]:
        first, last = self.end_window()
        return super()._own_metrics() + [
            Metric("critical_force_n", self.critical_force_n(), "N"),
            Metric("w_prime_n_s", self.w_prime_n_s(), "N*s"),
            Metric("cf_window_first_rep", first, "rep"),
            Metric("cf_window_last_rep", last, "rep"),
        ]


# Sørensen hold --------------------------------------------------------------------------------


class Sorensen(SetProtocol):
    """Sørensen-style hold: time from hold start until the trunk sinks (core hold end), cap 240 s."""

    id = "sorensen"
    title = "Sorensen hold"
    PARAMS = {
        "cap_s": Key(float, 240.0, "s", "The test ends here.", min_value=10.0, max_value=600.0),
    }

    def __init__(self, exercise: Exercise, params: Mapping[str, Any], start_s: float) -> None:
        super().__init__(exercise, params, start_s)
        self._start_s: float | None = None
        self.hold_s: float | None = None

    def _due(self, t_s: float) -> list[EngineEvent]:
        if self._start_s is None:
            return []
        due = self._start_s + self.params["cap_s"]
        if t_s < due:
            return []
        self.hold_s = self.params["cap_s"]
        return [EngineEvent("hold_complete", due, {"n": 1, "holds": 1, "target_s": self.hold_s}),
                self._complete(due, summary=f"held the cap, {self.hold_s:.0f} s")]

    def _event(self, event: CoreEvent) -> list[EngineEvent]:
        if event.kind == "hold_start" and self._start_s is None:
            self._start_s = hold_started_s(event)
            return [EngineEvent("hold_started", event.t_s, {"n": 1, "holds": 1,
                                                            "target_s": self.params["cap_s"]})]
        if event.kind == "hold_end" and isinstance(event.data, HoldResult) and self._start_s is not None:
            self.hold_s = min(event.data.duration_s, self.params["cap_s"])
            return [self._complete(event.t_s, summary=f"held {self.hold_s:.1f} s")]
        return []

    def _own_metrics(self) -> list[Metric]:
        return [] if self.hold_s is None else [Metric("sorensen_hold_s", self.hold_s, "s")]

    def targets_met(self) -> bool:
        return self.hold_s is not None and self.hold_s >= self.params["cap_s"]


# Free mode ------------------------------------------------------------------------------------


class Free(SetProtocol):
    """Measures only: reps, holds and contractions are reported; the set ends with the source."""

    id = "free"
    title = "Free"

    def _event(self, event: CoreEvent) -> list[EngineEvent]:
        if event.kind == "rep" and isinstance(event.data, RepResult):
            return [_rep_event(event.data, event.t_s, len(self.reps), None)]
        if event.kind == "hold_end" and isinstance(event.data, HoldResult):
            return [EngineEvent("hold_measured", event.t_s, {"held_s": event.data.duration_s})]
        if event.kind == "contraction" and isinstance(event.data, ContractionResult):
            c = event.data
            return [EngineEvent("trial", event.t_s, {
                "n": len(self.contractions), "peak_force_n": c.peak_force_n,
                "peak_rfd_n_per_s": c.peak_rfd_n_per_s,
            })]
        return []


PROTOCOLS: dict[str, type[SetProtocol]] = {
    cls.id: cls
    for cls in (TempoSet, IsometricHolds, HoldsWithTransitions, MaxPulls, Repeaters,
                CriticalForce, Sorensen, Free)
}


def protocol_params(
    protocol_id: str, exercise: Exercise, overrides: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Parameters of ``protocol_id`` for ``exercise``: defaults < ``defaults`` (configuration) <
    the exercise's ``[protocols.ID]`` table < ``overrides`` (command line), all validated."""
    cls = protocol_class(protocol_id)
    params = {name: key.default for name, key in cls.PARAMS.items()}
    layers = [
        (defaults or {}, "configuration"),
        (exercise.protocol_params(protocol_id), f"{exercise.source} [protocols.{protocol_id}]"),
        (overrides or {}, "command line"),
    ]
    for layer, where in layers:
        for name, value in layer.items():
            if name not in cls.PARAMS:
                if layer is defaults:
                    continue  # configuration defaults apply only to protocols that have them
                raise UsageError(f"{where}: protocol {protocol_id} has no parameter {name!r}; "
                                 f"it has {', '.join(sorted(cls.PARAMS)) or 'none'}")
            params[name] = check_value(cls.PARAMS[name], name, value, where, UsageError)
    if protocol_id == "tempo_set":
        # Store the tempo actually prescribed, so history can progress from it.
        if not params["tempo"]:
            params["tempo"] = format_tempo(exercise.tempo)
        try:
            parse_tempo(params["tempo"])
        except ValueError as error:
            raise UsageError(str(error)) from None
    return params


def protocol_class(protocol_id: str) -> type[SetProtocol]:
    try:
        return PROTOCOLS[protocol_id]
    except KeyError:
        raise UsageError(
            f"unknown protocol {protocol_id!r}; use one of {', '.join(PROTOCOL_IDS)}"
        ) from None


def make_protocol(
    protocol_id: str, exercise: Exercise, params: Mapping[str, Any], start_s: float
) -> SetProtocol:
    """A fresh set of ``protocol_id`` starting at sample time ``start_s``."""
    return protocol_class(protocol_id)(exercise, params, start_s)


def describe(protocol: SetProtocol) -> str:
    """One line naming the set's prescription, for headless output and the store."""
    p = protocol.params
    if isinstance(protocol, TempoSet):
        return f"{p['reps']} reps at tempo {format_tempo(protocol.tempo)}"
    if isinstance(protocol, HoldsWithTransitions):
        return f"{p['holds']} holds of {protocol.target_s:g} s, shifting every {p['segment_s']:g} s"
    if isinstance(protocol, IsometricHolds):
        return f"{p['holds']} holds of {protocol.target_s:g} s, rest {p['rest_s']:g} s"
    if isinstance(protocol, MaxPulls):
        return f"{p['trials']} max pulls, rest {p['rest_s']:g} s"
    if isinstance(protocol, CriticalForce):
        return f"all-out {p['on_s']:g}:{p['off_s']:g} x {p['reps']}, CF over last {p['last_reps']}"
    if isinstance(protocol, Repeaters):
        return f"repeaters {p['on_s']:g}:{p['off_s']:g} x {p['reps']}"
    if isinstance(protocol, Sorensen):
        return f"Sorensen hold, cap {p['cap_s']:g} s"
    return "free: measure only"
