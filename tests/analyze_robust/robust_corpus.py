"""Stress corpus for `spinecoach analyze`, generated from the bundled recordings at test time.

Sources: the simulated rig's scenarios (``tests/fixtures/*.screc`` with their ground truth) and
the real recordings in ``tests/fixtures/realdata`` (BROAD trial 07, force-plate jumps). Each
builder returns interchange-CSV text (or a :class:`Recording`) with one real-signal problem
added: another sample rate (anti-aliased before decimating), timestamp jitter, holes, drifting
or humming force, clipping, odd formatting. Nothing large is committed; files go to tmp_path.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.blocks import StreamInfo
from spinecoach.recording.interchange import FORCE_COLUMN, IMU_COLUMNS, TIME_COLUMN
from spinecoach.recording.load import load_recording
from spinecoach.recording.model import ForceStream, ImuStream, Recording

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REALDATA = FIXTURES / "realdata"
BROAD_CSV = REALDATA / "broad-07-fast-rotation" / "imu.csv"
JUMPS = REALDATA / "jumps-fz"

FloatArray = npt.NDArray[np.float64]

#: Scenarios with a repetitive movement: (scenario, exercise id of the library).
REP_SCENARIOS = ("good_morning_tempo", "chained_good_morning", "dumbbell_row_slow_eccentric",
                 "single_leg_deadlift", "rotational_throws")
#: The IMU rates of the corpus (Hz), BROAD's 285.714 among them.
IMU_RATES_HZ = (25.0, 50.0, 100.0, 200.0, 1000.0 / 3.5, 500.0, 1000.0)


def truth(scenario: str) -> dict:
    return json.loads((FIXTURES / f"{scenario}.truth.json").read_text())


def scenario(scenario: str) -> Recording:
    return load_recording(FIXTURES / f"{scenario}.screc")


# ------------------------------------------------------------------------------ resampling
def _lowpass_fft(x: FloatArray, rate_hz: float, cutoff_hz: float) -> FloatArray:
    """Zero-phase low-pass of the columns of ``x``: a raised-cosine roll-off from 0.8 x
    ``cutoff_hz`` to ``cutoff_hz`` in the spectrum (the ends are mirrored first, so the
    circular FFT sees no step between the last and the first sample)."""
    n = x.shape[0]
    ext = np.concatenate([x[::-1], x, x[::-1]], axis=0)
    spec = np.fft.rfft(ext, axis=0)
    f = np.fft.rfftfreq(ext.shape[0], 1.0 / rate_hz)
    lo = 0.8 * cutoff_hz
    gain = np.clip((cutoff_hz - f) / (cutoff_hz - lo), 0.0, 1.0)
    gain = 0.5 - 0.5 * np.cos(np.pi * gain)
    out = np.fft.irfft(spec * gain[:, None], n=ext.shape[0], axis=0)
    return out[n:2 * n]


def resample(t_s: FloatArray, x: FloatArray, rate_hz: float, new_rate_hz: float,
             t0_s: float | None = None, t_end_s: float | None = None) -> tuple[FloatArray, FloatArray]:
    """Samples of ``x`` (rows at ``t_s``, uniform at ``rate_hz``) at ``new_rate_hz``.

    Decimation low-passes at 0.45 x the new rate first (anti-aliasing); then linear
    interpolation at the new sample times. Returns (new times, new rows).
    """
    x2 = x.reshape(len(t_s), -1)
    if new_rate_hz < rate_hz:
        x2 = _lowpass_fft(x2, rate_hz, 0.45 * new_rate_hz)
    start = t_s[0] if t0_s is None else t0_s
    end = t_s[-1] if t_end_s is None else t_end_s
    t_new = start + np.arange(int(math.floor((end - start) * new_rate_hz)) + 1) / new_rate_hz
    cols = [np.interp(t_new, t_s, x2[:, j]) for j in range(x2.shape[1])]
    return t_new, np.column_stack(cols)


def stream_times(info: StreamInfo, index: npt.NDArray[np.int64]) -> FloatArray:
    return info.t0_s + index / info.rate_hz


def resample_imu(s: ImuStream, new_rate_hz: float, name: str | None = None) -> ImuStream:
    t = stream_times(s.info, s.index)
    t_new, rows = resample(t, np.hstack([s.gyro_dps, s.accel_g]), s.info.rate_hz, new_rate_hz)
    n = len(t_new)
    info = replace(s.info, name=name or s.info.name, rate_hz=new_rate_hz, t0_s=float(t_new[0]))
    return ImuStream(info, np.arange(n), rows[:, :3].copy(), rows[:, 3:].copy(), np.ones(n, bool))


def resample_force(s: ForceStream, new_rate_hz: float) -> ForceStream:
    t = stream_times(s.info, s.index)
    t_new, rows = resample(t, s.force_n, s.info.rate_hz, new_rate_hz)
    n = len(t_new)
    info = replace(s.info, rate_hz=new_rate_hz, t0_s=float(t_new[0]))
    return ForceStream(info, np.arange(n), rows[:, 0].copy(), np.ones(n, bool))


def at_rate(rec: Recording, imu_rate_hz: float, force_rate_hz: float | None = None) -> Recording:
    """``rec`` with every IMU at ``imu_rate_hz`` and every load cell at ``force_rate_hz``
    (default: unchanged)."""
    return Recording(
        {k: resample_imu(s, imu_rate_hz) for k, s in rec.imu.items()},
        {k: (resample_force(s, force_rate_hz) if force_rate_hz else s)
         for k, s in rec.force.items()},
        dict(rec.meta),
    )


# ------------------------------------------------------------------------------ CSV writing
def _column_names(name: str, kind: str) -> list[str]:
    default = "trunk" if kind == "imu" else "force"
    suffix = "" if name == default else f" [{name}]"
    return [c + suffix for c in (IMU_COLUMNS if kind == "imu" else (FORCE_COLUMN,))]


def table(rec: Recording, jitter_s: float = 0.0, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """Header and rows (cells as text) of ``rec`` as an interchange CSV: each stream's
    samples at their sample times (plus uniform jitter of ±``jitter_s``), rows merged in time,
    empty cells where a stream has no sample. Only the time column tells the rates."""
    rng = np.random.default_rng(seed)
    header = [TIME_COLUMN]
    parts = []
    col = 1
    streams = [*rec.imu.values(), *rec.force.values()]
    for s in streams:
        header += _column_names(s.info.name, s.info.kind)
        t = stream_times(s.info, s.index[s.valid])
        if jitter_s:
            t = t + rng.uniform(-jitter_s, jitter_s, len(t))
        vals = (np.hstack([s.gyro_dps, s.accel_g]) if isinstance(s, ImuStream)
                else s.force_n[:, None])[s.valid]
        parts.append((t, col, vals))
        col += vals.shape[1]
    t_all = np.concatenate([p[0] for p in parts])
    order = np.argsort(t_all, kind="stable")
    width = len(header)
    rows: list[list[str]] = []
    # one row per sample (streams never share a row: no coincident-time assumptions)
    owner = np.concatenate([np.full(len(p[0]), k) for k, p in enumerate(parts)])
    pos = np.concatenate([np.arange(len(p[0])) for p in parts])
    text_vals = [np.char.mod("%.6f", p[2]) for p in parts]
    for i in order:
        k, j = int(owner[i]), int(pos[i])
        t, c0, _ = parts[k]
        row = [""] * width
        row[0] = f"{t[j]:.9f}"
        row[c0:c0 + text_vals[k].shape[1]] = list(text_vals[k][j])
        rows.append(row)
    return header, rows


def csv_of(header: list[str], rows: list[list[str]], newline: str = "\n") -> str:
    return newline.join([",".join(header), *(",".join(r) for r in rows)]) + newline


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def broad() -> Recording:
    return load_recording(BROAD_CSV)


def jump(name: str = "single-cmj") -> Recording:
    return load_recording(JUMPS / f"{name}.csv")


# ------------------------------------------------------------------------------ signal faults
def with_force(rec: Recording, fn) -> Recording:
    """``rec`` with every load cell's force replaced by ``fn(t_s, force_n)``."""
    force = {}
    for k, s in rec.force.items():
        t = stream_times(s.info, s.index)
        force[k] = ForceStream(s.info, s.index, np.asarray(fn(t, s.force_n.copy()), float),
                               s.valid.copy(), None, list(s.gaps))
    return Recording(dict(rec.imu), force, dict(rec.meta))


def with_imu(rec: Recording, fn) -> Recording:
    """``rec`` with every IMU's (gyro, accel) replaced by ``fn(t_s, gyro, accel)``."""
    imu = {}
    for k, s in rec.imu.items():
        t = stream_times(s.info, s.index)
        gyro, accel = fn(t, s.gyro_dps.copy(), s.accel_g.copy())
        imu[k] = ImuStream(s.info, s.index, gyro, accel, s.valid.copy(), None, list(s.gaps))
    return Recording(imu, dict(rec.force), dict(rec.meta))


def _keep(s, keep: npt.NDArray[np.bool_]):
    if isinstance(s, ImuStream):
        return ImuStream(s.info, s.index[keep], s.gyro_dps[keep], s.accel_g[keep], s.valid[keep])
    return ForceStream(s.info, s.index[keep], s.force_n[keep], s.valid[keep])


def without(rec: Recording, t0_s: float, t1_s: float, kinds: tuple[str, ...] = ("imu", "force"),
            before_s: float | None = None, after_s: float | None = None) -> Recording:
    """``rec`` with the samples of the given kinds in [t0_s, t1_s) removed (a hole in the
    file); ``before_s``/``after_s`` also remove everything before/after (late start, early
    end)."""
    def cut(s):
        t = stream_times(s.info, s.index)
        keep = ~((t >= t0_s) & (t < t1_s))
        if before_s is not None:
            keep &= t >= before_s
        if after_s is not None:
            keep &= t <= after_s
        return _keep(s, keep)
    return Recording(
        {k: (cut(s) if "imu" in kinds else s) for k, s in rec.imu.items()},
        {k: (cut(s) if "force" in kinds else s) for k, s in rec.force.items()},
        dict(rec.meta),
    )


def still_imu(name: str, rate_hz: float, duration_s: float, seed: int = 0) -> ImuStream:
    """An IMU lying still (gravity along +x, white noise), e.g. a second IMU that stays put."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * rate_hz)
    gyro = rng.normal(0.0, 0.1, (n, 3)) + np.array([0.3, -0.2, 0.1])
    accel = rng.normal(0.0, 0.005, (n, 3)) + np.array([1.0, 0.0, 0.0])
    return ImuStream(StreamInfo(name, "imu", rate_hz), np.arange(n), gyro, accel, np.ones(n, bool))


# ------------------------------------------------------------------------------ long files
def write_long_csv(path: Path, duration_s: float, scenario_name: str = "good_morning_tempo") -> int:
    """A long interchange CSV: the scenario (IMU 1 kHz, load cell 320 SPS) repeated back to
    back for ``duration_s``, written piece by piece (never whole in memory). Returns the
    number of complete repetitions (each holds the scenario's reps)."""
    rec = scenario(scenario_name)
    header, rows = table(rec)
    one = [(float(r[0]), ",".join(r[1:])) for r in rows]
    span_s = rec.duration_s + 1.0 / rec.imu["trunk"].info.rate_hz
    times = np.array([t for t, _ in one]) - one[0][0]
    cells = [c for _, c in one]
    repeats = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write(",".join(header) + "\n")
        while True:
            offset = repeats * span_s
            if offset >= duration_s:
                break
            keep = times + offset < duration_s
            out.writelines(f"{t + offset:.6f},{c}\n" for t, c, k in zip(times, cells, keep) if k)
            if keep.all():
                repeats += 1
            else:
                break
    return repeats
