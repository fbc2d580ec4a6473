"""Helpers for the engine tests: synthetic blocks and a pipeline that plays a script of events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from spinecoach.core.results import CoreEvent
from spinecoach.drivers.blocks import Block, ForceBlock, ImuBlock, StreamInfo

IMU = StreamInfo("trunk", "imu", 200.0)
FORCE = StreamInfo("force", "force", 80.0)


class ScriptedPipeline:
    """Stands in for the measurement pipeline: emits each scripted event once samples reach it."""

    def __init__(self, script: list[CoreEvent]) -> None:
        self._script = sorted(script, key=lambda e: e.t_s)
        self._pos = 0
        self.finished = False
        self.at_finish: object = None

    def _upto(self, t_s: float) -> list[CoreEvent]:
        out = []
        while self._pos < len(self._script) and self._script[self._pos].t_s <= t_s:
            out.append(self._script[self._pos])
            self._pos += 1
        return out

    def feed_imu(self, name: str, index: Any, gyro_dps: Any, accel_g: Any, valid: Any) -> list[CoreEvent]:
        return self._upto(IMU.t0_s + float(index[-1]) / IMU.rate_hz)

    def feed_force(self, name: str, index: Any, force_n: Any, valid: Any) -> list[CoreEvent]:
        return self._upto(FORCE.t0_s + float(index[-1]) / FORCE.rate_hz)

    def finish(self) -> object:
        """Like the pipeline: results still open at the end come back in the analysis result."""
        self.finished = True
        return self.at_finish


def scripted(script: list[CoreEvent]):  # type: ignore[no-untyped-def]
    """A pipeline factory: every set gets a fresh pipeline playing the events of the script."""

    def factory(streams: list[StreamInfo], exercise: object) -> ScriptedPipeline:
        return ScriptedPipeline(script)

    return factory


def synthetic_blocks(duration_s: float, block_s: float = 0.05, seed: int = 1) -> Iterator[Block]:
    """IMU and force blocks interleaved in time, with a force profile that has some shape."""
    rng = np.random.default_rng(seed)
    n_imu = int(duration_s * IMU.rate_hz)
    n_force = int(duration_s * FORCE.rate_hz)
    imu_per, force_per = int(block_s * IMU.rate_hz), int(block_s * FORCE.rate_hz)
    for w in range(int(np.ceil(n_imu / imu_per))):
        idx = np.arange(w * imu_per, min((w + 1) * imu_per, n_imu), dtype=np.int64)
        gyro = rng.normal(0, 1, (len(idx), 3))
        accel = np.tile([1.0, 0.0, 0.0], (len(idx), 1)) + rng.normal(0, 0.01, (len(idx), 3))
        raw = (gyro * 100).astype(np.int16).repeat(2, axis=1)
        yield ImuBlock(IMU, idx, gyro, accel, np.ones(len(idx), bool), raw)
        fidx = np.arange(w * force_per, min((w + 1) * force_per, n_force), dtype=np.int64)
        if len(fidx):
            t = fidx / FORCE.rate_hz
            force = 300 + 200 * np.sin(t) + rng.normal(0, 2, len(fidx))
            yield ForceBlock(FORCE, fidx, force, np.ones(len(fidx), bool),
                             (force * 100).astype(np.int32))
