"""Acquisition soak benchmark: wall time of simulated minutes through the real drivers.

Runs the issue's soak (IMU at 1 kHz plus NAU7802 at 320 SPS, 1 % errno 121, 0.1 % errno 110,
0.1 % errno 5 on every transaction) on the simulated rig as fast as possible and reports the
wall time, the accounting, the gap share and the bus load at 400 kHz. The target is at most 10 s
of wall time for 10 simulated minutes on a 2-core machine.

    python benchmarks/acquisition.py                 # 600 simulated seconds
    python benchmarks/acquisition.py --seconds 60    # a quicker look
    python benchmarks/acquisition.py --kill-cycles 50   # kill -9 while recording: loss per kill
    python benchmarks/acquisition.py --bus-options --seconds 20   # wire time of the options
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import pstats
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spinecoach.acquisition.sim_rig import build_sim_rig
from spinecoach.recording.native import scan_native

SOAK_FAULTS = "121:0.01,110:0.001,5:0.001"


def kill_cycle(out: Path, rng: random.Random, scenario: str) -> tuple[float, int]:
    """Record in real time in a subprocess, SIGKILL it at a random moment; return the sample
    time acquired but not on disk (s) and the size of the torn tail (bytes)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "spinecoach", "record", "--backend", f"sim:{scenario}",
         "--realtime", "--progress", "--seconds", "60", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    time.sleep(rng.uniform(0.05, 3.0))
    proc.send_signal(signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    acquired = max((float(ln[2:]) for ln in rest.splitlines() if ln.startswith("t=")), default=0.0)
    scanned = scan_native(out)
    rec = scanned.recording
    on_disk = max(
        (s.info.t0_s + float(s.index[-1]) / s.info.rate_hz
         for s in [*rec.imu.values(), *rec.force.values()] if len(s.index)),
        default=min(s.t0_s for s in rec.streams),
    )
    return max(0.0, acquired - on_disk), scanned.torn_tail_bytes


def bus_options(seconds: float, scenario: str) -> None:
    """Wire time on a clean bus for the drain cadences and IMU rates of the README's table,
    and the same without the NAU7802's status reads (what its DRDY pin on a GPIO would save)."""
    from spinecoach.acquisition.sampler import SamplerSettings
    from spinecoach.drivers.nau7802 import REG_PU_CTRL
    from spinecoach.drivers.sim import scenarios

    options = [
        ("IMU 1 kHz, drained after every conversion", None, 1),
        ("IMU 1 kHz, drained after every 2nd conversion", None, 6),
        ("IMU 1 kHz, drained after every 4th conversion", None, 12),
        ("IMU 500 Hz, drained after every conversion", 500.0, 1),
        ("IMU 500 Hz, drained after every 2nd conversion", 500.0, 3),
    ]
    build = scenarios.build_scenario
    for label, imu_rate_hz, paced_drain_frames in options:
        if imu_rate_hz is not None:
            def at_rate(*a: object, r: float = imu_rate_hz, **k: object) -> object:
                return dataclasses.replace(build(*a, **k), imu_rate_hz=r)  # type: ignore[arg-type]

            scenarios.build_scenario = at_rate  # type: ignore[assignment]
        try:
            rig = build_sim_rig(scenario)
        finally:
            scenarios.build_scenario = build
        bus = rig.bus
        status_s = [0.0]
        read_byte = bus.read_byte_data
        load_cells = {getattr(f, "address", None) for f in rig.forces}

        def counting_read(i2c_addr: int, register: int, read_byte=read_byte, bus=bus) -> int:
            if register == REG_PU_CTRL and i2c_addr in load_cells:
                status_s[0] += (4 * 9 + 2) / bus.bus_hz
            return read_byte(i2c_addr, register)

        bus.read_byte_data = counting_read  # type: ignore[method-assign]
        sampler = rig.sampler(settings=SamplerSettings(paced_drain_frames=paced_drain_frames))
        gaps = sum(len(block.gaps) for block in sampler.blocks(seconds))
        wire_s = bus.counters.wire_time_s
        print(f"{label:48s} {100 * wire_s / seconds:5.1f} % of the bus, without status reads "
              f"{100 * (wire_s - status_s[0]) / seconds:5.1f} %, "
              f"{bus.counters.transactions / seconds:5.0f} transactions/s, {gaps} gaps")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="simulated seconds")
    parser.add_argument("--scenario", default="good_morning_tempo")
    parser.add_argument("--faults", default=SOAK_FAULTS)
    parser.add_argument("--profile", action="store_true", help="print the top functions")
    parser.add_argument("--kill-cycles", type=int, default=0,
                        help="instead: kill -9 `spinecoach record` this many times")
    parser.add_argument("--bus-options", action="store_true",
                        help="instead: wire time of the drain cadences and IMU rates (clean bus)")
    args = parser.parse_args()
    if args.bus_options:
        bus_options(args.seconds, args.scenario)
        return 0
    if args.kill_cycles:
        rng = random.Random(1)
        with tempfile.TemporaryDirectory() as tmp:
            results = [kill_cycle(Path(tmp) / f"k{i}.screc", rng, args.scenario)
                       for i in range(args.kill_cycles)]
        lost_ms = sorted(1e3 * lost for lost, _ in results)
        torn = sum(1 for _, t in results if t)
        print(f"{args.kill_cycles} kill -9 cycles: every file opened; sample time lost per kill "
              f"median {lost_ms[len(lost_ms) // 2]:.0f} ms, max {lost_ms[-1]:.0f} ms; "
              f"{torn} files had a torn tail (skipped by the reader)")
        return 0

    rig = build_sim_rig(args.scenario, faults=args.faults, fault_seed=7)
    sampler = rig.sampler()
    profiler = cProfile.Profile() if args.profile else None
    start = time.perf_counter()
    cpu_start = time.process_time()
    if profiler:
        profiler.enable()
    blocks = 0
    for _ in sampler.blocks(args.seconds):
        blocks += 1
    if profiler:
        profiler.disable()
    wall_s = time.perf_counter() - start
    cpu_s = time.process_time() - cpu_start

    print(f"simulated {args.seconds:g} s of {args.scenario} with faults {args.faults!r}")
    print(f"wall time {wall_s:.2f} s ({args.seconds / wall_s:.0f}x real time), CPU time "
          f"{cpu_s:.2f} s, load average {os.getloadavg()[0]:.1f}, {blocks} blocks")
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
