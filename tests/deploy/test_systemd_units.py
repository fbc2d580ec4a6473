"""The systemd units verify cleanly and the daemon's sandbox scores as required."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
INSTALLED_BINARY = "/opt/spinecoach/venv/bin/spinecoach"

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _render(unit: str, tmp_path: Path) -> Path:
    """Copy a unit with ExecStart pointing at this venv's console script (verify checks it)."""
    binary = Path(sys.executable).with_name("spinecoach")
    text = (UNITS / unit).read_text().replace(INSTALLED_BINARY, str(binary))
    out = tmp_path / unit
    out.write_text(text)
    return out


@pytest.mark.parametrize("unit", ["spinecoach.service", "spinecoach-kiosk.service"])
def test_unit_verifies_without_output(unit: str, tmp_path: Path) -> None:
    rendered = _render(unit, tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(rendered)], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout + result.stderr == ""


def test_daemon_exposure_is_at_most_2_5(tmp_path: Path) -> None:
    rendered = _render("spinecoach.service", tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(rendered)],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.5


def test_daemon_unit_has_the_required_settings() -> None:
    text = (UNITS / "spinecoach.service").read_text()
    for setting in (
        "Type=notify", "WatchdogSec=", "Restart=on-failure", "RestartPreventExitStatus=78",
        "StateDirectory=spinecoach", "RuntimeDirectory=spinecoach", "NoNewPrivileges=yes",
        "ProtectSystem=strict", "DeviceAllow=/dev/i2c-1 rw", "DeviceAllow=char-gpiochip rw",
        "SupplementaryGroups=i2c gpio",
    ):
        assert setting in text, setting
