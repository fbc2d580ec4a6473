"""Acquisition soak benchmark: wall time of simulated minutes through the real drivers.

Runs the issue's soak (IMU at 1 kHz plus NAU7802 at 320 SPS, 1 % errno 121, 0.1 % errno 110,
0.1 % errno 5 on every transaction) on the simulated rig as fast as possible and reports the
wall time, the accounting, the gap share and the bus load at 400 kHz. The target is at most 10 s
of wall time for 10 simulated minutes on a 2-core machine.

    python benchmarks/acquisition.py                 # 600 simulated seconds
    python benchmarks/acquisition.py --seconds 60    # a quicker look
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from spinecoach.acquisition.sim_rig import build_sim_rig

SOAK_FAULTS = "121:0.01,110:0.001,5:0.001"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="simulated seconds")
    parser.add_argument("--scenario", default="good_morning_tempo")
    parser.add_argument("--faults", default=SOAK_FAULTS)
    parser.add_argument("--profile", action="store_true", help="print the top functions")
    args = parser.parse_args()

    rig = build_sim_rig(args.scenario, faults=args.faults, fault_seed=7)
    sampler = rig.sampler()
    profiler = cProfile.Profile() if args.profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    blocks = 0
    for _ in sampler.blocks(args.seconds):
        blocks += 1
    if profiler:
        profiler.disable()
    wall_s = time.perf_counter() - start

    print(f"simulated {args.seconds:g} s of {args.scenario} with faults {args.faults!r}")
    print(f"wall time {wall_s:.2f} s ({args.seconds / wall_s:.0f}x real time), {blocks} blocks")
    for name, a in sampler.accounts().items():
        share = 100.0 * a.gap_samples / max(1, a.expected)
        print(f"  {name:6s} expected {a.expected:8d}  delivered {a.delivered:8d}  "
              f"gaps {a.gap_samples} in {a.gap_records} records ({share:.4f} %)  "
              f"accounted {'yes' if a.delivered + a.gap_samples == a.expected else 'NO'}")
    c = rig.bus.counters
    print(f"bus: {c.transactions} transactions, {c.bytes_on_wire} bytes, wire time "
          f"{100.0 * c.wire_time_s / args.seconds:.1f} % of the bus at {rig.bus.bus_hz / 1e3:g} kHz")
    print(f"injected errors: {dict(sorted(c.injected_errors.items()))}, retries "
          f"{rig.retrying_bus.stats.retries}, failures after retries {rig.retrying_bus.stats.failures}")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
