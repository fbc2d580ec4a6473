"""Orientation filter cost and accuracy against VQF and imufusion on BROAD trial 07.

    python benchmarks/orientation.py [--repeat N] [--json]

Prints ns per IMU sample for spinecoach's OrientationFilter (one block, and blocks of 100, 10
and 1 samples), for VQF (``vqf`` package: ``VQF.updateBatch`` and ``offlineVQF``) and for
imufusion (``Ahrs.update_no_magnetometer`` called per sample from Python, as its API offers no
batch call), and each filter's inclination RMSE with the dataset's own measure. Timings are the
minimum over ``--repeat`` interleaved runs, so a loaded machine inflates all contenders alike.
VQF and imufusion come from the ``bench`` extra (``pip install -e .[bench]``); without them only
spinecoach's figures are printed.

BROAD: D. Laidig, M. Caruso, A. Cereatti, T. Seel, "BROAD — A Benchmark for Robust Inertial
Orientation Estimation", Data 6(7):72, 2021 (CC BY 4.0), trial 07_undisturbed_fast_rotation_B.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from spinecoach.core.angles import heading_free_error_deg
from spinecoach.core.orientation import OrientationFilter, OrientationSettings

BROAD_DIR = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "broad-07-fast-rotation"
if not BROAD_DIR.is_dir():
    BROAD_DIR = Path("/work/shared/realdata/broad-07-fast-rotation")
G_MPS2 = 9.80665


def load_broad() -> dict[str, np.ndarray | float]:
    imu = np.loadtxt(BROAD_DIR / "imu.csv", delimiter=",", skiprows=1)
    ref = np.genfromtxt(BROAD_DIR / "reference.csv", delimiter=",", skip_header=1)
    return {
        "rate_hz": 1.0 / float(np.median(np.diff(imu[:, 0]))),
        "gyro_dps": np.ascontiguousarray(imu[:, 1:4]),
        "accel_g": np.ascontiguousarray(imu[:, 4:7]),
        "q_ref": ref[:, 1:5],
        "evaluate": (ref[:, 5] == 1) & np.isfinite(ref[:, 1:5]).all(axis=1),
    }


def rmse_deg(q: np.ndarray, data: dict) -> float:
    mask = data["evaluate"]
    err = heading_free_error_deg(q[mask], data["q_ref"][mask])
    return math.sqrt(float(np.mean(err**2)))


def spinecoach_blocks(data: dict, block: int, settings: OrientationSettings, n: int) -> np.ndarray:
    filt = OrientationFilter(data["rate_hz"], settings)
    gyro, accel = data["gyro_dps"][:n], data["accel_g"][:n]
    if block >= n:
        return filt.update(gyro, accel)
    return np.concatenate([filt.update(gyro[i : i + block], accel[i : i + block]) for i in range(0, n, block)])


def contenders(data: dict) -> dict[str, tuple[Callable[[], np.ndarray], int]]:
    """name -> (run returning quaternions, samples it processes)."""
    n = data["gyro_dps"].shape[0]
    default = OrientationSettings()
    out: dict[str, tuple[Callable[[], np.ndarray], int]] = {
        "spinecoach (one block)": (lambda: spinecoach_blocks(data, n, default, n), n),
        "spinecoach (blocks of 100)": (lambda: spinecoach_blocks(data, 100, default, n), n),
        "spinecoach (blocks of 10)": (lambda: spinecoach_blocks(data, 10, default, n), n),
        "spinecoach (blocks of 1)": (lambda: spinecoach_blocks(data, 1, default, 10000), 10000),
        # No output prediction at all (no delay, no half-sample correction): the fusion alone,
        # as VQF outputs it.
        "spinecoach, no output prediction": (
            lambda: spinecoach_blocks(
                data, n, OrientationSettings(gyro_delay_s=0.0, gyro_rate_is_period_mean=True), n),
            n,
        ),
    }
    ts_s = 1.0 / data["rate_hz"]
    try:
        import vqf
    except ImportError:
        vqf = None
    if vqf is not None:
        def vqf_batch() -> np.ndarray:
            # Unit conversion is part of the cost: VQF wants rad/s and m/s².
            gyr = np.ascontiguousarray(np.radians(data["gyro_dps"]))
            acc = np.ascontiguousarray(data["accel_g"] * G_MPS2)
            return vqf.VQF(ts_s).updateBatch(gyr, acc)["quat6D"]

        def vqf_offline() -> np.ndarray:
            gyr = np.ascontiguousarray(np.radians(data["gyro_dps"]))
            acc = np.ascontiguousarray(data["accel_g"] * G_MPS2)
            return vqf.offlineVQF(gyr, acc, None, ts_s)["quat6D"]

        out["vqf VQF.updateBatch"] = (vqf_batch, n)
        out["vqf offlineVQF (not real-time)"] = (vqf_offline, n)
    try:
        import imufusion
    except ImportError:
        imufusion = None
    if imufusion is not None:
        def fusion() -> np.ndarray:
            settings = imufusion.AhrsSettings()
            settings.convention = imufusion.CONVENTION_ENU
            settings.sample_rate = data["rate_hz"]
            settings.gain = 0.5
            settings.gyroscope_range = 2000.0
            settings.acceleration_rejection = 10.0
            settings.rejection_timeout = int(5 * data["rate_hz"])
            ahrs = imufusion.Ahrs()
            ahrs.set_settings(settings)
            bias = imufusion.Bias()
            bias_settings = imufusion.BiasSettings()
            bias_settings.sample_rate = data["rate_hz"]
            bias.set_settings(bias_settings)
            q = np.empty((n, 4))
            for i, (gyro, accel) in enumerate(zip(data["gyro_dps"], data["accel_g"], strict=True)):
                ahrs.update_no_magnetometer(bias.update(gyro), accel)
                q[i] = ahrs.get_quaternion()
            return q

        out["imufusion Ahrs (Python loop)"] = (fusion, n)
    return out


def measure(data: dict, repeat: int) -> dict[str, dict[str, float]]:
    runs = contenders(data)
    best = {name: math.inf for name in runs}
    quats: dict[str, np.ndarray] = {}
    for _ in range(repeat):
        for name, (run, _n) in runs.items():
            start = time.perf_counter()
            quats[name] = run()
            best[name] = min(best[name], time.perf_counter() - start)
    results: dict[str, dict[str, float]] = {}
    for name, (_run, n) in runs.items():
        row = {"ns_per_sample": best[name] / n * 1e9}
        if quats[name].shape[0] == data["gyro_dps"].shape[0]:
            row["rmse_deg"] = rmse_deg(quats[name], data)
        results[name] = row
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="interleaved runs; the minimum counts")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    data = load_broad()
    results = measure(data, max(1, args.repeat))
    vqf_ns = results.get("vqf VQF.updateBatch", {}).get("ns_per_sample")
    if vqf_ns:
        for row in results.values():
            row["ratio_vs_vqf_batch"] = row["ns_per_sample"] / vqf_ns
    if args.json:
        print(json.dumps({"data": "BROAD trial 07", "rate_hz": data["rate_hz"], "results": results}, indent=2))
        return 0
    print(f"BROAD trial 07, {data['gyro_dps'].shape[0]} samples at {data['rate_hz']:.3f} Hz")
    print(f"{'filter':<38} {'ns/sample':>10} {'vs VQF':>8} {'RMSE (deg)':>11}")
    for name, row in results.items():
        ratio = f"{row['ratio_vs_vqf_batch']:.2f}" if "ratio_vs_vqf_batch" in row else "-"
        rmse = f"{row['rmse_deg']:.3f}" if "rmse_deg" in row else "-"
        print(f"{name:<38} {row['ns_per_sample']:>10.0f} {ratio:>8} {rmse:>11}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
