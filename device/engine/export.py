"""Export of stored sessions, sets or an athlete's history to CSV, JSON and PNG plots.

``spinecoach export --session ID | --set ID | --athlete NAME [--format csv,json,png]
[--out DIR]``. Every file is written atomically (a temporary file in the same folder, flushed,
fsynced and renamed over the target), so a reader never sees half a file. Names are sanitised to
letters, digits, ``-``, ``_`` and ``.`` and checked to resolve inside the export folder: nothing
is written outside it, whatever an athlete is called. PNG plots (force-time and force-angle per
set, progress over sessions) need the optional ``plot`` extra (matplotlib); without it the
command says how to install it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from spinecoach.config import load_config
from spinecoach.engine.library import load_library
from spinecoach.engine.progression import TREND_FIGURE, History
from spinecoach.engine.reader import SetRow, StoreReader
from spinecoach.errors import StorageError, UsageError

FORMATS = ("csv", "json", "png")

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def sanitise(name: str) -> str:
    """A file-name part with no separators, no leading dots and at most 80 characters."""
    cleaned = re.sub(r"\.{2,}", "_", _SAFE.sub("_", name))
    cleaned = re.sub(r"_{2,}", "_", cleaned).strip("._-")[:80]
    return cleaned or "export"


def safe_target(folder: Path, name: str) -> Path:
    """``folder/sanitise(name)``, refusing anything that would resolve outside ``folder`` (an
    existing symbolic link pointing elsewhere, say)."""
    target = (folder / sanitise(name)).resolve()
    if target.parent != folder.resolve():
        raise UsageError(f"export name {name!r} would leave the export folder {folder}")
    return target


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if isinstance(v, float) and math.isnan(v) else v for v in row])
    return buffer.getvalue().encode()


def _json_safe(value: Any) -> Any:
    """NaN is not JSON: write null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


class Exporter:
    """Writes the chosen sets into ``folder`` with names starting ``base``."""

    def __init__(self, reader: StoreReader, folder: Path, base: str) -> None:
        self.reader = reader
        self.folder = folder
        self.base = sanitise(base)
        self.written: list[Path] = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError(f"cannot create export folder {folder}: {error.strerror}") from None

    def _write(self, suffix: str, data: bytes) -> None:
        path = safe_target(self.folder, f"{self.base}_{suffix}")
        try:
            atomic_write(path, data)
        except OSError as error:
            raise StorageError(f"cannot write {path}: {error.strerror}; free space or choose "
                               "another --out folder") from None
        self.written.append(path)

    # CSV --------------------------------------------------------------------------------------

    def csv(self, sets: Sequence[SetRow]) -> None:
        r = self.reader
        self._write("sets.csv", _csv_bytes(
            ["set_id", "session_id", "athlete", "started_utc", "number", "exercise", "protocol",
             "side", "prescription", "status", "targets_met", "start (s)", "end (s)"],
            [(s.id, s.session_id, s.athlete, s.started_utc, s.number, s.exercise, s.protocol,
              s.side or "", s.prescription, s.status,
              "" if s.targets_met is None else int(s.targets_met), s.start_s,
              "" if s.end_s is None else s.end_s) for s in sets]))
        self._write("metrics.csv", _csv_bytes(
            ["set_id", "metric", "index", "value", "unit"],
            [(s.id, m.name, "" if m.index is None else m.index, m.value, m.unit)
             for s in sets for m in r.metrics(s.id)]))
        self._write("reps.csv", _csv_bytes(
            ["set_id", "rep", "start (s)", "end (s)", "range of motion (deg)", "eccentric (s)",
             "pause lengthened (s)", "concentric (s)", "pause shortened (s)",
             "peak eccentric speed (deg/s)", "mean concentric speed (deg/s)", "eccentric SPARC",
             "overshoot (deg)", "peak force (N)", "angle at peak force (deg)"],
            [(s.id, i, rep.start_s, rep.end_s, rep.rom_deg, rep.tempo.eccentric_s,
              rep.tempo.pause_lengthened_s, rep.tempo.concentric_s, rep.tempo.pause_shortened_s,
              rep.peak_eccentric_speed_dps, rep.mean_concentric_speed_dps,
              _blank(rep.eccentric_sparc), _blank(rep.overshoot_deg), _blank(rep.peak_force_n),
              _blank(rep.angle_at_peak_force_deg))
             for s in sets for i, rep in enumerate(r.reps(s.id), 1)]))
        self._write("holds.csv", _csv_bytes(
            ["set_id", "hold", "start (s)", "end (s)", "duration (s)", "mean angle (deg)",
             "mean force (N)", "end reason"],
            [(s.id, i, h.start_s, h.end_s, h.duration_s, _blank(h.mean_angle_deg),
              _blank(h.mean_force_n), h.end_reason)
             for s in sets for i, h in enumerate(r.holds(s.id), 1)]))
        self._write("contractions.csv", _csv_bytes(
            ["set_id", "contraction", "onset (s)", "end (s)", "baseline (N)", "peak force (N)",
             "time to peak (s)", "RFD 100 ms (N/s)", "peak RFD (N/s)", "impulse 300 ms (N*s)",
             "pretensioned"],
            [(s.id, i, c.onset_s, c.end_s, c.baseline_n, c.peak_force_n, c.time_to_peak_s,
              c.rfd_n_per_s.get("100", ""), c.peak_rfd_n_per_s, c.impulse_n_s.get("300", ""),
              int(c.pretensioned))
             for s in sets for i, c in enumerate(r.contractions(s.id), 1)]))

    # JSON -------------------------------------------------------------------------------------

    def json(self, sets: Sequence[SetRow]) -> None:
        r = self.reader
        sessions = {s.session_id for s in sets}
        document = {
            "format": "spinecoach-export", "version": 1,
            "sessions": [
                {**asdict(r.session(sid)), "metrics": r.session_metrics(sid)}
                for sid in sorted(sessions)
            ],
            "sets": [
                {
                    **asdict(s),
                    "metrics": [asdict(m) for m in r.metrics(s.id)],
                    "reps": [rep.to_json() for rep in r.reps(s.id)],
                    "holds": [h.to_json() for h in r.holds(s.id)],
                    "contractions": [c.to_json() for c in r.contractions(s.id)],
                    "cues": [dict(zip(("t_s", "kind", "pattern", "message"), c, strict=True))
                             for c in r.cues(s.id)],
                }
                for s in sets
            ],
        }
        text = json.dumps(_json_safe(document), indent=2, allow_nan=False)
        self._write("export.json", text.encode())

    # PNG --------------------------------------------------------------------------------------

    def png(self, sets: Sequence[SetRow], athlete: str | None = None) -> None:
        plt = _pyplot()
        library = load_library()
        for s in sets:
            try:
                rec = self.reader.recording(s.id)
            except UsageError:
                continue  # no raw recording stored for this set
            force = next(iter(rec.force.values()), None)
            if force is not None and len(force.index):
                t = force.info.t0_s + force.index / force.info.rate_hz
                fig, ax = plt.subplots(figsize=(8, 3.5))
                ax.plot(t, force.force_n, linewidth=0.8)
                ax.set(xlabel="Time (s)", ylabel="Force (N)",
                       title=f"Set {s.id}: {s.exercise} {s.side or ''}".strip())
                self._save(fig, f"set{s.id}_force_time.png")
                self._force_angle(plt, s, rec, library, t, force.force_n)
        if athlete is not None:
            for exercise in sorted({s.exercise for s in sets}):
                history = History(self.reader, athlete, exercise)
                protocol = history.sets[-1].protocol if history.sets else "free"
                trend = history.trend(protocol, last=1000)
                if trend is None or not trend.values:
                    continue
                fig, ax = plt.subplots(figsize=(6, 3.5))
                ax.plot(range(1, len(trend.values) + 1), trend.values, marker="o")
                ax.set(xlabel="Session", ylabel=f"{TREND_FIGURE[protocol]} ({trend.unit})",
                       title=f"{athlete}: {exercise} progress")
                self._save(fig, f"{sanitise(exercise)}_progress.png")

    def _force_angle(self, plt: Any, s: SetRow, rec: Any, library: Any, t: np.ndarray,
                     force_n: np.ndarray) -> None:
        """Per-rep force-angle curves (2° bins, concentric and eccentric) as the core measured
        them; without them, force against the gyro integrated about the primary axis."""
        curves = [r.force_angle for r in self.reader.reps(s.id)
                  if getattr(r, "force_angle", None)]
        fig, ax = plt.subplots(figsize=(5, 4))
        if curves:
            for k, curve in enumerate(curves, 1):
                for phase, style in (("concentric", "-"), ("eccentric", ":")):
                    points = np.asarray(curve.get(phase) or [], np.float64).reshape(-1, 2)
                    if len(points):
                        ax.plot(points[:, 0], points[:, 1], style, linewidth=0.9,
                                label=f"rep {k} {phase}" if k == 1 else None)
            ax.legend(fontsize="small")
            xlabel = "Primary angle (deg)"
        else:
            angle = _primary_angle(rec, library, s.exercise)
            if angle is None:
                _pyplot().close(fig)
                return
            ax.plot(np.interp(t, angle[0], angle[1]), force_n, linewidth=0.6)
            xlabel = "Primary angle from set start (deg, integrated gyro)"
        ax.set(xlabel=xlabel, ylabel="Force (N)", title=f"Set {s.id}: force against angle")
        self._save(fig, f"set{s.id}_force_angle.png")

    def _save(self, fig: Any, suffix: str) -> None:
        buffer = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buffer, format="png", dpi=100)
        _pyplot().close(fig)
        self._write(suffix, buffer.getvalue())


def _blank(value: float | None) -> Any:
    return "" if value is None else value


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(
            "PNG plots need the optional plotting extra: pip install 'spinecoach[plot]' "
            "(CSV and JSON export work without it)"
        ) from None
    return plt


def _primary_angle(rec: Any, library: Any, exercise_id: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Angle (deg) about the exercise's primary axis by integrating the gyro from the set start.

    A plotting aid only (it drifts slowly); the measured figures come from the fused
    orientation of the core.
    """
    if exercise_id not in library:
        return None
    exercise = library.get(exercise_id)
    stream = rec.imu.get(exercise.imu) or next(iter(rec.imu.values()), None)
    if stream is None or len(stream.index) < 2:
        return None
    t = stream.info.t0_s + stream.index / stream.info.rate_hz
    rate = stream.gyro_dps @ np.asarray(exercise.primary_axis)
    angle = np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * np.diff(t))])
    return t, angle


def add_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """Options of the store export (``spinecoach export --session|--set|--athlete``).

    ``required=False`` when the same command also exports a recording file instead.
    """
    which = parser.add_mutually_exclusive_group(required=required)
    which.add_argument("--session", type=int, metavar="ID", help="export one session")
    which.add_argument("--set", type=int, metavar="ID", dest="set_id", help="export one set")
    which.add_argument("--athlete", metavar="NAME", help="export every set of an athlete")
    parser.add_argument("--format", default="csv,json",
                        help="comma-separated: csv, json, png (png needs spinecoach[plot])")
    parser.add_argument("--out", type=Path, default=None,
                        help="export folder (default: [export] directory in the configuration)")
    parser.add_argument("--name", default=None, help="file-name prefix (sanitised)")
    parser.add_argument("--config", type=Path, default=None, help="read this configuration file")


def run(args: argparse.Namespace) -> int:
    """Export what ``args`` names; prints the files written."""
    config = load_config([args.config] if args.config else None, required=bool(args.config))
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UsageError(f"--format {args.format!r}: use a comma-separated list of "
                         f"{', '.join(FORMATS)}")
    folder = args.out if args.out is not None else config.export_dir()
    with StoreReader(config.state_dir()) as reader:
        athlete = None
        if args.session is not None:
            reader.session(args.session)
            sets = reader.sets(session_id=args.session)
            base = f"session-{args.session}"
        elif args.set_id is not None:
            sets = [reader.set(args.set_id)]
            base = f"set-{args.set_id}"
        else:
            athlete = args.athlete
            if athlete not in reader.athletes():
                raise UsageError(f"no athlete {athlete!r}; known: "
                                 f"{', '.join(reader.athletes()) or 'none'}")
            sets = reader.sets(athlete=athlete)
            base = f"athlete-{sanitise(athlete)}"
        exporter = Exporter(reader, folder, args.name or base)
        if "png" in formats:
            _pyplot()  # fail before writing anything when the extra is missing
        if "csv" in formats:
            exporter.csv(sets)
        if "json" in formats:
            exporter.json(sets)
        if "png" in formats:
            exporter.png(sets, athlete or (sets[0].athlete if sets else None))
    for path in exporter.written:
        print(path)
    return 0
