"""History over the socket: two coaches running as different users (their own HOME and XDG
directories, their own empty stores) list the daemon's stored session, its athletes and
progress, through the hub's requests; and a coach attached to an older daemon (no ``queries``
in its hello) falls back to its own store and says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from daemon_helpers import DaemonThread, LineClient, wait_for
from spinecoach.config import load_config
from spinecoach.daemon import Daemon
from spinecoach.engine.store import db_path

#: A coach in another process: the socket feed and the daemon-backed catalogue the `tui`
#: command uses, without a screen. Prints what the catalogue lists, as JSON.
COACH = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from spinecoach.hub.client import SocketFeed
    from spinecoach.tui.launch import coach_catalogue, default_catalogue

    feed = SocketFeed(Path(sys.argv[1]))
    catalogue = coach_catalogue(feed)
    feed.start()
    deadline = time.monotonic() + 20.0
    rows = []
    while time.monotonic() < deadline:
        for item in feed.poll():
            catalogue.observe(item)
        rows = catalogue.recent_sessions("", limit=10)
        if rows and catalogue.athletes():
            break
        time.sleep(0.05)
    own = default_catalogue()
    own.recent_sessions("")
    print(json.dumps({
        "rows": [[r.exercise, r.protocol, r.sets, r.reps, r.status] for r in rows],
        "athletes": catalogue.athletes(),
        "exercises": len(catalogue.exercises()),
        "reason": catalogue.unavailable_reason,
        "own_rows": len(own.recent_sessions("")),
        "own_reason": own.unavailable_reason,
    }))
    feed.close()
""")


class StoringDaemon(DaemonThread):
    """A simulated rig's daemon that stores its sessions (a sim daemon normally stores none)."""

    def __init__(self, socket_path: Path) -> None:
        super().__init__(socket_path)
        daemon = self.daemon
        self.daemon = Daemon(daemon.backend, load_config([]), socket_path, store=True,
                             say=self.lines.append, pipeline_factory=daemon._pipeline_factory)


def coach_as_user(sock: Path, home: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SPINECOACH_", "XDG_"))}
    env.update(HOME=str(home), XDG_STATE_HOME=str(home / ".local/state"),
               XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"))
    home.mkdir(parents=True)
    done = subprocess.run([sys.executable, "-c", COACH, str(sock)], env=env, cwd=home,
                          capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_two_users_see_the_daemons_sessions(tmp_path: Path, state_dir: Path) -> None:
    sock = tmp_path / "hub.sock"
    daemon = StoringDaemon(sock).start()
    try:
        client = LineClient(sock)
        # The scenario's set runs at once; the stand-in pipeline counts a rep a second.
        client.read_until(lambda m: m["type"] == "event" and m["kind"] == "rep"
                          and m["data"]["end_s"] >= 2.0, timeout_s=10.0)
        client.send("stop_set")
        client.read_until(lambda m: m["type"] == "summary" and m["scope"] == "session")
        client.close()
        wait_for(lambda: db_path(state_dir).exists())
        seen = [coach_as_user(sock, tmp_path / name) for name in ("alex", "sam")]
    finally:
        daemon.stop()
    for user, listed in zip(("alex", "sam"), seen):
        assert listed["rows"], listed
        exercise, protocol, sets, reps, _status = listed["rows"][0]
        assert (exercise, protocol) == ("banded_good_morning", "tempo_set")
        assert sets == 1 and reps >= 2
        assert listed["athletes"] and listed["exercises"] > 0
        assert listed["reason"] == ""
        # Their own stores are empty: what they listed came from the daemon.
        assert listed["own_rows"] == 0
        assert str(tmp_path / user) in listed["own_reason"]


def test_a_coach_on_an_older_daemon_falls_back_to_its_own_store(tmp_path: Path) -> None:
    from spinecoach.hub.messages import Hello, Request
    from spinecoach.tui.catalogue import FixedCatalogue, SessionRow
    from spinecoach.tui.hub_catalogue import HubCatalogue

    own = FixedCatalogue(["hip_hinge"], ["tempo_set"], ["Sam"],
                         [SessionRow("2026-11-20 18:05", "hip_hinge", "tempo_set", 1, 8)], [])
    sent: list[Request] = []
    catalogue = HubCatalogue(sent.append, own)
    assert catalogue.recent_sessions("Sam") == []
    assert "Waiting for the daemon" in catalogue.unavailable_reason
    catalogue.observe(Hello("0.1.0", "hardware"))  # no features: before queries existed
    assert catalogue.recent_sessions("Sam") == own.sessions
    assert catalogue.athletes() == ["Sam"] and catalogue.band_profiles() == []
    assert catalogue.unavailable_reason.startswith(
        "The daemon (spinecoach 0.1.0) is older and cannot send its sessions")
    assert sent == []  # an older daemon is never sent a request
