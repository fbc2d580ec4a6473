"""Command line, backend switch, recording blocks and the layering rules."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from spinecoach.backend import Backend
from spinecoach.drivers.blocks import ForceBlock, Gap, StreamInfo
from spinecoach.errors import ConfigError, SpinecoachError, UsageError
from spinecoach.recording.model import ForceStream, ImuStream, Recording


def test_backend_parse() -> None:
    assert Backend.parse("hardware") == Backend("hardware")
    assert Backend.parse("sim:good_morning") == Backend("sim", "good_morning")
    assert str(Backend.parse("replay:a/b.csv")) == "replay:a/b.csv"
    for bad in ("", "sim", "sim:", "usb:1", "hardware:x"):
        with pytest.raises(UsageError, match="sim:SCENARIO"):
            Backend.parse(bad)


def test_errors_inherit_builtins_and_exit_statuses() -> None:
    assert issubclass(ConfigError, ValueError) and ConfigError.exit_status == 78
    assert issubclass(UsageError, SpinecoachError)


def test_cli_version_and_one_line_errors() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "spinecoach", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("spinecoach ")


def _recording() -> Recording:
    imu_info = StreamInfo("trunk", "imu", 100.0)
    force_info = StreamInfo("force", "force", 40.0)
    index = np.array([0, 1, 2, 5, 6, 7, 8, 9], dtype=np.int64)
    n = len(index)
    imu = ImuStream(
        imu_info, index, np.zeros((n, 3)), np.zeros((n, 3)), np.ones(n, bool),
        gaps=[Gap("trunk", 3, 2, "fifo_overflow")],
    )
    findex = np.arange(3, dtype=np.int64)
    force = ForceStream(force_info, findex, np.arange(3.0), np.ones(3, bool))
    return Recording(imu={"trunk": imu}, force={"force": force})


@pytest.mark.parametrize("block_s", [0.005, 0.01, 0.03, 1.0])
def test_recording_blocks_cover_every_sample_once_in_time_order(block_s: float) -> None:
    rec = _recording()
    blocks = list(rec.blocks(block_s))
    imu_index = np.concatenate([b.index for b in blocks if b.info.kind == "imu"])
    force_index = np.concatenate([b.index for b in blocks if b.info.kind == "force"])
    assert imu_index.tolist() == rec.imu["trunk"].index.tolist()
    assert force_index.tolist() == [0, 1, 2]
    gaps = [g for b in blocks for g in b.gaps]
    assert gaps == [Gap("trunk", 3, 2, "fifo_overflow")]
    # The gap travels with the first block holding samples after it.
    holder = next(b for b in blocks if b.gaps)
    assert int(holder.index[-1]) >= 5


def test_headless_code_never_imports_textual() -> None:
    code = (
        "import sys, importlib, pkgutil\n"
        "import spinecoach, spinecoach.drivers, spinecoach.core\n"
        "skip = ('spinecoach.tui', 'spinecoach.commands', 'spinecoach.__main__')\n"
        "for pkg in (spinecoach, spinecoach.drivers, spinecoach.core):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if not m.name.startswith(skip):\n"
        "            importlib.import_module(m.name)\n"
        "assert 'textual' not in sys.modules, 'a headless module imported textual'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_a_blocks_sample_times_are_computed_once_read_only_and_not_carried_by_replace() -> None:
    info = StreamInfo(name="force", kind="force", rate_hz=100.0, t0_s=1.0)
    block = ForceBlock(info, np.arange(3, dtype=np.int64), np.zeros(3), np.ones(3, dtype=bool))
    assert block.t_s is block.t_s  # one array shared by every reader
    np.testing.assert_allclose(block.t_s, [1.0, 1.01, 1.02])
    with pytest.raises(ValueError):
        block.t_s[0] = 0.0  # no reader can change what the others see
    moved = replace(block, index=np.arange(10, 13, dtype=np.int64))
    np.testing.assert_allclose(moved.t_s, [1.1, 1.11, 1.12])
    assert moved == moved and block.t_s[0] == 1.0
