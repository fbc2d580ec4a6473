"""The daemon's deferred calibration windows read exactly like the eager ones."""

from __future__ import annotations

import numpy as np
import pytest
from spinecoach.daemon import _DeferredWindow
from spinecoach.drivers.blocks import ForceBlock, ImuBlock, StreamInfo
from spinecoach.rig_calibration import SampleWindow

FORCE = StreamInfo("force", "force", 320.0, chip="NAU7802")
OTHER_FORCE = StreamInfo("force2", "force", 80.0, chip="NAU7802")
TRUNK = StreamInfo("trunk", "imu", 1000.0, chip="MPU-6050")


def _force_block(rng: np.random.Generator, info: StreamInfo, start: int, n: int,
                 with_raw: bool = True) -> ForceBlock:
    raw = rng.integers(-5000, 5000, n).astype(np.int32)
    valid = rng.random(n) > 0.1
    return ForceBlock(info, np.arange(start, start + n, dtype=np.int64), raw * 0.01, valid,
                      raw if with_raw else None, ())


def _imu_block(rng: np.random.Generator, start: int, n: int) -> ImuBlock:
    valid = rng.random(n) > 0.1
    return ImuBlock(TRUNK, np.arange(start, start + n, dtype=np.int64), rng.normal(size=(n, 3)),
                    rng.normal(size=(n, 3)), valid, np.zeros((n, 6), dtype=np.int16), ())


def _same(eager: SampleWindow, deferred: SampleWindow) -> None:
    assert deferred.full == eager.full
    assert deferred.mean_code() == eager.mean_code()
    np.testing.assert_array_equal(deferred.samples(), eager.samples())
    assert deferred.info == eager.info


@pytest.mark.parametrize("window_s", [None, 0.5, 0.05])
@pytest.mark.parametrize("seed", range(4))
def test_deferred_force_window_reads_like_the_eager_one(window_s: float | None, seed: int) -> None:
    rng = np.random.default_rng(seed)
    eager = SampleWindow() if window_s is None else SampleWindow(window_s)
    deferred = _DeferredWindow(window_s)
    _same(eager, deferred)
    start = 0
    for step in range(120):
        info = OTHER_FORCE if 60 <= step < 70 else FORCE  # a stream change starts afresh
        n = int(rng.integers(0, 12))
        block = _force_block(rng, info, start, n, with_raw=step % 17 != 5)
        start += n
        eager.add(block)
        deferred.add(block)
        if step % int(rng.integers(3, 40)) == 0:  # read now and then, as a calibration does
            _same(eager, deferred)
    _same(eager, deferred)


def test_deferred_imu_window_reads_like_the_eager_one_and_keeps_few_blocks() -> None:
    rng = np.random.default_rng(7)
    eager, deferred = SampleWindow(), _DeferredWindow()
    start = 0
    for _ in range(400):  # 8 s of 20 ms blocks
        block = _imu_block(rng, start, 20)
        start += 20
        eager.add(block)
        deferred.add(block)
    assert len(deferred._blocks) <= 1.0 / 0.02 * 1.2 + 2  # about one second of blocks
    _same(eager, deferred)
