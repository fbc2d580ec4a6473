"""History and progression: per-exercise bests and trends, left/right comparison, and a
suggestion for the next session explained in one sentence.

Progressive loading, with restraint: when the last session met its targets with good control the
suggestion asks for a little more (longer holds, a slower eccentric, then more band tension or
reps); when control or force dropped it backs off; otherwise it repeats the prescription. The
thresholds are the ``[progression]`` configuration keys. Suggestions are coaching aids, not
diagnosis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from spinecoach.engine.library import format_tempo, parse_tempo
from spinecoach.engine.reader import SetRow, StoreReader

#: The figures that count as bests, per protocol: name -> True when higher is better.
KEY_FIGURES: dict[str, dict[str, bool]] = {
    "tempo_set": {"reps": True, "mean_eccentric_s": True, "mean_rom_deg": True,
                  "rep_peak_force_n": True},
    "isometric_holds": {"longest_hold_s": True, "holds_completed": True, "total_hold_s": True},
    "holds_with_transitions": {"longest_hold_s": True, "holds_completed": True},
    "max_pulls": {"best_peak_force_n": True, "best_peak_rfd_n_per_s": True},
    "repeaters": {"mean_force_n": True, "fatigue_index_pct": False},
    "critical_force": {"critical_force_n": True, "w_prime_n_s": True},
    "sorensen": {"sorensen_hold_s": True},
    "free": {"peak_rotation_speed_dps": True, "peak_concentric_speed_dps": True,
             "peak_force_n": True, "longest_hold_s": True},
}

#: The figure whose trend over sessions is reported per protocol.
TREND_FIGURE = {
    "tempo_set": "mean_eccentric_s", "isometric_holds": "total_hold_s",
    "holds_with_transitions": "longest_hold_s", "max_pulls": "best_peak_force_n",
    "repeaters": "mean_force_n", "critical_force": "critical_force_n",
    "sorensen": "sorensen_hold_s", "free": "peak_rotation_speed_dps",
}


@dataclass(frozen=True)
class Best:
    figure: str
    value: float
    unit: str
    set_id: int
    date_utc: str


@dataclass(frozen=True)
class Trend:
    """Least-squares slope of a figure over the last sessions (per session) and its values."""

    figure: str
    unit: str
    values: tuple[float, ...]
    slope_per_session: float
    #: Start time (UTC) of the session of each value.
    started_utc: tuple[str, ...] = ()

    def describe(self) -> str:
        if len(self.values) < 2:
            return f"{self.figure}: one session so far"
        direction = "up" if self.slope_per_session > 0 else "down" if self.slope_per_session < 0 else "flat"
        return (f"{self.figure}: {direction} {abs(self.slope_per_session):.2f} {self.unit} per "
                f"session over {len(self.values)} sessions")


@dataclass(frozen=True)
class Suggestion:
    """The next session's prescription: protocol parameter changes and one sentence why."""

    exercise: str
    protocol: str
    action: str  # "progress", "repeat", "back_off"
    params: Mapping[str, Any] = field(default_factory=dict)
    sentence: str = ""


@dataclass(frozen=True)
class SideComparison:
    figure: str
    unit: str
    left: float
    right: float

    @property
    def asymmetry_pct(self) -> float:
        """(left − right) / larger × 100; positive: the left side is stronger/longer."""
        larger = max(abs(self.left), abs(self.right))
        return (self.left - self.right) / larger * 100.0 if larger > 0 else 0.0


@dataclass(frozen=True)
class ProgressionSettings:
    """``[progression]`` configuration (seconds, percent)."""

    hold_step_s: float = 1.0
    eccentric_step_s: float = 1.0
    max_eccentric_s: float = 6.0
    force_drop_pct: float = 10.0
    trend_sessions: int = 6
    velocity_loss_stop_pct: float = 20.0

    @classmethod
    def from_config(cls, config: Any) -> ProgressionSettings:
        p = config["progression"]
        return cls(p["hold_step_s"], p["eccentric_step_s"], p["max_eccentric_s"],
                   p["force_drop_pct"], p["trend_sessions"],
                   config["coaching"]["velocity_loss_stop_pct"])


class History:
    """Queries over one athlete's stored sets of one exercise (finished sets only)."""

    def __init__(self, reader: StoreReader, athlete: str, exercise: str) -> None:
        self.reader = reader
        self.athlete = athlete
        self.exercise = exercise
        self.sets = [
            s for s in reader.sets(exercise=exercise, athlete=athlete)
            if s.status in ("complete", "stopped")
        ]
        self._figures = {s.id: reader.set_metrics(s.id) for s in self.sets}
        self._units = {s.id: {m.name: m.unit for m in reader.metrics(s.id)} for s in self.sets}

    def figures(self, set_row: SetRow) -> dict[str, float]:
        return self._figures[set_row.id]

    def sessions(self) -> list[list[SetRow]]:
        """Sets grouped by session, oldest first."""
        grouped: dict[int, list[SetRow]] = {}
        for s in self.sets:
            grouped.setdefault(s.session_id, []).append(s)
        return [grouped[k] for k in sorted(grouped)]

    def bests(self) -> list[Best]:
        out: dict[str, Best] = {}
        for s in self.sets:
            higher = KEY_FIGURES.get(s.protocol, {})
            for name, value in self._figures[s.id].items():
                if name not in higher or not math.isfinite(value):
                    continue
                current = out.get(name)
                better = current is None or (
                    value > current.value if higher[name] else value < current.value)
                if better:
                    out[name] = Best(name, value, self._units[s.id].get(name, ""), s.id,
                                     s.started_utc)
        return sorted(out.values(), key=lambda b: b.figure)

    def trend(self, protocol: str, last: int) -> Trend | None:
        figure = TREND_FIGURE.get(protocol)
        if figure is None:
            return None
        values, started, unit = [], [], ""
        for session in self.sessions()[-last:]:
            per_set = [self._figures[s.id].get(figure, math.nan) for s in session
                       if s.protocol == protocol]
            per_set = [v for v in per_set if math.isfinite(v)]
            if per_set:
                values.append(max(per_set))
                started.append(session[0].started_utc)
                unit = self._units[session[0].id].get(figure, unit)
        if not values:
            return None
        slope = float(np.polyfit(np.arange(len(values)), values, 1)[0]) if len(values) >= 2 else 0.0
        return Trend(figure, unit, tuple(values), slope, tuple(started))


def suggest(history: History, settings: ProgressionSettings) -> Suggestion | None:
    """The next-session suggestion from the athlete's last session of this exercise."""
    sessions = history.sessions()
    if not sessions:
        return None
    last = sessions[-1]
    protocol = last[-1].protocol
    sets = [s for s in last if s.protocol == protocol]
    earlier = [s for session in sessions[:-1] for s in session if s.protocol == protocol]
    rule = _RULES.get(protocol)
    if rule is None:
        return Suggestion(history.exercise, protocol, "repeat", {},
                          "Free sessions only measure; choose a protocol to get a progression.")
    return rule(history, sets, earlier, settings)


def _all(history: History, sets: Sequence[SetRow], name: str) -> list[float]:
    return [history.figures(s).get(name, math.nan) for s in sets]


def _best_before(history: History, earlier: Sequence[SetRow], name: str) -> float:
    values = [v for v in _all(history, earlier, name) if math.isfinite(v)]
    return max(values) if values else math.nan


def _tempo_rule(history: History, sets: Sequence[SetRow], earlier: Sequence[SetRow],
                settings: ProgressionSettings) -> Suggestion:
    tempo = parse_tempo(sets[-1].params["tempo"])
    reps = sum(history.figures(s).get("reps", 0) for s in sets)
    fast = sum(history.figures(s).get("eccentric_too_fast", 0) for s in sets)
    target_e = tempo.eccentric_s
    eccentrics = [v for v in _all(history, sets, "mean_eccentric_s") if math.isfinite(v)]
    mean_e = float(np.mean(eccentrics)) if eccentrics else math.nan
    losses = [v for v in _all(history, sets, "velocity_loss_pct") if math.isfinite(v)]
    stopped = any(v >= settings.velocity_loss_stop_pct for v in losses)
    all_met = all(s.targets_met for s in sets)
    ex, pr = history.exercise, "tempo_set"
    if stopped or (reps and fast / reps > 1 / 3) or (math.isfinite(mean_e) and mean_e < 0.8 * target_e):
        why = (f"velocity dropped past {settings.velocity_loss_stop_pct:.0f} %" if stopped
               else f"{fast:.0f} of {reps:.0f} lowerings were faster than the {target_e:g} s target")
        return Suggestion(ex, pr, "back_off", {},
                          f"Use a lighter band and keep the {target_e:g} s eccentric: {why}.")
    if all_met and fast == 0:
        if target_e + settings.eccentric_step_s <= settings.max_eccentric_s:
            new_e = target_e + settings.eccentric_step_s
            new_tempo = format_tempo(replace(tempo, eccentric_s=new_e))
            return Suggestion(ex, pr, "progress", {"tempo": new_tempo},
                              f"Slow the lowering to {new_e:g} s (tempo {new_tempo}): every rep "
                              f"met the {target_e:g} s eccentric with no fast lowering.")
        return Suggestion(ex, pr, "progress", {},
                          f"Add band tension (the next band or more chain): the eccentric is at "
                          f"{target_e:g} s and every rep stayed controlled.")
    return Suggestion(ex, pr, "repeat", {},
                      "Repeat the same prescription: the set was not completed yet, but control held.")


def _every(count: float, thing: str) -> str:
    return f"the {thing}" if count == 1 else f"all {count:.0f} {thing}s"


def _holds_rule(history: History, sets: Sequence[SetRow], earlier: Sequence[SetRow],
                settings: ProgressionSettings) -> Suggestion:
    protocol = sets[-1].protocol
    figures = history.figures(sets[-1])
    target = figures.get("target_hold_s", math.nan)
    done = sum(history.figures(s).get("holds_completed", 0) for s in sets)
    tried = sum(history.figures(s).get("holds_attempted", 0) for s in sets)
    ex = history.exercise
    if tried and done == tried and all(s.targets_met for s in sets):
        new = target + settings.hold_step_s
        return Suggestion(ex, protocol, "progress", {"target_s": new},
                          f"Hold {new:g} s next time: {_every(tried, 'hold')} reached "
                          f"{target:g} s inside the angle and force band.")
    if tried and done < tried / 2:
        new = max(1.0, target - settings.hold_step_s)
        return Suggestion(ex, protocol, "back_off", {"target_s": new},
                          f"Shorten the holds to {new:g} s: only {done:.0f} of {tried:.0f} "
                          f"held {target:g} s before position or tension was lost.")
    return Suggestion(ex, protocol, "repeat", {},
                      f"Repeat {target:g} s holds: {done:.0f} of {tried:.0f} reached the target.")


def _force_rule(figure: str, progress_text: str, progress_params: Mapping[str, Any]):  # type: ignore[no-untyped-def]
    def rule(history: History, sets: Sequence[SetRow], earlier: Sequence[SetRow],
             settings: ProgressionSettings) -> Suggestion:
        protocol = sets[-1].protocol
        now = max((v for v in _all(history, sets, figure) if math.isfinite(v)), default=math.nan)
        before = _best_before(history, earlier, figure)
        ex = history.exercise
        if not math.isfinite(now):
            return Suggestion(ex, protocol, "repeat", {},
                              "Repeat the test: no complete effort was measured last time.")
        if math.isfinite(before) and now < before * (1 - settings.force_drop_pct / 100):
            drop = (before - now) / before * 100
            return Suggestion(ex, protocol, "back_off", {},
                              f"Take a lighter session: {figure} was {drop:.0f} % below your "
                              f"best ({now:.0f} vs {before:.0f}).")
        if all(s.targets_met for s in sets) and (not math.isfinite(before) or now >= before):
            return Suggestion(ex, protocol, "progress", dict(progress_params),
                              progress_text.format(now=now, figure=figure))
        return Suggestion(ex, protocol, "repeat", {},
                          f"Repeat the prescription: {figure} {now:.0f} is within "
                          f"{settings.force_drop_pct:g} % of your best.")

    return rule


def _sorensen_rule(history: History, sets: Sequence[SetRow], earlier: Sequence[SetRow],
                   settings: ProgressionSettings) -> Suggestion:
    now = max((v for v in _all(history, sets, "sorensen_hold_s") if math.isfinite(v)),
              default=math.nan)
    before = _best_before(history, earlier, "sorensen_hold_s")
    ex = history.exercise
    if not math.isfinite(now):
        return Suggestion(ex, "sorensen", "repeat", {}, "Repeat the test: no hold was measured.")
    if all(s.targets_met for s in sets):
        return Suggestion(ex, "sorensen", "progress", {},
                          f"Hold a light plate to the chest next time: you reached the "
                          f"{now:.0f} s cap with the trunk level.")
    if math.isfinite(before) and now < before * (1 - settings.force_drop_pct / 100):
        return Suggestion(ex, "sorensen", "back_off", {},
                          f"Rest before the next test: the hold ({now:.0f} s) was well below "
                          f"your best ({before:.0f} s).")
    return Suggestion(ex, "sorensen", "progress", {},
                      f"Aim for {now + 10:.0f} s: you held {now:.0f} s before the trunk sank.")


_RULES = {
    "tempo_set": _tempo_rule,
    "isometric_holds": _holds_rule,
    "holds_with_transitions": _holds_rule,
    "max_pulls": _force_rule(
        "best_peak_force_n", "Keep testing at this tension: {figure} {now:.0f} N is your best.", {}),
    "repeaters": _force_rule(
        "mean_force_n", "Add a rep next time: {figure} held at {now:.0f} N, your best.", {}),
    "critical_force": _force_rule(
        "critical_force_n", "Train repeaters just above {now:.0f} N: your critical force is "
        "at its best.", {}),
    "sorensen": _sorensen_rule,
}


def compare_sides(figures_by_side: Mapping[str, Sequence[Mapping[str, float]]],
                  protocol: str) -> list[SideComparison]:
    """Left against right over the key figures of ``protocol`` (each side's mean over its sets)."""
    left, right = figures_by_side.get("left", ()), figures_by_side.get("right", ())
    if not left or not right:
        return []
    out = []
    for name in KEY_FIGURES.get(protocol, {}):
        lv = [f[name] for f in left if name in f and math.isfinite(f[name])]
        rv = [f[name] for f in right if name in f and math.isfinite(f[name])]
        if lv and rv:
            out.append(SideComparison(name, "", float(np.mean(lv)), float(np.mean(rv))))
    return out
