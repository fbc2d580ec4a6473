"""The rig's calibration on live sensors, the same wherever they are used: the daemon, the
standalone coach (daemon and coach in one process), ``spinecoach record``, the headless
``spinecoach session`` and ``spinecoach readout``.

:class:`RigCalibrator` loads the stored calibration (``calibration.<backend>.json`` in the state
directory, see :mod:`spinecoach.rig_calibration`), puts it in force on a source when it starts
(the load cell's tare and scale at the sampler; the IMU calibrations on the session's stream
table, which the measurement pipeline applies), and carries out the coach's ``tare`` and
``calibrate`` steps between sets: tare, known weight, IMU zero pose, accelerometer box poses and
the band profile (captured from the session's full-rate samples, :mod:`spinecoach.band_profile`).

Who owns the chips decides how a new tare reaches them, so the owner hands :meth:`begin` a
``request_tare`` (the daemon: between two blocks on its sampler thread; in one process: at once)
and a ``restart`` that starts the session afresh on the calibration now in force.
"""

from __future__ import annotations

import datetime
import math
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from spinecoach.band_profile import BandCapture
from spinecoach.core.calibration import CalibrationError  # type: ignore[import-not-found]
from spinecoach.core.imu_calibration import ImuCalibration  # type: ignore[import-not-found]
from spinecoach.drivers.blocks import Block, ForceBlock, ImuBlock, StreamInfo
from spinecoach.hub.messages import Ack, Command, State
from spinecoach.hub.session import calibrated_streams
from spinecoach.rig_calibration import (
    AccelCalibration,
    AccelPoseRun,
    Alignment,
    CalibrationFile,
    CalibrationRecord,
    ForceCalibration,
    KnownWeightRun,
    SampleWindow,
    realign,
    sensor_key,
    zero_pose,
)

#: Load-cell codes a tare averages over (s).
TARE_WINDOW_S = 0.5
#: The IMU stream the zero pose aligns (the trunk sensor at T12/L1).
ZERO_POSE_STREAM = "trunk"

#: Sets a new tare of a load-cell stream: (stream name, offset counts, N per count or None).
TareRequest = Callable[[str, float, "float | None"], None]
Say = Callable[[str], None]


def calibration_path(state_dir: Path, backend_kind: str) -> Path:
    """Where the calibration of ``backend_kind``'s sensors is kept: one file per backend kind,
    so a simulated rig's calibration never lands on the real load cell."""
    return state_dir / f"calibration.{backend_kind}.json"


def stored_calibration(state_dir: Path, backend_kind: str) -> CalibrationRecord:
    """The stored calibration of ``backend_kind`` (empty when none is kept); raises
    :class:`~spinecoach.rig_calibration.CalibrationFileError` (one line) for an unreadable file."""
    return CalibrationFile(calibration_path(state_dir, backend_kind)).load()


def imu_calibrations(record: CalibrationRecord,
                     streams: Iterable[StreamInfo]) -> dict[str, ImuCalibration]:
    """The IMU calibrations ``record`` keeps for ``streams``, by stream name (none kept: absent)."""
    out = {}
    for info in streams:
        calibration = record.imu_calibration(sensor_key(info))
        if info.kind == "imu" and not calibration.is_identity:
            out[info.name] = calibration
    return out


def apply_force_calibration(record: CalibrationRecord, streams: Iterable[StreamInfo],
                            request_tare: TareRequest) -> None:
    """Put the load-cell models ``record`` keeps for ``streams`` in force (``request_tare``)."""
    for info in streams:
        stored = record.forces.get(sensor_key(info))
        if info.kind == "force" and stored is not None:
            request_tare(info.name, stored.offset_counts, stored.n_per_count)


def put_in_force(record: CalibrationRecord, source: Any) -> list[StreamInfo]:
    """``record`` in force on a started ``source`` used without a coach session (``record``, the
    headless ``session``, ``readout``): the load-cell models set on its sampler (a recording has none),
    and its stream table with the IMU calibrations on it, which the measurement pipeline applies
    and a recording or a stored set carries."""
    sampler = getattr(source, "sampler", None)
    if sampler is not None:
        apply_force_calibration(record, source.streams, sampler.set_tare)
    return calibrated_streams(source.streams, imu_calibrations(record, source.streams))


class DeferredWindow(SampleWindow):
    """A :class:`SampleWindow` that keeps the blocks it is given and folds them in only when it
    is read: the engine (the daemon's or the standalone coach's) adds every block (a thousand
    IMU rows a second), a calibration step reads the window a few times a session. A read sees
    exactly what the eager window holds, the last ``window_s`` of valid samples of the latest
    stream; the blocks kept are only those that can still be part of it."""

    def __init__(self, window_s: float | None = None) -> None:
        self._blocks: deque[tuple[ForceBlock | ImuBlock, int]] = deque()
        self._blocks_valid = 0
        if window_s is None:
            super().__init__()
        else:
            super().__init__(window_s)

    def add(self, block: ForceBlock | ImuBlock) -> None:
        if not len(block):
            return
        if self._blocks and block.info.name != self._blocks[-1][0].info.name:
            # The window starts afresh on another stream: what it held goes too.
            self._blocks.clear()
            self._blocks_valid = 0
            self._info = None
        rows = block.raw is not None if isinstance(block, ForceBlock) else True
        valid = int(block.valid.sum()) if rows else 0
        self._blocks.append((block, valid))
        self._blocks_valid += valid
        size = max(1, round(self.window_s * block.info.rate_hz))
        while self._blocks_valid - self._blocks[0][1] >= size:
            self._blocks_valid -= self._blocks.popleft()[1]

    def _fold_in(self) -> None:
        blocks, self._blocks, self._blocks_valid = self._blocks, deque(), 0
        for block, _ in blocks:
            super().add(block)

    @property  # type: ignore[override]
    def info(self) -> StreamInfo | None:
        self._fold_in()
        return self._info

    @info.setter
    def info(self, value: StreamInfo | None) -> None:
        self._info = value

    @property
    def full(self) -> bool:
        self._fold_in()
        return super().full

    def mean_code(self) -> tuple[str, float] | None:
        self._fold_in()
        return super().mean_code()

    def samples(self) -> Any:
        self._fold_in()
        return super().samples()


class RigCalibrator:
    """The stored calibration of one backend's sensors and the coach's calibration steps on them.

    Use: :meth:`load` once; :meth:`begin` whenever a source starts; :meth:`attach` each session
    made on it (with :meth:`imu_calibrations` on its stream table); :meth:`observe` every block
    and :meth:`note` every message the session sends; :meth:`handle` the ``tare`` and
    ``calibrate`` commands.
    """

    def __init__(self, path: Path, say: Say = print) -> None:
        self.file = CalibrationFile(path)
        self.record = CalibrationRecord()
        self._say = say
        #: The trunk IMU's mounting alignment and gyro bias from the zero pose (or the stored one).
        self.alignment: Alignment | None = None
        self._source: Any = None
        self._request_tare: TareRequest | None = None
        self._restart: Callable[[], None] = lambda: None
        self._session: Any = None
        self._fresh_runs()
        #: The band-profile capture in progress (between the coach's start and finish).
        self.band_capture: BandCapture | None = None

    def _fresh_runs(self) -> None:
        """Empty sample windows and calibration runs (a new source: nothing seen yet)."""
        self._set_state = "idle"
        self._tare_window = DeferredWindow(TARE_WINDOW_S)
        self._load_window = DeferredWindow()
        self._trunk_window = DeferredWindow()
        self._known_weight = KnownWeightRun()
        self._accel_run = AccelPoseRun()

    def load(self) -> None:
        """Read the stored calibration (:class:`CalibrationFileError` when unreadable)."""
        self.record = self.file.load()

    # --- a source starts ---------------------------------------------------------------------

    def begin(self, source: Any, request_tare: TareRequest | None,
              restart: Callable[[], None]) -> None:
        """``source`` (its ``streams``: the stream table in force) starts: fresh sample windows
        and runs, the stored load-cell models go to ``request_tare`` (None: no chips to tare,
        e.g. a recording), the trunk's alignment is noted. ``restart`` starts the session afresh
        after a zero pose or box pose."""
        self._source = source
        streams = list(source.streams)
        self._request_tare = request_tare
        self._restart = restart
        self._fresh_runs()
        if request_tare is not None:
            apply_force_calibration(self.record, streams, request_tare)
        for info in streams:
            key = sensor_key(info)
            if info.name == ZERO_POSE_STREAM and key in self.record.alignments:
                self.alignment = self.record.alignments[key]

    def imu_calibrations(self, streams: Iterable[StreamInfo]) -> dict[str, ImuCalibration]:
        """The IMU calibrations in force for ``streams``, by stream name (for the session)."""
        return imu_calibrations(self.record, streams)

    def attach(self, session: Any) -> None:
        """``session`` (a :class:`~spinecoach.hub.session.HubSession`) now measures: a running
        band-profile capture goes on listening to it."""
        self._session = session
        session.listen(self.band_capture)

    def observe(self, block: Block) -> None:
        """Keep the last samples a calibration step looks back over."""
        if isinstance(block, ForceBlock):
            self._tare_window.add(block)
            self._load_window.add(block)
        elif isinstance(block, ImuBlock) and block.info.name == ZERO_POSE_STREAM:
            self._trunk_window.add(block)

    def note(self, messages: Iterable[Any]) -> None:
        """Follow the set's state in the session's messages (steps are refused during a set)."""
        for message in messages:
            if isinstance(message, State):
                self._set_state = message.set_state

    # --- the steps ---------------------------------------------------------------------------

    def handle(self, command: Command, exercise: str) -> Ack:
        """Carry out a ``tare`` or ``calibrate`` command; ``exercise``: the one chosen (a band
        profile is measured along its primary angle)."""
        if command.cmd == "tare":
            return self._tare()
        step = str(command.args["step"])
        what = f"calibrate {step.replace('_', ' ')}"
        if step == "band_profile" and command.args.get("action") == "cancel":
            return self._band_profile(command, exercise)
        if self._request_tare is None:
            return Ack("calibrate", False, f"{what} needs the sensors: this is a recording")
        if self._set_state == "running":
            return Ack("calibrate", False, f"{what}: stop the set first (Enter), then calibrate")
        try:
            if step == "known_weight":
                return self._calibrate_known_weight(float(command.args["mass_kg"]))
            if step == "imu_pose":
                return self._calibrate_imu_pose()
            if step == "band_profile":
                return self._band_profile(command, exercise)
            return self._calibrate_zero_pose()
        except CalibrationError as error:
            return Ack("calibrate", False, f"{what}: {error}")

    def _tare(self) -> Ack:
        """Zero the load cell on the last :data:`TARE_WINDOW_S` of its codes (rig unloaded).

        The new offset goes to ``request_tare``; the session is then started afresh on the new
        stream table, so stored sets carry the tare their raw codes need."""
        if self._request_tare is None:
            return Ack("tare", False, "tare needs the sensors: this is a recording")
        if self._set_state == "running":
            return Ack("tare", False, "stop the set first (Enter), then tare with the rig unloaded")
        codes = self._tare_window.mean_code()
        if codes is None:
            return Ack("tare", False, "no load-cell samples to tare on yet: wait a moment")
        name, offset = codes
        self._request_tare(name, offset, None)
        info = next(s for s in self._source.streams if s.name == name)
        self._keep_force(info, ForceCalibration(info.force_n_per_count, offset))
        return Ack("tare", True, f"load cell zeroed ({offset:.0f} counts)")

    def _calibrate_known_weight(self, mass_kg: float) -> Ack:
        """Fit the load cell's scale through the tare and every known weight of this run, and
        put it in force like a tare."""
        assert self._request_tare is not None
        outcome = self._known_weight.add(self._load_window, mass_kg)
        info = self._load_window.info
        assert info is not None
        calibration = outcome.calibration
        self._request_tare(info.name, calibration.offset_counts, calibration.n_per_count)
        self._keep_force(info, calibration)
        residuals = ", ".join(f"{r:+.1f}" for r in outcome.residuals_n)
        return Ack("calibrate", True,
                   f"load cell scale {calibration.n_per_count:.6g} N/count from "
                   f"{outcome.points} known weight(s); residuals {residuals} N")

    def _calibrate_zero_pose(self) -> Ack:
        """Mounting alignment and gyro bias of the trunk IMU, athlete upright and still; in
        force at once (the session restarts on it)."""
        info = self._trunk_window.info
        key = sensor_key(info) if info is not None else ""
        self.alignment = zero_pose(self._trunk_window, self.record.imu_calibration(key))
        assert info is not None
        self.record.alignments[key] = self.alignment
        self.file.save(self.record)
        self._restart()
        w, x, y, z = self.alignment.quaternion
        tilt_deg = math.degrees(2 * math.acos(min(1.0, abs(w))))
        bias = ", ".join(f"{b:+.2f}" for b in self.alignment.gyro_bias_dps)
        return Ack("calibrate", True,
                   f"zero pose applied: this posture is now 0° (mounting tilted {tilt_deg:.1f}°, "
                   f"alignment ({w:.4f}, {x:.4f}, {y:.4f}, {z:.4f}), gyro bias ({bias}) °/s)")

    def _calibrate_imu_pose(self) -> Ack:
        """One still pose of the trunk IMU resting on a face of a box; once every axis has
        pointed up and down, the accelerometer's offset and scale are fitted and put in force
        (the zero pose is worked out again with them, the session restarts)."""
        outcome = self._accel_run.add(self._trunk_window)
        info = self._trunk_window.info
        assert info is not None
        if outcome.fit is None:
            still = ", ".join(outcome.missing) or "any other face"
            return Ack("calibrate", True,
                       f"pose {outcome.poses} captured ({outcome.face}); still to capture: {still}")
        key = sensor_key(info)
        fit = outcome.fit
        self.record.accelerometers[key] = AccelCalibration(fit.offset_g, fit.scale,
                                                           outcome.gyro_bias_dps,
                                                           outcome.gyro_bias_sd_dps)
        if key in self.record.alignments:
            accel_only = self.record.imu_calibration(key)
            self.record.alignments[key] = realign(self.record.alignments[key], accel_only)
            self.alignment = self.record.alignments[key]
        self.file.save(self.record)
        self._restart()
        offset = ", ".join(f"{1000 * o:+.0f}" for o in fit.offset_g)
        scale = ", ".join(f"{s:.3f}" for s in fit.scale)
        return Ack("calibrate", True,
                   f"accelerometer calibrated from {outcome.poses} poses and applied: offset "
                   f"({offset}) mg, scale ({scale}), fit RMS {1000 * fit.rms_g:.1f} mg")

    def _band_profile(self, command: Command, exercise: str) -> Ack:
        """Start, finish or cancel a band-profile capture (see :mod:`spinecoach.band_profile`).

        Without an ``action`` the step starts a capture, or finishes the one running."""
        running = self.band_capture is not None
        action = str(command.args.get("action") or ("finish" if running else "start"))
        if action == "cancel":
            self._listen(None)
            return Ack("calibrate", True, "band profile capture cancelled" if running
                       else "no band profile capture was running")
        if action == "finish":
            return self._finish_band_profile()
        streams = self._source.streams if self._source is not None else []
        if not any(s.kind == "force" for s in streams):
            return Ack("calibrate", False, "band profile needs the load cell, and none is "
                       "connected: wire it inline with the band anchor (hardware.md)")
        if not any(s.name == ZERO_POSE_STREAM for s in streams):
            return Ack("calibrate", False, "band profile needs the trunk IMU for the angle, and "
                       "none is connected (hardware.md)")
        if not exercise:
            return Ack("calibrate", False, "band profile: choose the exercise first (h: home); "
                       "the band is measured along its primary angle")
        self._listen(BandCapture(exercise, str(command.args.get("name") or "")))
        again = "started again" if running else "started"
        what = exercise.replace("_", " ")
        return Ack("calibrate", True, f"band profile capture {again} ({what}): "
                   "pull the band slowly through the whole range and back, then finish")

    def _listen(self, capture: BandCapture | None) -> None:
        self.band_capture = capture
        if self._session is not None:
            self._session.listen(capture)

    def _finish_band_profile(self) -> Ack:
        capture = self.band_capture
        self._listen(None)
        if capture is None:
            return Ack("calibrate", False, "band profile: no capture is running; start one first")
        now = datetime.datetime.now(datetime.UTC)
        profile = capture.finish(now.isoformat(timespec="seconds"))  # CalibrationError: refused
        # Coaches' requests read the file (replaced atomically), never this record.
        self.record.bands[profile.key] = profile
        self.file.save(self.record)
        note = (f"; only the first {capture.samples_kept} samples used" if capture.overflow else "")
        self._say(f"band profile stored for {capture.exercise}: {profile.describe()}")
        return Ack("calibrate", True, f"band profile stored: {profile.describe()}{note}")

    def _keep_force(self, info: StreamInfo, calibration: ForceCalibration) -> None:
        self.record.forces[sensor_key(info)] = calibration
        self.file.save(self.record)

