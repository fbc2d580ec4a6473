"""The standalone coach's live stage on the simulated rig, run as fast as the rig goes (the feed's
worker does the same between blocks, in real time), and stored calibration files to start from."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spinecoach.acquisition.source import open_source
from spinecoach.calibration_steps import RigCalibrator, calibration_path
from spinecoach.config import load_config
from spinecoach.engine.library import load_library
from spinecoach.hub.messages import Ack, Command, Frame, Message
from spinecoach.hub.session import HubSession, SessionChoice
from spinecoach.tui.live_stage import LiveStage

SCENARIO = "good_morning_tempo"
EXERCISE = "banded_good_morning"
#: The simulated rig's chips (the calibration file's sensor keys name them).
FORCE_KEY = "NAU7802:force"
TRUNK_KEY = "MPU-6050:trunk"
#: The simulated load cell's own scale (N per count).
SIM_N_PER_COUNT = 0.000456604324956166


def mounting_about_y(tilt_deg: float) -> list[float]:
    """A mounting quaternion (w, x, y, z): the sensor turned ``tilt_deg`` about its +y axis."""
    half = math.radians(tilt_deg) / 2
    return [math.cos(half), 0.0, math.sin(half), 0.0]


def write_calibration(state_dir: Path, *, n_per_count: float, tilt_deg: float) -> Path:
    """A stored calibration of the simulated rig: load-cell scale and trunk mounting."""
    path = calibration_path(state_dir, "sim")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "forces": {FORCE_KEY: {"n_per_count": n_per_count, "offset_counts": 0.0}},
        "alignments": {TRUNK_KEY: {"quaternion": mounting_about_y(tilt_deg),
                                   "gyro_bias_dps": [0.0, 0.0, 0.0]}},
    }), encoding="utf-8")
    return path


class StageRun:
    """A :class:`LiveStage` on the simulated rig (no exercise autostarts: chosen by command),
    stepped block by block; every message it sends is kept."""

    def __init__(self, state_dir: Path, seed: int = 1, exercise: str = EXERCISE) -> None:
        self.calibrator = RigCalibrator(calibration_path(state_dir, "sim"), say=lambda _: None)
        self.calibrator.load()
        self.source = open_source(f"sim:{SCENARIO}", realtime=False, seed=seed)
        self.source.start()
        library = load_library(load_config([]).exercises_dir())
        self.choice = SessionChoice(exercise=exercise)

        def make(streams: list[Any], imu: dict[str, Any]) -> HubSession:
            return HubSession(streams, f"sim:{SCENARIO}", self.choice, library=library,
                              imu_calibration=imu)

        self.stage = LiveStage(self.source, self.calibrator, self.choice, make)
        self.messages: list[Message] = [self.stage.hello(), *self.stage.start()]
        self._blocks: Iterator[Any] = iter(self.source.blocks())
        self.t_s = 0.0

    def run_until(self, t_s: float) -> list[Frame]:
        """Process blocks up to sample time ``t_s``; the frames sent meanwhile."""
        frames: list[Frame] = []
        while self.t_s < t_s:
            block = next(self._blocks)
            if len(block):
                self.t_s = max(self.t_s, float(block.t_s[-1]))
            out = self.stage.process(block)
            self.messages += out
            frames += [m for m in out if isinstance(m, Frame)]
        return frames

    def send(self, cmd: str, **args: Any) -> Ack:
        out = self.stage.handle(Command(cmd, args))
        self.messages += out
        ack = out[0]
        assert isinstance(ack, Ack)
        return ack

    def close(self) -> None:
        self.source.close()


def mean(values: list[float | None]) -> float:
    present = [v for v in values if v is not None]
    assert present, "no values"
    return sum(present) / len(present)
