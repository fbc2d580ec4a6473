"""The install script adds the coach's login users to the spinecoach group (staged root)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "systemd" / "install-pi.sh"


def _install(root: Path, *extra: str, sudo_user: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SUDO_USER"}
    if sudo_user is not None:
        env["SUDO_USER"] = sudo_user
    return subprocess.run(["bash", str(SCRIPT), "--root", str(root), *extra],
                          capture_output=True, text=True, env=env, check=False)


def _usermods(root: Path) -> list[str]:
    actions = (root / "install-actions.log").read_text().splitlines()
    return [a for a in actions if a.startswith("usermod")]


def test_the_sudo_user_joins_the_group_after_it_exists_and_is_told_to_log_in_again(
        tmp_path: Path) -> None:
    result = _install(tmp_path, sudo_user="alex")
    assert result.returncode == 0, result.stderr
    assert _usermods(tmp_path) == ["usermod --append --groups spinecoach alex"]
    actions = (tmp_path / "install-actions.log").read_text().splitlines()
    assert actions.index("groupadd --system spinecoach") < actions.index(
        "usermod --append --groups spinecoach alex")
    assert "alex joined the spinecoach group: log out and in again" in result.stdout


def test_coach_users_given_replace_the_sudo_user(tmp_path: Path) -> None:
    result = _install(tmp_path, "--coach-user", "pi", "--coach-user", "sam", sudo_user="alex")
    assert result.returncode == 0, result.stderr
    assert _usermods(tmp_path) == ["usermod --append --groups spinecoach pi",
                                   "usermod --append --groups spinecoach sam"]
    assert result.stdout.count("log out and in again") == 2


@pytest.mark.parametrize("sudo_user", [None, "root"])
def test_without_a_coach_user_it_says_how_to_add_one(tmp_path: Path, sudo_user: str | None) -> None:
    result = _install(tmp_path, sudo_user=sudo_user)
    assert result.returncode == 0, result.stderr
    assert _usermods(tmp_path) == []
    assert "add one later with --coach-user NAME" in result.stdout
    assert "log out and in again" not in result.stdout


@pytest.mark.parametrize("name", ["Alex", "a b", "spinecoach", "x;rm"])
def test_a_bad_coach_user_name_is_refused_before_anything_is_done(tmp_path: Path, name: str) -> None:
    result = _install(tmp_path, "--coach-user", name)
    assert result.returncode == 64
    assert "is not a login user name" in result.stderr
    assert not (tmp_path / "install-actions.log").exists()


def test_coach_user_needs_a_name(tmp_path: Path) -> None:
    result = _install(tmp_path, "--coach-user")
    assert result.returncode != 0
    assert "--coach-user needs a user name" in result.stderr
