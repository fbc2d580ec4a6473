"""The band-profile calibration step through the daemon, end to end on the simulated rig: the
banded good morning's band on the load cell, the real measurement pipeline, the capture started
and finished by a coach, stored with the other calibrations and answered to a coach's request;
and every refusal (no exercise, too little range, no capture, no load cell, a set running)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import DaemonThread, LineClient
from spinecoach.acquisition.sim_rig import build_sim_rig
from spinecoach.acquisition.source import SamplerSource
from spinecoach.backend import Backend
from spinecoach.config import load_config
from spinecoach.daemon import Daemon, measurement_pipeline
from spinecoach.rig_calibration import CalibrationFile


def rig_as_hardware(backend: Backend) -> SamplerSource:
    """The banded good morning's rig run as the sensors, with no exercise named (a coach chooses
    it): nothing autostarts."""
    rig = build_sim_rig("good_morning_tempo")
    return SamplerSource(rig.sampler(pace_realtime=True), "band rig", {}, bus=rig.bus)


class RealPipelineDaemon(DaemonThread):
    """A daemon thread with the real measurement pipeline (the angle and phases matter here)."""

    def __init__(self, socket_path: Path, **kwargs: Any) -> None:
        super().__init__(socket_path, **kwargs)
        daemon = self.daemon
        self.daemon = Daemon(daemon.backend, load_config([]), socket_path,
                             open_source=daemon._open_source, say=self.lines.append,
                             pipeline_factory=measurement_pipeline)


def frame_after(client: LineClient, t_s: float) -> dict[str, Any]:
    return client.read_until(lambda m: m["type"] == "frame" and m["t_s"] >= t_s, timeout_s=15.0)


def answer(client: LineClient) -> dict[str, Any]:
    return client.read_until(lambda m: m["type"] in ("ack", "reply"), timeout_s=15.0)


def band(client: LineClient, **args: Any) -> dict[str, Any]:
    client.send("calibrate", step="band_profile", **args)
    return answer(client)


def test_a_band_profile_is_captured_stored_and_answered(tmp_path: Path, state_dir: Path) -> None:
    sock = tmp_path / "hub.sock"
    daemon = RealPipelineDaemon(sock, backend="hardware", open_source=rig_as_hardware).start()
    try:
        client = LineClient(sock)
        assert "band_profile" in client.read_until(lambda m: m["type"] == "hello")["features"]
        refused = band(client, action="start")
        assert not refused["ok"] and "choose the exercise first" in refused["message"]
        client.send("select_exercise", name="banded_good_morning")
        assert answer(client)["ok"]

        # Standing still (the scenario's first 3 s): too little range, refused with the figure.
        frame_after(client, 0.8)
        assert band(client, action="start", name="red band")["ok"]
        frame_after(client, 2.0)
        small = band(client, action="finish")
        assert not small["ok"] and "the angle moved only" in small["message"], small
        assert "at least 20° needed" in small["message"]
        finish_again = band(client, action="finish")
        assert not finish_again["ok"] and "no capture is running" in finish_again["message"]

        # The first rep: down to ~85° in 3 s, a second's pause, up in 1 s.
        started = band(client, name="red band")  # no action: starts
        assert started["ok"] and "pull the band slowly" in started["message"], started
        frame_after(client, 8.6)
        stored = band(client)  # no action: finishes the running capture
        assert stored["ok"], stored
        assert stored["message"].startswith("band profile stored: red band: ")
        assert any(line.startswith("band profile stored for banded_good_morning: red band")
                   for line in daemon.lines)  # the journal
        client.close()
    finally:
        daemon.stop()

    record = CalibrationFile(state_dir / "calibration.hardware.json").load()
    profile = record.bands["banded_good_morning/red band"]
    low, high = profile.range_deg
    assert low < 5.0 and high > 75.0  # the whole range of the rep
    # The band shortens as the trunk flexes: tension falls from ~150 N upright to ~45 N at
    # 85°, about -1.2 N/° (the scenario's band: 250 N/m, 0.90 m rest length).
    assert profile.stiffness_n_per_deg is not None
    assert -1.8 < profile.stiffness_n_per_deg < -0.7
    edges = [edge for edge, _ in profile.concentric]
    assert all(edge % 2.0 == 0 for edge in edges) and edges == sorted(edges)
    assert len(profile.concentric) >= 10 and len(profile.eccentric) >= 20
    forces = dict(profile.eccentric)
    assert forces[min(forces)] > forces[max(forces)] + 60.0
    assert profile.captured_utc.endswith("+00:00")
    assert f"{profile.bins} bins of 2°" in stored["message"]

    # A new daemon answers a coach's request with the stored profile.
    again = DaemonThread(sock, backend="hardware", open_source=rig_as_hardware).start()
    try:
        client = LineClient(sock)
        line = {"v": 1, "type": "request", "id": 4, "query": "band_profiles",
                "args": {"exercise": "banded_good_morning"}}
        client.sock.sendall((json.dumps(line) + "\n").encode())
        reply = answer(client)
        assert reply["ok"] and [p["name"] for p in reply["data"]["profiles"]] == ["red band"]
        assert reply["data"]["profiles"][0]["stiffness_n_per_deg"] == profile.stiffness_n_per_deg
        client.close()
    finally:
        again.stop()


@pytest.mark.parametrize("scenario", ["single_leg_deadlift"])
def test_no_load_cell_and_a_running_set_are_refused(tmp_path: Path, scenario: str) -> None:
    sock = tmp_path / "hub.sock"
    daemon = DaemonThread(sock, backend=f"sim:{scenario}").start()
    try:
        client = LineClient(sock)
        client.read_until(lambda m: m["type"] == "state" and m["set_state"] == "running")
        running = band(client)
        assert not running["ok"] and "stop the set first" in running["message"]
        client.send("stop_set")
        assert answer(client)["ok"]
        no_cell = band(client)
        assert not no_cell["ok"] and "needs the load cell" in no_cell["message"], no_cell
        cancelled = band(client, action="cancel")
        assert cancelled["ok"] and "no band profile capture was running" in cancelled["message"]
        client.close()
    finally:
        daemon.stop()
