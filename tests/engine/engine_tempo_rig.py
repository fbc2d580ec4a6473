"""Tempo sets on the simulated rig with the lowering at a chosen fraction of the target tempo.

The scenarios' own scripts jitter every phase by ±5 %, so "at the target tempo" is not exact
there. :func:`tempo_variant` builds the same kind of session (the scenarios' rig, sway, noise,
band and implement geometry, seeded) with every eccentric lasting exactly ``factor`` × the
exercise's prescribed eccentric; :func:`coach` runs the engine's tempo protocol over it with the
real pipeline, fed block by block as the sampler would, and tells for each lowering whether the
"eccentric too fast" rule judged it (the engine event, before the cue rule's minimum interval),
how long after the true end of the lowering that was decided (the sample time of the block that
decided it), the duration the core reported, and the phase-event reading the rule used before.

Run as a script it prints the false-positive / miss table of the README:
``python tests/engine/engine_tempo_rig.py [SEEDS]``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
from spinecoach.core.results import CoreEvent
from spinecoach.drivers.blocks import ForceBlock, ImuBlock, StreamInfo
from spinecoach.drivers.sim.motion import Constant, Script
from spinecoach.drivers.sim.rig import Band
from spinecoach.drivers.sim.scenarios import (
    FORCE_RATE_HZ,
    IMU_RATE_HZ,
    SHOULDER_ATTACH_M,
    Scenario,
    _Builder,  # the scenarios' own seeded rig/sway builder, so variants match them exactly
    build_scenario,
)
from spinecoach.engine.cues import Cue, CueEngine, rules_for
from spinecoach.engine.library import Exercise, load_library
from spinecoach.engine.protocols import EngineEvent, TempoSet, protocol_params
from spinecoach.engine.runner import SessionPlan, SessionRunner

#: The tempo scenarios of drivers/sim/scenarios.py: exercise, scenario name, prescribed tempo.
EXERCISES = {
    "banded_good_morning": ("good_morning_tempo", (3.0, 1.0, 1.0, 0.0)),
    "dumbbell_row": ("dumbbell_row_slow_eccentric", (4.0, 1.0, 1.0, 1.0)),
}
#: Lowering as a fraction of the target in the table: 10 % slower, exact, 10 % faster, then
#: 20 and 25 % faster (above the 0.7 threshold: never to be cued), 30 % faster (the threshold
#: itself), 35-50 % faster (clearly too fast: always to be cued).
FACTORS = (1.1, 1.0, 0.9, 0.8, 0.75, 0.7, 0.65, 0.6, 0.5)
REPS = 6
BLOCK_S = 0.02


@dataclass(frozen=True)
class Lowering:
    """One scripted eccentric: start and end (s) and how the too-fast rule saw it."""

    start_s: float
    end_s: float
    judged_s: float | None = None  # EngineEvent time of an "eccentric_too_fast" within it
    decided_s: float | None = None  # sample time of the block that produced that event
    measured_s: float | None = None  # the duration the core reported when the lowering stopped
    phase_s: float | None = None  # eccentric phase event to the next phase event (former rule)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class CoachedSet:
    lowerings: list[Lowering]
    cues: list[Cue] = field(default_factory=list)
    protocol: TempoSet | None = None

    @property
    def cued(self) -> int:
        return sum(1 for lw in self.lowerings if lw.judged_s is not None)


def exercise(exercise_id: str) -> Exercise:
    return load_library().get(exercise_id)


def tempo_variant(exercise_id: str, factor: float, seed: int, reps: int = REPS) -> Scenario:
    """The exercise's tempo scenario with every lowering exactly ``factor`` × its target.

    Ranges and the other phases vary per rep as in the scenarios (range ± a few degrees,
    durations ± 5 %), seeded; sway, noise, biases and the band come from the same builder.
    """
    name, tempo = EXERCISES[exercise_id]
    b = _Builder(name, seed)
    ecc_s = factor * tempo[0]
    if exercise_id == "banded_good_morning":
        script = Script(0.0).pause(3.0, label="start position")
        for rep in range(reps):
            script.move(b.spread(85.0, 3.0), ecc_s, phase="eccentric", rep=rep)
            script.pause(b.jitter(tempo[1]), phase="pause_lengthened", rep=rep)
            script.move(0.0, b.jitter(tempo[2]), phase="concentric", rep=rep)
            script.pause(b.jitter(tempo[3]), phase="pause_shortened", rep=rep)
        script.pause(3.0, label="start position")
        trunk = b.segment("trunk", script)
        return b.scenario(
            exercise=exercise_id, protocol="tempo_set", duration_s=script.end_s,
            imus={"trunk": trunk}, primary="trunk",
            force=Band(trunk, SHOULDER_ATTACH_M, (0.05, 0.0, 0.0), 250.0, 0.90),
            eccentric_sign=1,
        )
    script = Script(0.0).pause(3.0, label="start position")
    for rep in range(reps):
        script.move(b.spread(70.0, 4.0), b.jitter(tempo[2]), phase="concentric", rep=rep)
        script.pause(b.jitter(tempo[3]), phase="pause_shortened", rep=rep)
        script.move(0.0, ecc_s, phase="eccentric", rep=rep)
        script.pause(b.jitter(tempo[1]), phase="pause_lengthened", rep=rep)
    script.pause(2.0, label="start position")
    implement = b.segment("implement", script, pivot_m=(Constant(), Constant(-0.2), Constant(1.15)),
                          lever_m=(-0.55, 0.0, 0.0))
    return b.scenario(
        exercise=exercise_id, protocol="tempo_set", duration_s=script.end_s,
        imus={"implement": implement}, primary="implement", eccentric_sign=-1,
    )


def scripted_lowerings(sc: Scenario) -> list[Lowering]:
    script = sc.motion().flexion_deg.parts[0]  # type: ignore[attr-defined]  # script + sway
    return [Lowering(s.start_s, s.end_s) for s in script.segments
            if s.kind == "move" and s.phase == "eccentric"]


def rig_blocks(sc: Scenario, block_s: float = BLOCK_S):  # type: ignore[no-untyped-def]
    """The rig's noisy signals as sampler blocks, interleaved in time (no chip simulation)."""
    imu_infos = [StreamInfo(p, "imu", IMU_RATE_HZ) for p in sc.imu_placements]
    force_info = StreamInfo("force", "force", FORCE_RATE_HZ) if sc.has_load_cell else None
    streams = imu_infos + ([force_info] if force_info else [])
    n_imu = int(sc.duration_s * IMU_RATE_HZ)
    t_imu = np.arange(n_imu) / IMU_RATE_HZ
    imu = {i.name: sc.imu_signal(i.name)(t_imu) for i in imu_infos}
    force = None
    if force_info is not None:
        n_f = int(sc.duration_s * FORCE_RATE_HZ)
        force = sc.force_signal()(np.arange(n_f) / FORCE_RATE_HZ)

    def blocks():  # type: ignore[no-untyped-def]
        per = round(block_s * IMU_RATE_HZ)
        f_done = 0
        for a in range(0, n_imu, per):
            idx = np.arange(a, min(a + per, n_imu), dtype=np.int64)
            for info in imu_infos:
                gyro, accel = imu[info.name]
                yield ImuBlock(info, idx, gyro[idx], accel[idx], np.ones(len(idx), bool))
            if force is not None and force_info is not None:
                f_end = min(len(force), int(np.floor(t_imu[idx[-1]] * FORCE_RATE_HZ)) + 1)
                if f_end > f_done:
                    fidx = np.arange(f_done, f_end, dtype=np.int64)
                    yield ForceBlock(force_info, fidx, force[fidx], np.ones(len(fidx), bool))
                    f_done = f_end

    return streams, blocks()


class _Watch:
    """Records the too-fast judgements with the block time that made them, and the core's
    phase and lowering reports."""

    def __init__(self) -> None:
        self.block_end_s = 0.0
        self.judged: list[tuple[EngineEvent, float]] = []
        self.core: list[CoreEvent] = []


def _within(lw: Lowering, t_s: float) -> bool:
    return lw.start_s - 0.5 <= t_s <= lw.end_s + 0.5


def _phase_durations(events: list[CoreEvent]) -> list[tuple[float, float]]:
    """(start, duration) of every eccentric phase: eccentric phase event to the next phase
    event, the measure the rule used before it judged the fitted lowering."""
    out, start = [], None
    for e in events:
        if e.kind != "phase":
            continue
        if start is not None and e.data != "eccentric":
            out.append((start, e.t_s - start))
            start = None
        if e.data == "eccentric":
            start = e.t_s
    return out


def coach(sc: Scenario, exercise_id: str, block_s: float = BLOCK_S) -> CoachedSet:
    """Run the tempo protocol (training mode) over the scenario; judgements per lowering."""
    ex = exercise(exercise_id)
    lowerings = scripted_lowerings(sc)
    # no velocity-loss stop: the scripted concentrics vary by ±5 % and would end some sets early
    params = protocol_params("tempo_set", ex, {"reps": len(lowerings), "velocity_loss_stop_pct": 90.0})
    plan = SessionPlan(ex, "tempo_set", params)
    streams, blocks = rig_blocks(sc, block_s)
    watch = _Watch()
    cues = CueEngine(rules_for(ex.cues), "training")
    delivered: list[Cue] = []
    runner = SessionRunner(plan, streams, cues=cues, on_cue=delivered.append,
                           on_event=watch.core.append)
    original = runner._engine_events

    def engine_events(events: list[EngineEvent]) -> None:
        watch.judged += [(e, watch.block_end_s) for e in events if e.kind == "eccentric_too_fast"]
        original(events)

    runner._engine_events = engine_events  # type: ignore[method-assign]
    protocol: TempoSet | None = None
    for block in blocks:
        watch.block_end_s = float(block.t_s[-1])
        runner.feed(block)
        if runner._active is not None:
            protocol = runner._active.protocol  # type: ignore[assignment]
        if runner.finished:
            break
    runner.finish()
    phases = _phase_durations(watch.core)
    ends = [e.data for e in watch.core if e.kind == "eccentric_end"]
    out = []
    for lw in lowerings:
        measured = next((d.duration_s for d in ends if _within(lw, d.start_s)), None)
        phase = next((d for t, d in phases if _within(lw, t)), None)
        hit = next(((e, d) for e, d in watch.judged if _within(lw, e.t_s)), None)
        out.append(Lowering(lw.start_s, lw.end_s, hit[0].t_s if hit else None,
                            hit[1] if hit else None, measured, phase))
    return CoachedSet(out, delivered, protocol)


def _span(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if values else "-"


def table(seeds: list[int]) -> str:
    """Before (phase events) and after (fitted lowering) per exercise and lowering speed."""
    header = ("| exercise | lowering / target | lowerings | phase-event reading (s) | cued before "
              "| fitted reading (s) | cued after | cue after the true end (s) |")
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for exercise_id, (scenario, tempo) in EXERCISES.items():
        threshold = exercise(exercise_id).too_fast_fraction * tempo[0]
        cases: list[tuple[str, list[Scenario]]] = [
            (f"{scenario} (±5 %)", [build_scenario(scenario, seed) for seed in seeds])]
        cases += [(f"{factor:.2f}", [tempo_variant(exercise_id, factor, seed) for seed in seeds])
                  for factor in FACTORS]
        for label, scenarios in cases:
            rows = [lw for sc in scenarios for lw in coach(sc, exercise_id).lowerings]
            before = [lw.phase_s for lw in rows if lw.phase_s is not None]
            after = [lw.measured_s for lw in rows if lw.measured_s is not None]
            late = [lw.decided_s - lw.end_s for lw in rows if lw.decided_s is not None]
            lines.append(
                f"| {exercise_id} | {label} | {len(rows)} | {_span(before)} | "
                f"{sum(d < threshold for d in before)} | {_span(after)} | "
                f"{sum(lw.judged_s is not None for lw in rows)} | "
                f"{_span(late) if late else '-'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table([int(s) for s in sys.argv[1:]] or [1, 2, 3]))
