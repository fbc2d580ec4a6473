"""Whole-recording analysis: Recording -> Pipeline -> AnalysisResult -> JSON-ready dict.

Used by ``spinecoach analyze``. ``--exercise`` names an exercise of the engine's TOML library
(built-in and the user's, e.g. ``banded_good_morning``) or one of the generic movement names in
:data:`EXERCISES` (``hip-hinge``, ``sorensen-hold`` ...) for recordings of other exercises.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt
from spinecoach.config import load_config
from spinecoach.core.angles import inclination_deg, largest_excursion_axis, primary_angle_deg
from spinecoach.core.imu_calibration import ImuCalibration, calibrations_of
from spinecoach.core.metrics import sorensen_hold_time_s
from spinecoach.core.pipeline import Pipeline
from spinecoach.core.results import AnalysisResult, MotionSettings
from spinecoach.drivers.blocks import StreamInfo
from spinecoach.engine.library import load_library
from spinecoach.errors import DataFormatError, StorageError, UsageError
from spinecoach.recording.interchange import UnknownColumnsWarning
from spinecoach.recording.load import load_recording
from spinecoach.recording.model import ForceStream, Recording
from spinecoach.recording.sanity import check_recording

FloatArray = npt.NDArray[np.float64]

#: Trunk sensor frame: x up the spine, y left, z posterior; flexion = +rotation about +y.
_FLEXION_AXIS = (0.0, 1.0, 0.0)
_SPINE_AXIS = (1.0, 0.0, 0.0)

#: Built-in exercise settings (primary axis, eccentric direction, minimum range, hold target).
#: Angles are trunk flexion from the zero pose (the first sample, standing upright).
EXERCISES: dict[str, MotionSettings] = {
    # hinges: lowering the trunk (flexion, angle up) lengthens the back extensors
    "hip-hinge": MotionSettings(primary_axis=_FLEXION_AXIS, eccentric_sign=1, min_rom_deg=15.0),
    "romanian-deadlift": MotionSettings(primary_axis=_FLEXION_AXIS, eccentric_sign=1, min_rom_deg=15.0),
    "good-morning": MotionSettings(primary_axis=_FLEXION_AXIS, eccentric_sign=1, min_rom_deg=15.0),
    "single-leg-deadlift": MotionSettings(primary_axis=_FLEXION_AXIS, eccentric_sign=1, min_rom_deg=15.0),
    "back-extension": MotionSettings(primary_axis=_FLEXION_AXIS, eccentric_sign=1, min_rom_deg=15.0),
    # 4 s holds at end-range extension (10° behind upright)
    "extension-hold": MotionSettings(
        primary_axis=_FLEXION_AXIS, eccentric_sign=1, min_rom_deg=8.0, hold_target_deg=-10.0,
        hold_tolerance_deg=5.0, min_hold_s=1.0,
    ),
    # trunk horizontal, prone and unsupported: 90° from upright
    "sorensen-hold": MotionSettings(
        primary_axis=_FLEXION_AXIS, eccentric_sign=1, min_rom_deg=15.0, hold_target_deg=90.0,
        hold_tolerance_deg=5.0, min_hold_s=1.0,
    ),
    # bridges and pelvic tilts: raising the hips extends (angle down) = concentric
    "bridge": MotionSettings(primary_axis=_FLEXION_AXIS, eccentric_sign=1, min_rom_deg=10.0),
    "pelvic-tilt": MotionSettings(primary_axis=_FLEXION_AXIS, eccentric_sign=1, min_rom_deg=5.0),
    # rotational medicine-ball throws: rotation about the vertical (heading)
    "rotational-throw": MotionSettings(
        primary_axis=_SPINE_AXIS, eccentric_sign=1, min_rom_deg=30.0, primary_angle="heading"),
}

#: An interchange CSV larger than this (bytes) is analysed piece by piece (bounded memory).
STREAM_CSV_BYTES = 64 * 1024 * 1024

#: Seconds of every stream fed to the pipeline at a time (bounded working memory on long
#: recordings; the results do not depend on it).
FEED_BLOCK_S = 60.0

#: Mounting axis whose inclination goes into the orientation CSV: sensor +x, up the spine.
INCLINATION_AXIS = _SPINE_AXIS

ORIENTATION_CSV_HEADER = (
    "Time (s),Quaternion W,Quaternion X,Quaternion Y,Quaternion Z,Inclination (deg)"
)
ORIENTATION_CSV_FORMAT = ["%.6f", "%.7f", "%.7f", "%.7f", "%.7f", "%.4f"]


def motion_for(exercise: str | None) -> MotionSettings | None:
    """The settings of a named exercise (None without a name); UsageError for an unknown one.

    The exercise library comes first (its ids and the user's own files), then the generic names.
    """
    if exercise is None:
        return None
    library = load_library(load_config().exercises_dir())
    if exercise in library:
        return library.get(exercise).motion_settings()
    try:
        return EXERCISES[exercise]
    except KeyError:
        names = sorted({*(e.id for e in library), *EXERCISES})
        raise UsageError(f"unknown exercise {exercise!r}: use one of {', '.join(names)}") from None


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats by None (JSON has no NaN) and tuples by lists, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


class _OrientationSink:
    """Keeps the primary IMU's orientation blocks (for the Sørensen hold's angles)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.q: list[npt.NDArray[np.float64]] = []

    def __call__(self, name: str, t_s: npt.NDArray[np.float64], q: npt.NDArray[np.float64]) -> None:
        if name == self.name:
            self.q.append(np.array(q))

    def primary_angles(self, axis: npt.NDArray[np.float64] | None) -> FloatArray | None:
        """The primary angle (°) of every kept sample about ``axis``, from the first one."""
        if not self.q or axis is None:
            return None
        q = np.concatenate(self.q)
        return primary_angle_deg(q, axis, q[0])


class _OrientationWriter:
    """Writes the primary IMU's orientation CSV block by block (and hands each block on to
    ``keep``), so the file costs no memory however long the recording."""

    def __init__(self, name: str, path: Path, keep: _OrientationSink | None) -> None:
        self.name = name
        self.path = path
        self.keep = keep
        try:
            self.handle: TextIO = open(path, "w", encoding="utf-8", newline="")
            self.handle.write(ORIENTATION_CSV_HEADER + "\n")
        except OSError as error:
            raise StorageError(f"cannot write {path}: {error.strerror}; choose a writable "
                               "path") from None

    def __call__(self, name: str, t_s: FloatArray, q: FloatArray) -> None:
        if self.keep is not None:
            self.keep(name, t_s, q)
        if name != self.name:
            return
        table = np.column_stack([t_s, q, inclination_deg(q, INCLINATION_AXIS)])
        try:
            np.savetxt(self.handle, table, fmt=ORIENTATION_CSV_FORMAT, delimiter=",")
        except OSError as error:
            raise StorageError(f"cannot write {self.path}: {error.strerror}; choose a writable "
                               "path") from None

    def close(self) -> None:
        self.handle.close()


def orientation_outputs(
    primary: str | None, orientation_csv: Path | None, want_angles: bool
) -> tuple[_OrientationWriter | None, _OrientationSink | None]:
    """What receives the pipeline's orientations: the CSV writer (``--orientation-csv``) and
    the keeper of the primary IMU's quaternions (the Sørensen hold's angles); either may be
    None. The pipeline's ``on_orientation`` is the writer when there is one, else the keeper."""
    if primary is None:
        return None, None
    keep = _OrientationSink(primary) if want_angles else None
    writer = _OrientationWriter(primary, orientation_csv, keep) if orientation_csv is not None else None
    return writer, keep


def _pieces(recording: Recording) -> Iterator[list[tuple[str, ForceStream | None, int, int]]]:
    """Every stream cut at the same times, FEED_BLOCK_S apart: per piece, (name, the force
    stream or None for an IMU, first, end) sample positions. The pipeline's working arrays
    then stay the size of a piece; its results do not depend on the cut."""
    streams: list[tuple[str, StreamInfo, npt.NDArray[np.int64], ForceStream | None]] = [
        *((k, s.info, s.index, None) for k, s in recording.imu.items()),
        *((k, f.info, f.index, f) for k, f in recording.force.items()),
    ]
    starts = [i.t0_s + idx[0] / i.rate_hz for _, i, idx, _ in streams if len(idx)]
    if not starts:
        return
    t_start, t_end = min(starts), recording.duration_s
    n_pieces = max(1, int(np.ceil((t_end - t_start) / FEED_BLOCK_S)) + 1)
    cut_s = t_start + FEED_BLOCK_S * np.arange(1, n_pieces + 1)
    cuts = [np.concatenate(([0], np.searchsorted(idx, np.ceil((cut_s - i.t0_s) * i.rate_hz))))
            for _, i, idx, _ in streams]
    for k in range(n_pieces):
        yield [(name, f, int(c[k]), int(c[k + 1])) for (name, _, _, f), c in zip(streams, cuts)
               if c[k + 1] > c[k]]


def run_pipeline(
    recording: Recording,
    exercise: str | None = None,
    orientation_csv: Path | None = None,
) -> tuple[AnalysisResult, FloatArray | None]:
    """Feed every stream of ``recording`` through one :class:`Pipeline` and finish it.

    The IMU calibration each stream carries is applied (by the pipeline), so orientations and
    angles are the body's. Returns the result and, for the Sørensen hold, the primary angle of every IMU sample.
    """
    motion = motion_for(exercise)
    primary = "trunk" if "trunk" in recording.imu else next(iter(recording.imu), None)
    axis = None
    if primary is not None and (motion is None or motion.primary_axis is None):
        # Whole-recording choice of the working axis (a live pipeline can only use its first
        # seconds): the axis of largest angular excursion.
        stream = recording.imu[primary]
        # In the body frame the pipeline measures in (the stream's calibration applied).
        gyro = ImuCalibration.from_stream(stream.info).apply(stream.gyro_dps, stream.accel_g)[0]
        try:
            axis = largest_excursion_axis(gyro, stream.valid)
        except ValueError:
            axis = np.array(_FLEXION_AXIS)
    writer, keep = orientation_outputs(primary, orientation_csv, exercise == "sorensen-hold")
    pipeline = Pipeline(recording.streams, motion, primary_imu=primary, primary_axis=axis,
                        on_orientation=writer if writer is not None else keep)
    try:
        for piece in _pieces(recording):
            # Force first so reps and holds that use force are measured as soon as the IMU
            # arrives.
            for name, f, a, b in piece:
                if f is not None:
                    pipeline.feed_force(name, f.index[a:b], f.force_n[a:b], f.valid[a:b])
            for name, f, a, b in piece:
                if f is None:
                    s = recording.imu[name]
                    pipeline.feed_imu(name, s.index[a:b], s.gyro_dps[a:b], s.accel_g[a:b],
                                      s.valid[a:b])
        result = pipeline.finish()
    finally:
        if writer is not None:
            writer.close()
    angles = keep.primary_angles(pipeline.primary_axis) if keep is not None else None
    return result, angles


def analyze_recording(
    recording: Recording,
    exercise: str | None = None,
    orientation_csv: Path | None = None,
    source: str = "",
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """The ``analyze --json`` object of a recording (schema in the README).

    The signals are checked first (:mod:`spinecoach.recording.sanity`); ``notes`` (remarks of
    the loader, e.g. ignored columns) and the checks' remarks go out as ``"notes"``.
    """
    notes = [] if notes is None else notes
    try:
        recording = check_recording(recording, notes)
    except DataFormatError as error:
        raise DataFormatError(f"{source}: {error}" if source else str(error)) from None
    result, angles = run_pipeline(recording, exercise, orientation_csv)
    counts = {**{k: len(v.index) for k, v in recording.imu.items()},
              **{k: len(v.index) for k, v in recording.force.items()}}
    return document(source, exercise, result, recording.streams, counts, notes, angles)


def document(
    source: str,
    exercise: str | None,
    result: AnalysisResult,
    streams: Sequence[StreamInfo],
    sample_counts: dict[str, int],
    notes: list[str],
    sorensen_angles: FloatArray | None = None,
) -> dict[str, Any]:
    """The ``analyze --json`` object of a pipeline's result (schema in the README)."""
    calibrated = calibrations_of(streams)
    out: dict[str, Any] = {
        "file": source,
        "exercise": exercise,
        "duration_s": result.duration_s,
        "streams": {
            s.name: {"kind": s.kind, "rate_hz": s.rate_hz, "samples": int(sample_counts[s.name]),
                     **({"imu_calibration": calibrated[s.name].to_dict()}
                        if s.name in calibrated else {})}
            for s in streams
        },
        "reps": [r.to_json() for r in result.reps],
        "holds": [h.to_json() for h in result.holds],
        "contractions": [c.to_json() for c in result.contractions],
        "movement_onsets_s": result.movement_onsets_s,
        "summary": dict(result.summary),
        "notes": list(notes),
    }
    if sorensen_angles is not None:
        primary = next((s for s in streams if s.name == "trunk"),
                       next(s for s in streams if s.kind == "imu"))
        target = EXERCISES["sorensen-hold"]
        out["summary"]["sorensen_hold_s"] = sorensen_hold_time_s(
            sorensen_angles, primary.rate_hz, float(target.hold_target_deg or 90.0),
            target.hold_tolerance_deg, target.hold_debounce_s)
    return _json_safe(out)


def analyze_file(
    path: Path,
    exercise: str | None = None,
    orientation_csv: Path | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """The ``analyze --json`` object of a recording file.

    An interchange CSV larger than :data:`STREAM_CSV_BYTES` is read and measured piece by
    piece (:mod:`spinecoach.analysis_stream`), so memory stays bounded on hour-long files;
    anything else is loaded whole.
    """
    notes = [] if notes is None else notes
    if path.is_file() and path.stat().st_size > STREAM_CSV_BYTES and _is_interchange_csv(path):
        from spinecoach.analysis_stream import analyze_csv_stream

        return analyze_csv_stream(path, exercise, orientation_csv, notes)
    with warnings.catch_warnings():
        # the loader's remarks are reported once, in the output (notes)
        warnings.simplefilter("ignore", UnknownColumnsWarning)
        recording = load_recording(path, notes=notes)
    return analyze_recording(recording, exercise, orientation_csv, source=str(path), notes=notes)


def _is_interchange_csv(path: Path) -> bool:
    """What :func:`load_recording` would read as an interchange CSV (not the native format)."""
    from spinecoach.recording import interchange, native

    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        return False
    if head.startswith(native.MAGIC):
        return False
    return (path.suffix.lower() == ".csv"
            or head.lstrip(b"\xef\xbb\xbf").startswith(interchange.TIME_COLUMN.encode()))


def _fmt(x: Any, unit: str = "", digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}{unit}"


def summary_text(doc: dict[str, Any]) -> str:
    """A readable summary of an ``analyze`` object."""
    lines = [f"{doc['file']}: {doc['duration_s']:.2f} s"
             + (f", exercise {doc['exercise']}" if doc.get("exercise") else "")]
    for name, s in doc["streams"].items():
        lines.append(f"  stream {name}: {s['kind']}, {s['rate_hz']:g} Hz, {s['samples']} samples")
    lines.append(f"reps: {len(doc['reps'])}")
    for i, r in enumerate(doc["reps"], 1):
        t = r["tempo"]
        force = f", peak {_fmt(r.get('peak_force_n'), ' N', 0)}" if r.get("peak_force_n") is not None else ""
        tempo = "-".join(_fmt(t[k], digits=1) for k in (
            "eccentric_s", "pause_lengthened_s", "concentric_s", "pause_shortened_s"))
        lines.append(
            f"  {i:2d}. {r['start_s']:7.2f}-{r['end_s']:7.2f} s  ROM "
            f"{_fmt(r['rom_deg'], '°', 1):>6}  tempo {tempo}  ecc peak "
            f"{_fmt(r['peak_eccentric_speed_dps'], '°/s', 0)}"
            f"  SPARC {_fmt(r.get('eccentric_sparc'))}{force}"
        )
    lines.append(f"holds: {len(doc['holds'])}")
    for i, h in enumerate(doc["holds"], 1):
        lines.append(f"  {i:2d}. {h['start_s']:7.2f}-{h['end_s']:7.2f} s  "
                     f"{_fmt(h['duration_s'], ' s', 3)}  ({h['end_reason']})")
    lines.append(f"contractions: {len(doc['contractions'])}")
    for i, c in enumerate(doc["contractions"], 1):
        rfd = c["rfd_n_per_s"]
        imp = c["impulse_n_s"]
        lines.append(
            f"  {i:2d}. onset {c['onset_s']:.3f} s  peak {_fmt(c['peak_force_n'], ' N', 0)} at +"
            f"{_fmt(None if c['time_to_peak_s'] is None else c['time_to_peak_s'] * 1000, ' ms', 0)}"
            f"  RFD 0-100 {_fmt(rfd.get('0-100'), ' N/s', 0)}"
            f"  peak RFD {_fmt(c['peak_rfd_n_per_s'], ' N/s', 0)}  impulse 0-300 "
            f"{_fmt(imp.get('0-300'), ' N·s')}  ({c['rate_hz']:g} Hz)"
            + ("  pre-tensioned" if c.get("pretensioned") else "")
        )
    s = doc.get("summary", {})
    lines += [f"note: {note}" for note in doc.get("notes", [])]
    if s.get("velocity_loss_pct"):
        lines.append(f"velocity loss (last rep): {_fmt(s['velocity_loss_pct'][-1], ' %', 1)}")
    if s.get("fatigue_index_pct") is not None:
        lines.append(f"fatigue index: {s['fatigue_index_pct']:.1f} %")
    if s.get("critical_force_n") is not None:
        lines.append(f"critical force: {s['critical_force_n']:.0f} N, "
                     f"W' {_fmt(s.get('w_prime_n_s'), ' N·s', 0)}")
    return "\n".join(lines)
