"""Coaching cues: rules that turn engine events into a buzzer pattern plus an on-screen message.

Each rule has a pattern (``tick``, ``double``, ``long``, ``warning``, ``ramp`` or None for a
message only), a message template filled from the event's values, a ``delay_s`` before it fires
(a later event named in ``cancelled_by`` withdraws it, so a brief wobble does not buzz) and a
``min_interval_s`` of quiet after it fires, so the device never nags. All timing is sample time.

Training mode delivers every enabled rule. Tracking mode measures only: no buzzing, and only the
informational messages (rep counted, set complete, results) appear. Every rule can be changed per
exercise (``[cues.RULE]`` tables in the exercise file).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from spinecoach.engine.library import CueOverride
from spinecoach.engine.protocols import EngineEvent
from spinecoach.errors import DataFormatError

PATTERNS = ("tick", "double", "long", "warning", "ramp")
MODES = ("training", "tracking")


@dataclass(frozen=True)
class CueRule:
    """How one kind of engine event is cued. Times in seconds of sample time."""

    kind: str
    pattern: str | None
    message: str
    delay_s: float = 0.0
    min_interval_s: float = 0.0
    enabled: bool = True
    #: Shown in tracking mode too (results, not coaching).
    informational: bool = False
    #: Event kinds that withdraw a pending (delayed) cue of this rule.
    cancelled_by: tuple[str, ...] = ()


DEFAULT_RULES: dict[str, CueRule] = {
    rule.kind: rule
    for rule in (
        CueRule("metronome", "tick", "{phase}"),
        CueRule("phase", None, "{phase}", enabled=False),
        CueRule("eccentric_too_fast", "warning",
                "Lower slower: {eccentric_s:.1f} s, aim for {target_s:.0f} s", min_interval_s=5.0),
        CueRule("rep", None, "Rep {n}{of}: {rom_deg:.0f} deg, lowering {eccentric_s:.1f} s",
                informational=True),
        CueRule("hold_started", "double", "Hold {n}/{holds}: {target_s:g} s"),
        CueRule("hold_complete", "double", "Hold {n}/{holds} complete - release"),
        CueRule("band_lost", "long", "Hold lost after {held_s:.1f} s ({reason})",
                delay_s=0.0, min_interval_s=2.0, cancelled_by=("hold_started",)),
        CueRule("hold_measured", None, "Hold {held_s:.1f} s", informational=True),
        CueRule("transition", "tick", "Shift {position}"),
        CueRule("angle_limit", "warning", "Past the limit: {angle_deg:.0f} deg (limit {limit_deg:.0f})",
                delay_s=0.1, min_interval_s=3.0),
        CueRule("go", "long", "GO - pull {n}/{trials}"),
        CueRule("relax", "double", "Relax - rep {n}/{reps}: {mean_force_n:.0f} N"),
        CueRule("trial", None, "Pull {n}: peak {peak_force_n:.0f} N, RFD {peak_rfd_n_per_s:.0f} N/s",
                informational=True),
        CueRule("set_complete", "long", "Set complete: {summary}", informational=True),
        CueRule("rest_over", "double", "Rest over - next {next}/{holds}"),
        CueRule("set_rest_over", "double", "Rest over - set {next}"),
        CueRule("velocity_loss_stop", "warning",
                "Stop: velocity down {loss_pct:.0f} % (limit {stop_pct:.0f} %)"),
    )
}


@dataclass(frozen=True)
class Cue:
    """A cue to deliver: ``t_s`` is the sample time it became due (trigger + delay).

    ``pattern`` is None when nothing should buzz (message-only rule, tracking mode, haptics off).
    """

    kind: str
    t_s: float
    trigger_s: float
    pattern: str | None
    message: str


def rules_for(overrides: Mapping[str, CueOverride] | None = None) -> dict[str, CueRule]:
    """The default rules with an exercise's overrides applied (unknown rule names are errors)."""
    rules = dict(DEFAULT_RULES)
    for kind, change in (overrides or {}).items():
        if kind not in rules:
            raise DataFormatError(
                f"cue rule {kind!r} does not exist; rules are: {', '.join(sorted(rules))}"
            )
        fields: dict[str, Any] = {
            name: getattr(change, name)
            for name in ("enabled", "message", "delay_s", "min_interval_s")
            if getattr(change, name) is not None
        }
        if change.pattern is not None:
            fields["pattern"] = None if change.pattern == "none" else change.pattern
        rules[kind] = replace(rules[kind], **fields)
    return rules


class _Lenient(dict):  # type: ignore[type-arg]
    """Format mapping that leaves unknown placeholders visible instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``template`` from ``values``; a bad or missing placeholder stays as written."""
    try:
        return string.Formatter().vformat(template, (), _Lenient(values))
    except (ValueError, TypeError, IndexError, KeyError):
        return template


class CueEngine:
    """Applies the rules to engine events in sample-time order."""

    def __init__(
        self, rules: Mapping[str, CueRule] | None = None, mode: str = "training",
        haptics: bool = True,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {MODES}")
        self.rules = dict(DEFAULT_RULES if rules is None else rules)
        self.mode = mode
        self.haptics = haptics
        self._last_fired_s: dict[str, float] = {}
        self._pending: list[tuple[float, EngineEvent]] = []
        self.suppressed = 0

    def submit(self, events: Iterable[EngineEvent]) -> list[Cue]:
        """Cues due now for ``events``; delayed ones wait for :meth:`advance`."""
        out: list[Cue] = []
        for event in events:
            self._pending = [
                (due, e) for due, e in self._pending
                if event.kind not in self.rules[e.kind].cancelled_by
            ]
            rule = self.rules.get(event.kind)
            if rule is None or not self._active(rule):
                continue
            if rule.delay_s > 0:
                self._pending.append((event.t_s + rule.delay_s, event))
                continue
            cue = self._fire(rule, event, event.t_s)
            if cue is not None:
                out.append(cue)
        return out

    def advance(self, t_s: float) -> list[Cue]:
        """Delayed cues that fall due by sample time ``t_s``, in due order."""
        due_now = sorted((p for p in self._pending if p[0] <= t_s), key=lambda p: p[0])
        self._pending = [p for p in self._pending if p[0] > t_s]
        out = []
        for due, event in due_now:
            cue = self._fire(self.rules[event.kind], event, due)
            if cue is not None:
                out.append(cue)
        return out

    def _active(self, rule: CueRule) -> bool:
        return rule.enabled and (self.mode == "training" or rule.informational)

    def _fire(self, rule: CueRule, event: EngineEvent, due_s: float) -> Cue | None:
        last = self._last_fired_s.get(rule.kind)
        if last is not None and due_s - last < rule.min_interval_s:
            self.suppressed += 1
            return None
        self._last_fired_s[rule.kind] = due_s
        pattern = rule.pattern if (self.mode == "training" and self.haptics) else None
        return Cue(rule.kind, due_s, event.t_s, pattern, render(rule.message, event.values))
