"""``analyze`` of a long interchange CSV in bounded memory.

Two passes over the file (:class:`spinecoach.recording.stream_csv.CsvStreamReader`): the first
recovers the sample clocks, runs the signal checks (:mod:`spinecoach.recording.sanity`) and
sums what the whole-recording choice of the working axis needs (:class:`ExcursionAxisSums`);
the second feeds each piece to one :class:`Pipeline`, load cells first, and writes the
orientation CSV as it goes. The result is the one :func:`spinecoach.analysis.analyze_recording`
gives for the same file; memory is that of a piece and the pipeline's bounded histories (the
Sørensen hold time alone keeps every orientation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from spinecoach.analysis import (
    _FLEXION_AXIS,
    document,
    motion_for,
    orientation_outputs,
)
from spinecoach.core.imu_calibration import ImuCalibration
from spinecoach.core.pipeline import Pipeline
from spinecoach.drivers.blocks import StreamInfo
from spinecoach.errors import DataFormatError
from spinecoach.recording.sanity import (
    ForceChecks,
    ImuChecks,
    check_rates,
    plausible_force,
    plausible_imu,
)
from spinecoach.recording.stream_csv import CsvStreamReader

FloatArray = npt.NDArray[np.float64]

#: Force values kept for the load cell's sign decision (every n-th, n from the file size).
FORCE_SIGN_SAMPLES = 200_000
#: Bytes of a force-only row, to bound how many samples a file can hold (for n above).
MIN_ROW_BYTES = 8


class ExcursionAxisSums:
    """:func:`spinecoach.core.angles.largest_excursion_axis` from running sums.

    The gyro rate summed to a path p_k over the valid samples; the principal direction of p
    after removing a straight line in k is the largest eigenvector of
    Σ p pᵀ − Bᵀ (XᵀX) B with X = [1, k] and B = (XᵀX)⁻¹ Xᵀ P, all of which are sums.
    """

    def __init__(self) -> None:
        self.n = 0
        self.last = np.zeros(3)
        self.sum_p = np.zeros(3)
        self.sum_kp = np.zeros(3)
        self.sum_pp = np.zeros((3, 3))

    def add(self, gyro_dps: FloatArray) -> None:
        gyro = gyro_dps[np.isfinite(gyro_dps).all(axis=1)]
        if len(gyro) == 0:
            return
        path = self.last + np.cumsum(gyro, axis=0)
        k = np.arange(self.n, self.n + len(path), dtype=np.float64)
        self.sum_p += path.sum(axis=0)
        self.sum_kp += k @ path
        self.sum_pp += path.T @ path
        self.n += len(path)
        self.last = path[-1]

    def axis(self) -> FloatArray:
        if self.n < 3:
            raise ValueError("largest_excursion_axis needs at least 3 valid gyroscope samples")
        n = float(self.n)
        sum_k = n * (n - 1) / 2
        sum_kk = (n - 1) * n * (2 * n - 1) / 6
        xtx = np.array([[n, sum_k], [sum_k, sum_kk]])
        xtp = np.vstack([self.sum_p, self.sum_kp])
        beta = np.linalg.solve(xtx, xtp)
        residual = self.sum_pp - beta.T @ xtx @ beta
        _, vectors = np.linalg.eigh(residual)
        axis = vectors[:, -1]
        if axis[np.argmax(np.abs(axis))] < 0:
            axis = -axis
        return axis / np.linalg.norm(axis)


def analyze_csv_stream(
    path: Path,
    exercise: str | None = None,
    orientation_csv: Path | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """The ``analyze --json`` object of an interchange CSV, read in pieces."""
    notes = [] if notes is None else notes
    motion = motion_for(exercise)
    reader = CsvStreamReader(path, notes)
    keep_every = max(1, path.stat().st_size // MIN_ROW_BYTES // FORCE_SIGN_SAMPLES)
    imu_checks: dict[str, ImuChecks] = {}
    force_checks: dict[str, ForceChecks] = {}
    axis_sums = ExcursionAxisSums()
    calibration: dict[str, ImuCalibration] = {}
    primary: list[str | None] = [None]

    def on_samples(name: str, kind: str, values: FloatArray, valid: npt.NDArray[np.bool_]) -> None:
        if kind == "force":
            force_checks.setdefault(name, ForceChecks(name, keep_every)).add(values, valid)
            return
        checks = imu_checks.get(name)
        if checks is None:
            # the fitted rate comes at the end of the pass; the checks' block means use the
            # median interval of the stream's first samples
            checks = imu_checks[name] = ImuChecks(name, reader.rate_so_far(name) or 100.0)
        ok = checks.add(values[:, :3], values[:, 3:], valid)
        if name == primary[0]:
            gyro = calibration[name].apply(values[ok, :3], values[ok, 3:])[0] \
                if name in calibration else values[ok, :3]
            axis_sums.add(gyro)

    imus = [(name, fields) for name, kind, fields in reader.header() if kind == "imu"]
    names = [name for name, _ in imus]
    primary[0] = "trunk" if "trunk" in names else (names[0] if names else None)
    for name, fields in imus:
        if fields:
            calibration[name] = ImuCalibration.from_stream(StreamInfo(name, "imu", 1.0, **fields))
    infos = reader.scan(on_samples)
    try:
        check_rates(infos)
        for checks in imu_checks.values():
            checks.finish(notes)
    except DataFormatError as error:
        raise DataFormatError(f"{path}: {error}") from None
    flip = {name: checks.finish(notes) for name, checks in force_checks.items()}
    primary_name = primary[0]
    axis = None
    if primary_name is not None and (motion is None or motion.primary_axis is None):
        try:
            axis = axis_sums.axis()
        except ValueError:
            axis = np.array(_FLEXION_AXIS)
    writer, keep = orientation_outputs(primary_name, orientation_csv, exercise == "sorensen-hold")
    pipeline = Pipeline(infos, motion, primary_imu=primary_name, primary_axis=axis,
                        on_orientation=writer if writer is not None else keep)
    counts = {info.name: 0 for info in infos}
    try:
        for pieces in reader.pieces():
            # load cells first, as analyze_recording feeds them
            for name, kind, index, values, valid in sorted(pieces, key=lambda p: p[1] != "force"):
                if kind == "force":
                    valid = valid & plausible_force(values)
                    pipeline.feed_force(name, index, -values if flip.get(name) else values, valid)
                    counts[name] += len(index)
                else:
                    ok = plausible_imu(values[:, :3], values[:, 3:])
                    pipeline.feed_imu(name, index[ok], values[ok, :3], values[ok, 3:], valid[ok])
                    counts[name] += int(np.count_nonzero(ok))
        result = pipeline.finish()
    finally:
        if writer is not None:
            writer.close()
    angles = keep.primary_angles(pipeline.primary_axis) if keep is not None else None
    return document(str(path), exercise, result, infos, counts, notes, angles)

