"""End to end: `spinecoach replay FILE` in a real terminal (tmux), driven as a user would.

Keys are typed with ``tmux send-keys`` and the screen is read with ``capture-pane``; the checks
are on what a person sees.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from spinecoach.tui.launch import demo_path

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed: apt-get install tmux"
)

WIDTH, HEIGHT = 100, 30
SPINECOACH = Path(sys.executable).with_name("spinecoach")


class Terminal:
    """One tmux session running a command on its own server socket."""

    def __init__(self, command: list[str], tmp_path: Path) -> None:
        self.socket = str(tmp_path / f"tmux-{uuid.uuid4().hex[:8]}")
        self.exit_file = tmp_path / "exit-status"
        shell = " ".join(_quote(c) for c in command) + f"; echo $? > {_quote(str(self.exit_file))}"
        env = {**os.environ, "TERM": "xterm-256color"}
        env.pop("TMUX", None)
        subprocess.run(
            ["tmux", "-S", self.socket, "-f", "/dev/null", "new-session", "-d", "-x", str(WIDTH),
             "-y", str(HEIGHT), "sh", "-c", shell + "; sleep 30"],
            check=True, env=env,
        )

    def screen(self) -> str:
        result = subprocess.run(
            ["tmux", "-S", self.socket, "capture-pane", "-p"], capture_output=True, text=True,
            check=False,
        )
        return result.stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            subprocess.run(["tmux", "-S", self.socket, "send-keys", key], check=True)
            time.sleep(0.15)

    def wait_for(self, check: Callable[[str], bool], what: str, timeout_s: float = 40.0) -> str:
        deadline = time.monotonic() + timeout_s
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            try:
                if check(screen):
                    return screen
            except AssertionError:
                pass  # caught mid-redraw (no replay label yet): look again
            time.sleep(0.1)
        raise AssertionError(f"never saw {what}; the screen was:\n{screen}")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], check=False,
                       capture_output=True)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _position(screen: str) -> tuple[float, str]:
    """(position s, state) from the replay label in the status line."""
    match = re.search(r"(▶|❚❚ paused|■ end) (\d+)/(\d+) s ([\d.]+)×", screen)
    assert match, f"no replay label on screen:\n{screen}"
    return float(match.group(2)), f"{match.group(1)} {match.group(4)}×"


def test_replay_in_a_real_terminal(tmp_path: Path) -> None:
    recording = demo_path()
    terminal = Terminal([str(SPINECOACH), "replay", str(recording), "--speed", "2"], tmp_path)
    try:
        screen = terminal.wait_for(lambda s: "spinecoach" in s and "×" in s, "the coach")
        assert "Force · time" in screen and "Tempo" in screen
        assert "DEMO" not in screen  # a replay the user asked for is not the demo
        # It plays: the position advances.
        start, state = _position(screen)
        assert state == "▶ 2×"
        terminal.wait_for(lambda s: _position(s)[0] >= start + 2, "the replay advancing")

        terminal.keys("Space")
        paused = terminal.wait_for(lambda s: "paused" in s, "the pause")
        held, _ = _position(paused)
        time.sleep(1.0)
        # Paused: at most the block in flight when the key arrived (a label rounds to seconds).
        assert _position(terminal.screen())[0] <= held + 1

        terminal.keys("Right", "Right")
        sought = terminal.wait_for(lambda s: _position(s)[0] >= held + 9, "a seek forward")
        terminal.keys("Left")
        terminal.wait_for(
            lambda s: _position(s)[0] <= _position(sought)[0] - 4, "a seek backward"
        )

        terminal.keys("+", "+")
        terminal.wait_for(lambda s: _position(s)[1] == "❚❚ paused 8×", "the speed up to 8×")
        terminal.keys("-", "-", "-", "-", "-")
        terminal.wait_for(lambda s: _position(s)[1] == "❚❚ paused 0.5×", "the speed down to 0.5×")

        terminal.keys("?")
        terminal.wait_for(lambda s: "seek 5 s back / forward" in s, "the help")
        terminal.keys("Escape", "s")
        terminal.wait_for(lambda s: "Set figure" in s, "the summary screen")
        terminal.keys("l", "Space")
        terminal.wait_for(lambda s: _position(s)[1] == "▶ 0.5×", "playing again at 0.5×")
        terminal.keys("q")
        terminal.wait_for(lambda s: terminal.exit_file.exists(), "the coach quitting", 10.0)
        assert terminal.exit_file.read_text().strip() == "0"
    finally:
        terminal.close()


def test_a_missing_recording_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SPINECOACH), "replay", str(tmp_path / "nothing.screc")],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert result.returncode == 65
    assert "no such recording" in result.stderr and "Traceback" not in result.stderr
