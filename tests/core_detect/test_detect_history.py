"""The pipeline's sample history: an adopted block (kept without copying) is never written to,
and the history reads the same whether blocks were adopted or copied."""

from __future__ import annotations

import numpy as np
from spinecoach.core.history import SampleHistory

CHANNELS = {"angle": (), "quat": (4,)}


def feed(hist: SampleHistory, blocks: list[tuple[np.ndarray, np.ndarray]], adopt: frozenset[str]) -> None:
    for angle, quat in blocks:
        hist.append(adopt, angle=angle, quat=quat)


def test_adopted_block_is_kept_unchanged_through_trim_and_growth():
    rng = np.random.default_rng(1)
    angle, quat = rng.normal(size=5000), rng.normal(size=(5000, 4))
    angle_before, quat_before = angle.copy(), quat.copy()
    hist = SampleHistory(CHANNELS, capacity=64)
    hist.append(frozenset({"angle", "quat"}), angle=angle, quat=quat)
    assert np.shares_memory(hist.get("angle", 0, 10), angle)  # kept, not copied
    hist.trim(4000)
    more = rng.normal(size=300), rng.normal(size=(300, 4))
    hist.append(frozenset({"angle", "quat"}), angle=more[0], quat=more[1])
    np.testing.assert_array_equal(angle, angle_before)
    np.testing.assert_array_equal(quat, quat_before)
    np.testing.assert_array_equal(hist.get("angle", 4000, 5300), np.concatenate([angle[4000:], more[0]]))
    np.testing.assert_array_equal(hist.get("quat", 4000, 5300), np.concatenate([quat[4000:], more[1]]))
    assert (hist.start, hist.stop) == (4000, 5300)


def test_history_reads_the_same_with_and_without_adoption():
    rng = np.random.default_rng(2)
    sizes = [3000, 7, 200, 5000, 1, 64]
    blocks = [(rng.normal(size=n), rng.normal(size=(n, 4))) for n in sizes]
    adopted, copied = SampleHistory(CHANNELS, capacity=16), SampleHistory(CHANNELS, capacity=16)
    total = 0
    for block in blocks:
        feed(adopted, [block], frozenset({"angle", "quat"}))
        feed(copied, [block], frozenset())
        total += len(block[0])
        adopted.trim(total - 2500)
        copied.trim(total - 2500)
        assert (adopted.start, adopted.stop) == (copied.start, copied.stop)
        for name in CHANNELS:
            np.testing.assert_array_equal(adopted.get(name, 0, total), copied.get(name, 0, total))
    assert not np.shares_memory(copied.get("angle", copied.start, copied.stop), blocks[-1][0])
