"""Every daemon test keeps its state (stored calibration, sessions) in its own directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The daemon's state directory for this test (``$SPINECOACH_STATE_DIR``)."""
    path = tmp_path / "state"
    monkeypatch.setenv("SPINECOACH_STATE_DIR", str(path))
    return path
