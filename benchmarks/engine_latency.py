"""Sample-to-buzzer latency of the training engine on the simulated rig at full rate.

For every scenario: the simulated rig (real drivers on the simulated bus, as fast as it goes),
the real measurement pipeline, the protocol and cue rules of the scenario, and the real buzzer
code on gpiozero's mock PWM pin. The latency of a buzzer command is the time from the arrival of
the block holding its triggering sample (the moment the source handed the block over) to the
``play()`` call. Prints one line per scenario and the pooled p50/p99/max; the goal is
p99 <= 5 ms.

    python benchmarks/engine_latency.py [SCENARIO ...]
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
from spinecoach.engine.session import SessionRequest, resolve_plan, run_session
from spinecoach.engine.sources import make_haptics, open_blocks
from spinecoach.engine.store import Store, db_path


def measure(scenario: str, state_dir: Path) -> tuple[list[int], int, float]:
    """Latencies (ns), samples processed and seconds of sample time for one scenario."""
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
        with open_blocks(backend) as (streams, blocks):
            report = run_session(plan, streams, counting(blocks), config, store=store,
                                 haptics=haptics, athlete="bench", backend=str(backend),
                                 mode="training", say=lambda _line: None)
    finally:
        haptics.close()
        store.close()
    return report.latency.samples_ns, counted["samples"], counted["end_s"]


def main(argv: list[str]) -> int:
    names = argv or scenario_names()
    pooled: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            started = time.perf_counter()
            latencies, samples, seconds = measure(name, Path(tmp) / name)
            wall = time.perf_counter() - started
            pooled += latencies
            if latencies:
                ms = np.asarray(latencies, np.float64) / 1e6
                figures = (f"p50 {np.percentile(ms, 50):.3f} ms  p99 {np.percentile(ms, 99):.3f} ms"
                           f"  max {ms.max():.3f} ms")
            else:
                figures = "no buzzer commands"
            print(f"{name:28} {len(latencies):4} cues  {figures}  ({samples} samples, "
                  f"{seconds:.0f} s of session in {wall:.1f} s)")
    if pooled:
        ms = np.asarray(pooled, np.float64) / 1e6
        p99 = float(np.percentile(ms, 99))
        print(f"{'all':28} {len(pooled):4} cues  p50 {np.percentile(ms, 50):.3f} ms  "
              f"p99 {p99:.3f} ms  max {ms.max():.3f} ms  goal p99 <= 5 ms: "
              f"{'met' if p99 <= 5.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
