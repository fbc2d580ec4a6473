"""Benchmark of the measurement core: ns per IMU sample for every stage and the full pipeline.

    python benchmarks/core.py [--seconds S] [--json] [--repeats N] [--rounds R]

The data are synthetic hinge reps (IMU at 1 kHz, load cell at 320 SPS, sensor noise added). Each
stage runs alone at block sizes 1, 10 and 100 (and the whole array at once); the full pipeline is
fed IMU and force blocks covering the same time, as the sampler does. ``analyze`` throughput is
measured from a temporary interchange CSV. Stage and pipeline times are the best of --repeats
runs (default 3) (time.perf_counter), so another process's load inflates them less. Also
reported: the pipeline's cost per IMU + force block pair beyond its per-sample work (µs, what a
live daemon pays per block), and for a whole-array and a block-10 run the peak memory held
(tracemalloc) and the minor page faults per minute of data (the whole-array run from a heap
trimmed with malloc_trim: the memory it touches first; the block-10 run in the steady state).

The ratios (with the ``bench`` extra: vqf, imufusion) compare the full pipeline over the whole
array, IMU and force, from construction to ``finish`` (as ``analyze`` runs it) with VQF's
``updateBatch`` (6D, new VQF object each call, the same gyro and accelerometer data converted
to rad/s and m/s² beforehand) and with imufusion's ``Ahrs`` (one Python call per sample, as its
API takes them). Pipeline and VQF run alternately, --rounds times each (default 11), and the
best time of each side counts, so both see the same machine load:

* ``ratio_pipeline_vs_vqf``: both sides with the C allocator keeping the memory freed by the
  previous call (glibc ``mallopt``: no trimming, no separate mappings below 32 MB, for the whole
  benchmark process, after one untimed call of each side): the computation, without the
  kernel's first-touch page faults. Without that setting (glibc keeps or returns freed memory
  by its own heuristics) one side or the other paid ~800-1300 faults of ~1.8 µs each per call
  on this machine depending on the order of earlier allocations, which moved the ratio by
  ±0.1 from run to run.
* ``ratio_pipeline_vs_vqf_cold``: the same rounds, but the heap trimmed (``malloc_trim(0)``)
  before every call, so each side touches every page of its outputs and work arrays afresh,
  as a one-shot ``analyze`` process does; the page faults of each side are reported with it.

Off glibc the allocator settings are skipped (noted in the output) and both ratios are
measured with the allocator as it is.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from spinecoach.analysis import analyze_recording
from spinecoach.core._primary import PrimaryAngleState, primary_step
from spinecoach.core.detect import HoldDetector, PhaseDetector
from spinecoach.core.filters import HampelFilter, LowPassFilter, LowPassSettings
from spinecoach.core.force import ContractionDetector
from spinecoach.core.orientation import OrientationFilter
from spinecoach.core.pipeline import Pipeline, hampel_settings
from spinecoach.core.results import MotionSettings
from spinecoach.drivers.blocks import StreamInfo as Info
from spinecoach.recording.load import load_recording

IMU_HZ = 1000.0
FORCE_HZ = 320.0
BLOCKS = (1, 10, 100)
HINGE = MotionSettings(primary_axis=(0.0, 1.0, 0.0), eccentric_sign=1, hold_target_deg=60.0)


def synthetic(seconds: float, seed: int = 0) -> dict[str, np.ndarray]:
    """Hinge reps (60°, 2-1-1-1 s) seen by a trunk IMU, plus a band force, with noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * IMU_HZ)
    t = np.arange(n) / IMU_HZ
    cycle = 5.0
    u = (t % cycle)
    angle = np.where(u < 2.0, 30 * (1 - np.cos(np.pi * u / 2.0)),
                     np.where(u < 3.0, 60.0, np.where(u < 4.0, 30 * (1 + np.cos(np.pi * (u - 3.0))), 0.0)))
    omega = np.gradient(angle, 1 / IMU_HZ)
    th = np.radians(angle)
    gyro = np.zeros((n, 3))
    gyro[:, 1] = omega
    accel = np.stack([np.cos(th), np.zeros(n), np.sin(th)], axis=1)
    gyro += rng.normal(0, 0.3, gyro.shape) + np.array([0.5, -0.3, 0.2])
    accel += rng.normal(0, 0.01, accel.shape)
    tf = np.arange(int(seconds * FORCE_HZ)) / FORCE_HZ
    force = 150.0 + 5.0 * np.interp(tf, t, angle) + rng.normal(0, 2.0, tf.shape)
    return {"t": t, "gyro": gyro, "accel": accel, "angle": angle, "omega": omega,
            "tf": tf, "force": force}


#: Repeats per measurement (the best is kept); set from --repeats.
REPEATS = [3]


def best_of(fn: Callable[[], None], repeats: int | None = None) -> float:
    best = np.inf
    for _ in range(repeats or REPEATS[0]):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def blocks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def stage_times(d: dict[str, np.ndarray], n_imu: int) -> dict[str, dict[str, float]]:
    """ns per IMU sample of each stage alone, per block size ("all" = one call)."""
    gyro, accel = d["gyro"][:n_imu], d["accel"][:n_imu]
    angle, omega = d["angle"][:n_imu], d["omega"][:n_imu]
    n_force = int(n_imu * FORCE_HZ / IMU_HZ)
    force = d["force"][:n_force]
    q_all = OrientationFilter(IMU_HZ).update(gyro, accel)

    def orientation(size: int) -> None:
        f = OrientationFilter(IMU_HZ)
        for sl in blocks(n_imu, size):
            f.update(gyro[sl], accel[sl])

    def primary(size: int) -> None:
        st = PrimaryAngleState((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0), 0.34)
        ang = np.empty(n_imu)
        rate = np.empty(n_imu)
        for sl in blocks(n_imu, size):
            primary_step(st, q_all[sl], gyro[sl], IMU_HZ, ang[sl], rate[sl])

    def lowpass(size: int) -> None:
        f = LowPassFilter(IMU_HZ, LowPassSettings(15.0, 2))
        for sl in blocks(n_imu, size):
            f.update(omega[sl])

    def phases(size: int) -> None:
        det = PhaseDetector(IMU_HZ, HINGE)
        for sl in blocks(n_imu, size):
            det.update(omega[sl])

    def holds(size: int) -> None:
        det = HoldDetector.for_target(IMU_HZ, HINGE)
        for sl in blocks(n_imu, size):
            det.update(angle[sl])

    def force_chain(size: int) -> None:
        # force blocks covering the same time as `size` IMU samples
        fsize = max(1, round(size * FORCE_HZ / IMU_HZ))
        hampel = HampelFilter(hampel_settings(FORCE_HZ))
        det = ContractionDetector(FORCE_HZ)
        ok = np.ones(n_force, bool)
        for sl in blocks(n_force, fsize):
            clean, _ = hampel.update(force[sl])
            det.update(clean, ok[sl])

    out: dict[str, dict[str, float]] = {}
    for name, fn in [("orientation", orientation), ("primary_angle", primary),
                     ("omega_lowpass", lowpass), ("phases", phases), ("holds", holds),
                     ("force_despike_contractions", force_chain)]:
        out[name] = {}
        for size in (*BLOCKS, n_imu):
            key = "all" if size == n_imu else str(size)
            out[name][key] = best_of(lambda fn=fn, size=size: fn(size)) / n_imu * 1e9
    return out


def pipeline_runner(d: dict[str, np.ndarray], n_imu: int) -> Callable[[int], None]:
    """A function doing one full pipeline run over the first ``n_imu`` IMU samples: IMU blocks
    of the given size, each followed by the force samples up to the same time, as the sampler
    delivers them (the data and index arrays are prepared once, outside the timed call)."""
    gyro, accel = d["gyro"][:n_imu], d["accel"][:n_imu]
    n_force = int(n_imu * FORCE_HZ / IMU_HZ)
    force = d["force"][:n_force]
    idx = np.arange(n_imu)
    fidx = np.arange(n_force)
    infos = [Info("trunk", "imu", IMU_HZ), Info("force", "force", FORCE_HZ)]

    def run(size: int) -> None:
        p = Pipeline(infos, HINGE)
        j = 0
        for sl in blocks(n_imu, size):
            p.feed_imu("trunk", idx[sl], gyro[sl], accel[sl])
            k = min(n_force, int(sl.stop * FORCE_HZ / IMU_HZ))
            if k > j:
                p.feed_force("force", fidx[j:k], force[j:k])
                j = k
        p.finish()

    return run


def pipeline_times(d: dict[str, np.ndarray], n_imu: int, sizes: tuple[int, ...] = BLOCKS) -> dict[str, float]:
    """ns per IMU sample of the full pipeline (IMU 1 kHz + force 320 SPS), per block size
    (``sizes``, plus the whole array as "all")."""
    run = pipeline_runner(d, n_imu)
    out = {}
    for size in (*sizes, n_imu):
        out["all" if size == n_imu else str(size)] = best_of(lambda size=size: run(size)) / n_imu * 1e9
    return out


def block_overhead_us(ns_per_sample: dict[str, float]) -> dict[str, float]:
    """Cost of one IMU block + its force block beyond the per-sample work (µs): the block
    size's ns per sample less the whole array's (same data), times the block size."""
    return {str(b): (ns_per_sample[str(b)] - ns_per_sample["all"]) * b / 1000.0 for b in BLOCKS}


def _libc() -> ctypes.CDLL | None:
    """The C library if it is glibc (mallopt, malloc_trim), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


LIBC = _libc()
#: glibc mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Make the allocator keep what is freed (no trimming, no separate mappings below 32 MB),
    so a timed call reuses pages an earlier call touched; False off glibc."""
    if LIBC is None:
        return False
    return bool(LIBC.mallopt(M_TRIM_THRESHOLD, 1 << 30)) and bool(LIBC.mallopt(M_MMAP_THRESHOLD, 32 << 20))


def trim_heap() -> None:
    """Give every free page of the heap back to the kernel (the next call touches its memory
    afresh, as in a new process)."""
    if LIBC is not None:
        LIBC.malloc_trim(0)


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def pipeline_memory(d: dict[str, np.ndarray], n_imu: int, size: int, cold: bool) -> dict[str, float]:
    """Peak memory held during one pipeline run (MB, tracemalloc: Python objects and numpy
    buffers, above what was held before) and the minor page faults the run took per minute of
    data: ``cold``, the run started from a trimmed heap (every page it touches is new to it, as
    in a one-shot ``analyze``); else after a run on a heap that keeps what is freed (a long-lived
    daemon's steady state)."""
    run = pipeline_runner(d, n_imu)
    run(size)  # warm: the allocator's own state settles first
    minutes = n_imu / IMU_HZ / 60.0
    if cold:
        trim_heap()
    faults0 = minor_faults()
    run(size)
    faults = minor_faults() - faults0
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    run(size)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"peak_mb": (peak - base) / 1e6, "minor_faults_per_min": faults / minutes}


def write_csv(d: dict[str, np.ndarray], path: Path) -> int:
    """Interchange CSV: IMU rows at 1 kHz with force cells on the rows nearest 320 SPS."""
    n = len(d["t"])
    table = np.full((n, 8), np.nan)
    table[:, 0] = d["t"]
    table[:, 1:4] = d["gyro"]
    table[:, 4:7] = d["accel"]
    # force samples are placed on their own rows (time-merged), as a mixed-rate CSV has them
    tf = d["tf"]
    frows = np.full((len(tf), 8), np.nan)
    frows[:, 0] = tf
    frows[:, 7] = d["force"]
    merged = np.concatenate([table, frows])
    order = np.argsort(merged[:, 0], kind="stable")
    merged = merged[order]
    header = ("Time (s),Gyroscope X (deg/s),Gyroscope Y (deg/s),Gyroscope Z (deg/s),"
              "Accelerometer X (g),Accelerometer Y (g),Accelerometer Z (g),Force (N)")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(header + "\n")
        lines = []
        for row in merged:
            cells = [f"{row[0]:.6f}"] + ["" if np.isnan(v) else f"{v:.5f}" for v in row[1:]]
            lines.append(",".join(cells))
        fh.write("\n".join(lines) + "\n")
    return n


def analyze_throughput(d: dict[str, np.ndarray]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.csv"
        n_imu = write_csv(d, path)
        t_load = best_of(lambda: load_recording(path), 2)
        rec = load_recording(path)
        t_an = best_of(lambda: analyze_recording(rec, "hip-hinge"), 2)
    return {
        "imu_samples": n_imu,
        "load_s": t_load,
        "analyze_s": t_an,
        "analyze_imu_samples_per_s": n_imu / t_an,
        "load_and_analyze_imu_samples_per_s": n_imu / (t_load + t_an),
    }


def vqf_batch(d: dict[str, np.ndarray], n_imu: int) -> Callable[[], None] | None:
    """One VQF ``updateBatch`` over the first ``n_imu`` samples (data converted beforehand),
    None without vqf."""
    try:
        from vqf import VQF
    except ImportError:
        return None
    gyro_rad = np.ascontiguousarray(np.radians(d["gyro"][:n_imu]))
    acc_ms2 = np.ascontiguousarray(d["accel"][:n_imu] * 9.80665)
    return lambda: VQF(1 / IMU_HZ).updateBatch(gyro_rad, acc_ms2)


def imufusion_ns(d: dict[str, np.ndarray], n_imu: int) -> float | None:
    """ns per IMU sample of imufusion's AHRS (one Python call per sample), None without it."""
    try:
        import imufusion
    except ImportError:
        return None
    g = np.ascontiguousarray(d["gyro"][:n_imu])
    a = np.ascontiguousarray(d["accel"][:n_imu])

    def fusion() -> None:
        settings = imufusion.AhrsSettings()
        settings.sample_rate = IMU_HZ
        ahrs = imufusion.Ahrs()
        ahrs.set_settings(settings)
        # the Python API takes one sample per call
        for i in range(n_imu):
            ahrs.update_no_magnetometer(g[i], a[i])

    return best_of(fusion, 2) / n_imu * 1e9


def alternating(sides: dict[str, Callable[[], None]], rounds: int, cold: bool) -> dict[str, dict[str, float]]:
    """Best time (s) and mean minor page faults of each side, the sides called in turn
    ``rounds`` times (after one untimed call each); ``cold``: the heap trimmed before every
    call."""
    for fn in sides.values():
        fn()
    best = dict.fromkeys(sides, np.inf)
    faults = dict.fromkeys(sides, 0)
    for _ in range(rounds):
        for name, fn in sides.items():
            if cold:
                trim_heap()
            f0 = minor_faults()
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            faults[name] += minor_faults() - f0
            best[name] = min(best[name], dt)
    return {name: {"s": best[name], "faults": faults[name] / rounds} for name in sides}


def reference_ratios(d: dict[str, np.ndarray], n_imu: int, rounds: int) -> dict[str, Any]:
    """The whole-array pipeline against VQF (alternating, warm and cold, see the module
    docstring) and imufusion; empty figures without those packages."""
    out: dict[str, Any] = {"ns_per_imu_sample": {}, "page_faults_per_call_cold": {}}
    run = pipeline_runner(d, n_imu)
    sides: dict[str, Callable[[], None]] = {"pipeline": lambda: run(n_imu)}
    vqf = vqf_batch(d, n_imu)
    if vqf is not None:
        sides["vqf_batch"] = vqf
    warm = alternating(sides, rounds, cold=False)
    cold = alternating(sides, rounds, cold=True)
    ns = out["ns_per_imu_sample"]
    for name in sides:
        ns[name] = warm[name]["s"] / n_imu * 1e9
        ns[name + "_cold"] = cold[name]["s"] / n_imu * 1e9
        out["page_faults_per_call_cold"][name] = cold[name]["faults"]
    fusion = imufusion_ns(d, n_imu)
    if fusion is not None:
        ns["imufusion"] = fusion
    out["ratio_pipeline_vs_vqf"] = (warm["pipeline"]["s"] / warm["vqf_batch"]["s"]
                                    if vqf is not None else None)
    out["ratio_pipeline_vs_vqf_cold"] = (cold["pipeline"]["s"] / cold["vqf_batch"]["s"]
                                         if vqf is not None else None)
    out["ratio_pipeline_vs_imufusion"] = ns["pipeline"] / fusion if fusion is not None else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="synthetic data length (s)")
    parser.add_argument("--json", action="store_true", help="print a JSON copy of the results")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per figure (best kept)")
    parser.add_argument("--rounds", type=int, default=11,
                        help="alternating pipeline/VQF rounds for the ratios (best of each kept)")
    args = parser.parse_args(argv)
    REPEATS[0] = max(1, args.repeats)
    allocator_kept = keep_freed_memory()
    d = synthetic(args.seconds)
    n_imu = len(d["t"])
    # block size 1 is dominated by per-call overhead; 10 s of it is plenty to measure that
    res: dict[str, Any] = {
        "imu_rate_hz": IMU_HZ,
        "force_rate_hz": FORCE_HZ,
        "imu_samples": n_imu,
        "allocator_keeps_freed_memory": allocator_kept,
        "stages_ns_per_imu_sample": stage_times(d, min(n_imu, int(10 * IMU_HZ))),
        "pipeline_ns_per_imu_sample": pipeline_times(d, min(n_imu, int(10 * IMU_HZ))),
    }
    # per-block cost against the whole array over the same 10 s (the fixed cost of a run,
    # e.g. finish, weighs the same in both); the table's "all" is then the full length
    res["pipeline_block_overhead_us"] = block_overhead_us(res["pipeline_ns_per_imu_sample"])
    res["pipeline_ns_per_imu_sample"]["all"] = pipeline_times(d, n_imu, ())["all"]
    res["pipeline_memory"] = {"all": pipeline_memory(d, n_imu, n_imu, cold=True),
                              "10": pipeline_memory(d, min(n_imu, int(10 * IMU_HZ)), 10, cold=False)}
    res["analyze"] = analyze_throughput(d)
    refs = reference_ratios(d, n_imu, max(1, args.rounds))
    res["reference_ns_per_imu_sample"] = refs["ns_per_imu_sample"]
    res["page_faults_per_call_cold"] = refs["page_faults_per_call_cold"]
    for key in ("ratio_pipeline_vs_vqf", "ratio_pipeline_vs_vqf_cold", "ratio_pipeline_vs_imufusion"):
        res[key] = refs[key]
    print_table(res)
    if args.json:
        print(json.dumps(res, indent=2))
    return 0


def print_table(res: dict) -> None:
    cols = [*map(str, BLOCKS), "all"]
    print(f"ns per IMU sample (IMU {res['imu_rate_hz']:g} Hz, force {res['force_rate_hz']:g} SPS)")
    print(f"{'stage':28s}" + "".join(f"{'block ' + c:>12s}" for c in cols))
    for name, row in res["stages_ns_per_imu_sample"].items():
        print(f"{name:28s}" + "".join(f"{row[c]:12.0f}" for c in cols))
    row = res["pipeline_ns_per_imu_sample"]
    print(f"{'full pipeline':28s}" + "".join(f"{row[c]:12.0f}" for c in cols))
    over = res["pipeline_block_overhead_us"]
    print(f"{'  per block pair (µs)':28s}" + "".join(f"{over[c]:12.1f}" for c in cols[:-1]))
    for key, m in res["pipeline_memory"].items():
        how = "from a trimmed heap" if key == "all" else "steady state"
        print(f"  memory, block {key}: peak {m['peak_mb']:.1f} MB held, "
              f"{m['minor_faults_per_min']:.0f} page faults per minute of data ({how})")
    print(f"whole array, alternating with VQF (best of --rounds; allocator "
          f"{'keeping freed memory' if res['allocator_keeps_freed_memory'] else 'as it is'}):")
    for name, v in res["reference_ns_per_imu_sample"].items():
        print(f"  {name:26s}{v:12.0f}")
    for name, v in res["page_faults_per_call_cold"].items():
        print(f"  {name + ' page faults (cold)':26s}{v:12.0f}")
    a = res["analyze"]
    print(f"analyze: {a['analyze_imu_samples_per_s'] / 1e6:.2f} M IMU samples/s "
          f"(with CSV load {a['load_and_analyze_imu_samples_per_s'] / 1e6:.2f} M/s)")
    for key in ("ratio_pipeline_vs_vqf", "ratio_pipeline_vs_vqf_cold", "ratio_pipeline_vs_imufusion"):
        v = res[key]
        print(f"{key}: {'not measured (pip install vqf imufusion)' if v is None else f'{v:.2f}'}")


if __name__ == "__main__":
    sys.exit(main())
