"""Sample-to-buzzer latency of the training engine on the simulated rig at full rate.

For every scenario: the simulated rig (real drivers on the simulated bus at the sensors' full
output rates, paced to the wall clock as on the device; ``--fast`` runs it as fast as it goes,
where the simulator's own thread competes for the interpreter),
the real measurement pipeline, the protocol and cue rules of the scenario, and the real buzzer
code on gpiozero's mock PWM pin. The latency of a buzzer command is the time from the arrival of
the block holding its triggering sample (the moment the source handed the block over) to the
``play()`` call. Fixed-schedule cues (metronome, repeaters) are issued before the pipeline
processes the block; cues that react to a detected event include the pipeline's work on the
block, reported separately. Prints one line per scenario and the pooled p50/p99/max; the goal is
p99 <= 5 ms.

    python benchmarks/engine_latency.py [--fast] [SCENARIO ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from spinecoach.backend import Backend
from spinecoach.config import load_config
from spinecoach.drivers.sim.scenarios import scenario_names
from spinecoach.engine.runner import LatencyStats, core_pipeline
from spinecoach.engine.session import (
    SWITCH_INTERVAL_S,
    SessionRequest,
    resolve_plan,
    run_session,
)
from spinecoach.engine.sources import make_haptics, open_blocks
from spinecoach.engine.store import Store, db_path


class TimedPipeline:
    """The real pipeline, timing every feed (ns) to tell its share of the latency."""

    def __init__(self, streams, exercise, feeds_ns: list[int]) -> None:  # type: ignore[no-untyped-def]
        self._pipeline = core_pipeline(streams, exercise)
        self._feeds_ns = feeds_ns

    def feed_imu(self, *args):  # type: ignore[no-untyped-def]
        start = time.perf_counter_ns()
        events = self._pipeline.feed_imu(*args)
        self._feeds_ns.append(time.perf_counter_ns() - start)
        return events

    def feed_force(self, *args):  # type: ignore[no-untyped-def]
        start = time.perf_counter_ns()
        events = self._pipeline.feed_force(*args)
        self._feeds_ns.append(time.perf_counter_ns() - start)
        return events

    def finish(self):  # type: ignore[no-untyped-def]
        return self._pipeline.finish()


def measure(
    scenario: str, state_dir: Path, feeds_ns: list[int], realtime: bool
) -> tuple[LatencyStats, int, float]:
    """Latencies, samples processed and seconds of sample time for one scenario."""
    config = load_config([])
    backend = Backend.parse(f"sim:{scenario}")
    plan = resolve_plan(SessionRequest(), backend, config)
    store = Store(db_path(state_dir), commit_interval_s=0.5)
    haptics = make_haptics(backend, config)
    counted = {"samples": 0, "end_s": 0.0}

    def counting(blocks):  # type: ignore[no-untyped-def]
        for block in blocks:
            counted["samples"] += len(block)
            if len(block):
                counted["end_s"] = max(counted["end_s"], float(block.t_s[-1]))
            yield block

    try:
        with open_blocks(backend, realtime=realtime) as (streams, blocks):
            report = run_session(
                plan, streams, counting(blocks), config, store=store, haptics=haptics,
                athlete="bench", backend=str(backend), mode="training", say=lambda _line: None,
                pipeline_factory=lambda s, e: TimedPipeline(s, e, feeds_ns),
            )
    finally:
        haptics.close()
        store.close()
    return report.latency, counted["samples"], counted["end_s"]


def _figures(latency: LatencyStats) -> str:
    if not latency.samples_ns:
        return "no buzzer commands"
    return (f"p50 {latency.percentile_ms(50):.3f} ms  p99 {latency.percentile_ms(99):.3f} ms  "
            f"max {latency.percentile_ms(100):.3f} ms  engine share p99 "
            f"{latency.percentile_ms(99, engine_only=True):.3f} ms")


def main(argv: list[str]) -> int:
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # as `spinecoach session` does
    realtime = "--fast" not in argv
    names = [a for a in argv if a != "--fast"] or scenario_names()
    print(f"simulated rig {'paced to real time' if realtime else 'as fast as possible'}, "
          f"thread switch interval {SWITCH_INTERVAL_S * 1e3:g} ms")
    pooled = LatencyStats()
    feeds_ns: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            started = time.perf_counter()
            latency, samples, seconds = measure(name, Path(tmp) / name, feeds_ns, realtime)
            wall = time.perf_counter() - started
            pooled.samples_ns += latency.samples_ns
            pooled.engine_ns += latency.engine_ns
            print(f"{name:28} {len(latency.samples_ns):4} cues  {_figures(latency)}  "
                  f"({samples} samples, {seconds:.0f} s of session in {wall:.1f} s)")
    if pooled.samples_ns:
        p99 = pooled.percentile_ms(99)
        print(f"{'all':28} {len(pooled.samples_ns):4} cues  {_figures(pooled)}  goal p99 <= 5 ms: "
              f"{'met' if p99 <= 5.0 else 'NOT met'}")
    feeds = np.asarray(feeds_ns, np.float64) / 1e6
    print(f"{'pipeline feed per block':28} p50 {np.percentile(feeds, 50):.3f} ms  "
          f"p99 {np.percentile(feeds, 99):.3f} ms  max {feeds.max():.3f} ms "
          f"({len(feeds)} blocks): the part of an event cue's latency spent measuring")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
