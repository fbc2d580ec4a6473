"""The Raspberry Pi install script, staged into a destination root."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from spinecoach.config import load_config

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "systemd" / "install-pi.sh"


def _install(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), "--root", str(root), *extra], capture_output=True, text=True
    )


def test_staged_install_writes_every_file_and_logs_system_changes(tmp_path: Path) -> None:
    result = _install(tmp_path)
    assert result.returncode == 0, result.stderr
    boot = (tmp_path / "boot/firmware/config.txt").read_text().splitlines()
    assert "dtparam=i2c_arm=on" in boot and "dtparam=i2c_arm_baudrate=400000" in boot
    assert "i2c-dev" in (tmp_path / "etc/modules").read_text().splitlines()
    unit = (tmp_path / "etc/systemd/system/spinecoach.service").read_text()
    assert "ExecStart=/opt/spinecoach/venv/bin/spinecoach daemon" in unit
    assert (tmp_path / "etc/systemd/system/spinecoach-kiosk.service").exists()
    assert (tmp_path / "opt/spinecoach/src/pyproject.toml").exists()
    actions = (tmp_path / "install-actions.log").read_text().splitlines()
    assert actions[0].startswith("apt-get install")
    assert any(a.startswith("useradd --system --gid spinecoach --groups i2c,gpio") for a in actions)
    assert "systemctl enable spinecoach.service spinecoach-kiosk.service" in actions
    # The default configuration it installs is valid for the program.
    load_config([tmp_path / "etc/spinecoach/config.toml"], required=True)


def test_install_is_idempotent_and_keeps_the_users_config(tmp_path: Path) -> None:
    boot = tmp_path / "boot/firmware/config.txt"
    boot.parent.mkdir(parents=True)
    boot.write_text("dtparam=audio=on\ndtparam=i2c_arm_baudrate=100000\n")
    config = tmp_path / "etc/spinecoach/config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[coaching]\nmode = \"tracking\"\n")
    assert _install(tmp_path).returncode == 0
    first = boot.read_text()
    assert _install(tmp_path).returncode == 0
    assert boot.read_text() == first
    assert first.splitlines() == [
        "dtparam=audio=on", "dtparam=i2c_arm_baudrate=400000", "dtparam=i2c_arm=on"
    ]
    assert config.read_text() == "[coaching]\nmode = \"tracking\"\n"


def test_prefix_is_applied_to_the_units(tmp_path: Path) -> None:
    assert _install(tmp_path, "--prefix", "/srv/coach").returncode == 0
    unit = (tmp_path / "etc/systemd/system/spinecoach-kiosk.service").read_text()
    assert "ExecStart=/srv/coach/venv/bin/spinecoach tui" in unit


@pytest.mark.parametrize("args", [["--bogus"], ["--root"]])
def test_bad_arguments_fail_with_usage(tmp_path: Path, args: list[str]) -> None:
    result = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True)
    assert result.returncode != 0
    assert "usage" in result.stderr or "needs a directory" in result.stderr
