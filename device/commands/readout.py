"""`spinecoach readout`: a live text readout of a session (replayed, simulated or live).

Four lines a second: the sample time, a trunk angle estimated from the accelerometer alone
(gravity's direction; honest only while the trunk moves slowly, and labelled so), the angular
speed, the force and the samples lost in gaps so far. Without a FILE it reads the sensors when
they answer, otherwise it replays the bundled demo recording under a banner saying so.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
from spinecoach.acquisition.source import (
    SamplerSource,
    Source,
    default_demo_path,
    describe_streams,
    open_hardware_source,
    open_source,
)
from spinecoach.acquisition.thread import SamplerThread
from spinecoach.backend import Backend
from spinecoach.calibration_steps import put_in_force, stored_calibration
from spinecoach.config import load_config
from spinecoach.core.imu_calibration import ImuCalibration, calibrations_of
from spinecoach.drivers.blocks import Block, ForceBlock, ImuBlock
from spinecoach.errors import SensorError, UsageError

#: Readout lines per second of sample time.
LINES_PER_S = 4


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "readout",
        help="live text readout of a session (the demo recording when no sensors answer)",
        description=(
            "Print time, trunk angle (estimated from the accelerometer), angular speed, force "
            "and gaps, four times a second, at the session's real pace."
        ),
    )
    parser.add_argument("file", nargs="?", type=Path, metavar="FILE",
                        help="recording to replay (.screc or .csv); default: sensors, else demo")
    parser.add_argument("--backend", default=None,
                        help="hardware, sim:SCENARIO or replay:FILE instead of FILE")
    parser.add_argument("--fast", action="store_true",
                        help="replay or simulate as fast as possible (tests)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.set_defaults(func=run)


def trunk_flexion_from_accel_deg(accel_g: np.ndarray) -> float:
    """Trunk flexion (deg, forward positive) from the mean specific force (g), gravity only.

    Upright the sensor's x axis points up, so gravity's reaction reads +x; flexing forward by
    θ about +y moves it to ``(cos θ, ·, sin θ)``: θ = atan2(a_z, a_x). Accelerations of the
    trunk itself bias it; the coach uses the fused orientation instead.
    """
    mean = accel_g.mean(axis=0)
    return math.degrees(math.atan2(float(mean[2]), float(mean[0])))


@dataclass
class Readout:
    """Accumulates blocks and prints one line per ``1 / LINES_PER_S`` s of sample time."""

    out: TextIO
    accel: list[np.ndarray] = field(default_factory=list)
    speed: list[np.ndarray] = field(default_factory=list)
    force: list[np.ndarray] = field(default_factory=list)
    gap_samples: int = 0
    gap_records: int = 0
    next_line_t: float | None = None
    imu_name: str | None = None
    lines: int = 0
    #: IMU calibrations in effect by stream name (mounting, bias, accelerometer), applied first.
    imu_calibration: dict[str, ImuCalibration] = field(default_factory=dict)

    def feed(self, block: Block) -> None:
        for gap in block.gaps:
            self.gap_samples += gap.count
            self.gap_records += 1
        if not len(block):
            return
        end_t = float(block.t_s[-1])
        if self.next_line_t is None:
            self.next_line_t = float(block.t_s[0]) + 1.0 / LINES_PER_S
        if isinstance(block, ImuBlock):
            if self.imu_name is None:
                self.imu_name = block.info.name
            if block.info.name == self.imu_name:
                ok = block.valid
                gyro_dps, accel_g = block.gyro_dps[ok], block.accel_g[ok]
                calibration = self.imu_calibration.get(block.info.name)
                if calibration is not None:
                    gyro_dps, accel_g = calibration.apply(gyro_dps, accel_g)
                self.accel.append(accel_g)
                self.speed.append(np.linalg.norm(gyro_dps, axis=1))
        elif isinstance(block, ForceBlock):
            self.force.append(block.force_n[block.valid])
        while end_t >= self.next_line_t:
            self._line(self.next_line_t)
            self.next_line_t += 1.0 / LINES_PER_S

    def _line(self, t: float) -> None:
        parts = [f"{t:8.2f} s"]
        accel = np.concatenate(self.accel) if self.accel else np.empty((0, 3))
        if len(accel):
            speed = np.concatenate(self.speed)
            parts.append(f"{self.imu_name} {trunk_flexion_from_accel_deg(accel):+6.1f}° (accel est.)")
            parts.append(f"ω {float(speed.mean()):6.1f} °/s")
        elif self.imu_name is not None:
            parts.append(f"{self.imu_name}    --- (no valid samples)")
        force = np.concatenate(self.force) if self.force else np.empty(0)
        if len(force):
            parts.append(f"force {float(force.mean()):7.1f} N")
        parts.append(f"gaps {self.gap_samples} samples" if self.gap_records else "gaps 0")
        print(" | ".join(parts), file=self.out, flush=True)
        self.accel, self.speed, self.force = [], [], []
        self.lines += 1

    def run(self, blocks: Iterable[Block]) -> None:
        for block in blocks:
            self.feed(block)


def _choose_source(args: argparse.Namespace) -> tuple[Source, str | None]:
    """The source to show and, for the demo, the banner explaining why."""
    realtime = not args.fast
    if args.file is not None and args.backend is not None:
        raise UsageError("give either FILE or --backend, not both")
    if args.file is not None:
        return open_source(Backend("replay", str(args.file)), realtime=realtime), None
    if args.backend is not None:
        return open_source(args.backend, realtime=realtime), None
    reason = "no I2C bus on this machine"
    if os.path.exists("/dev/i2c-1"):
        try:
            return open_hardware_source(1), None
        except SensorError as error:
            reason = str(error)
    demo = default_demo_path()
    source = open_source(Backend("replay", str(demo)), realtime=realtime)
    banner = (
        f"DEMO: replaying the bundled recording {demo.name} "
        f"({source.meta.get('description', 'banded good morning')}), not live sensors "
        f"({reason})."
    )
    return source, banner


def run(args: argparse.Namespace) -> int:
    source, banner = _choose_source(args)
    out = sys.stdout
    with source:
        if banner:
            print(banner, file=out)
        for note in source.notes:
            print(f"spinecoach: {note}", file=sys.stderr)
        readout = Readout(out)
        if isinstance(source, SamplerSource):
            source.start()
            # The sensors' stored calibration, as the daemon has it (a recording carries its own).
            kind = Backend.parse(args.backend).kind if args.backend else "hardware"
            streams = put_in_force(stored_calibration(load_config().state_dir(), kind), source)
            readout.imu_calibration = calibrations_of(streams)
            print(f"{source.description}: {describe_streams(source.streams)}", file=out)
            # As fast as possible the rig runs on its virtual clock: wait for the printing
            # rather than count the blocks it has not taken yet as lost.
            thread = SamplerThread(
                source.sampler, duration_s=args.seconds or source.duration_s,
                backpressure=args.fast,
            )
            thread.start()
            try:
                readout.run(thread)
            finally:
                thread.stop()
        else:
            readout.imu_calibration = calibrations_of(source.streams)
            print(f"{source.description}: {describe_streams(source.streams)}", file=out)
            readout.run(source.blocks(args.seconds))
        if banner:
            print(banner.split(":")[0] + " finished; connect the sensors for a live session.",
                  file=out)
    return 0
