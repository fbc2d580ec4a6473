"""HubServer on its own: greeting, per-client queue policy, commands, socket file and mode."""

from __future__ import annotations

import socket
import stat
import time
from pathlib import Path

import pytest
from daemon_helpers import LineClient, wait_for
from spinecoach.hub import server as hub_server
from spinecoach.hub.messages import Event, Frame, Hello, State
from spinecoach.hub.server import (
    HubServer,
    HubSocketError,
    bind_hub_socket,
    client_socket_paths,
    default_socket_path,
    runtime_dir,
)


def frame(t_s: float) -> Frame:
    return Frame(t_s, 10.0, 1.0, 100.0, "still", 0.0)


def event(t_s: float, size: int = 0) -> Event:
    return Event(t_s, "cue", "x" * size, "", {"rule": "test"})


@pytest.fixture
def server(tmp_path: Path):
    path = tmp_path / "hub.sock"
    hub = HubServer(bind_hub_socket(path), path).start()
    hub.set_hello(Hello("0.1.0", "sim:test"))
    yield hub
    hub.close()


def test_runtime_dir_order() -> None:
    assert runtime_dir({"RUNTIME_DIRECTORY": "/run/spinecoach:/run/x"}) == Path("/run/spinecoach")
    assert runtime_dir({"XDG_RUNTIME_DIR": "/run/user/7"}) == Path("/run/user/7/spinecoach")
    assert str(runtime_dir({})).startswith("/tmp/spinecoach-")
    assert default_socket_path({"SPINECOACH_SOCKET": "/x/y.sock"}) == Path("/x/y.sock")
    # A coach looks at its own user's daemon first, then the system one.
    assert client_socket_paths({"XDG_RUNTIME_DIR": "/run/user/7"}) == [
        Path("/run/user/7/spinecoach/hub.sock"), Path("/run/spinecoach/hub.sock")]


def test_socket_file_is_0660_and_removed_on_close(tmp_path: Path) -> None:
    path = tmp_path / "run" / "hub.sock"
    hub = HubServer(bind_hub_socket(path), path).start()
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o660
    with pytest.raises(HubSocketError, match="already serves"):
        bind_hub_socket(path)
    hub.close()
    assert not path.exists()


def test_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "hub.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: a daemon that died
    listener = bind_hub_socket(path)
    listener.close()


def test_new_client_gets_hello_then_state_then_the_stream(server: HubServer) -> None:
    server.broadcast([State(athlete="Sam"), frame(0.0)])
    client = LineClient(server.path)
    first, second = client.read(), client.read()
    assert (first["type"], second["type"]) == ("hello", "state")
    assert second["athlete"] == "Sam"
    server.broadcast([frame(1.0)])
    assert client.read() == {**client_frame(1.0)}


def client_frame(t_s: float) -> dict:
    return {"v": 1, "type": "frame", "t_s": t_s, "angle_deg": 10.0, "speed_dps": 1.0,
            "force_n": 100.0, "phase": "still", "hold_s": 0.0}


def test_slow_client_loses_frames_never_events() -> None:
    client = hub_server._Client(1, socket.socket(socket.AF_UNIX))
    for i in range(200):
        client.queue(f"frame {i}\n".encode(), True)
        if i % 10 == 0:
            client.queue(f"event {i}\n".encode(), False)
    kept = [line for _is_frame, line in client.waiting]
    assert sum(line.startswith(b"event") for line in kept) == 20  # every event
    frames = [line for line in kept if line.startswith(b"frame")]
    assert len(frames) == hub_server.MAX_QUEUED_FRAMES  # the newest frames only
    assert frames[-1] == b"frame 199\n"
    assert client.dropped_frames == 200 - hub_server.MAX_QUEUED_FRAMES
    client.sock.close()


def test_client_that_never_reads_is_disconnected_without_blocking(
    server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_server, "MAX_QUEUED_OTHERS", 300)
    stuck = socket.socket(socket.AF_UNIX)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(str(server.path))
    reader = LineClient(server.path)
    reader.sock.settimeout(10.0)
    wait_for(lambda: len(server.clients()) == 2)
    received: list[float] = []
    in_broadcast_s = 0.0
    for i in range(1000):
        start = time.monotonic()
        server.broadcast([event(float(i), size=2000)])
        in_broadcast_s += time.monotonic() - start
        if i % 10 == 9:
            # The healthy client keeps up: it reads everything sent so far.
            while len(received) < i + 1:
                message = reader.read()
                if message["type"] == "event":
                    received.append(message["t_s"])
    assert in_broadcast_s < 1.0  # broadcast never waited for the stuck client
    assert received == [float(i) for i in range(1000)]  # every event, in order
    wait_for(lambda: len(server.clients()) == 1)  # the stuck one was let go
    stuck.close()


def test_bad_lines_are_answered_and_commands_queued(server: HubServer) -> None:
    client = LineClient(server.path)
    client.read_until(lambda m: m["type"] == "hello")
    client.sock.sendall(b'{"v":1,"type":"command","cmd":"fly","args":{}}\n')
    ack = client.read_until(lambda m: m["type"] == "ack")
    assert ack["ok"] is False and ack["cmd"] == "fly" and "unknown command" in ack["message"]
    client.sock.sendall(b'{"v":2,"type":"command","cmd":"tare","args":{}}\n')
    ack = client.read_until(lambda m: m["type"] == "ack")
    assert "version" in ack["message"]
    client.send("set_mode", mode="tracking")
    client_id, command = server.commands.get(timeout=2.0)
    assert command.cmd == "set_mode" and command.args == {"mode": "tracking"}
    assert client_id == server.clients()[0].id



def test_a_coach_that_keeps_up_is_written_to_without_waking_the_loop(
    server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = LineClient(server.path)
    reader.sock.settimeout(10.0)
    wait_for(lambda: len(server.clients()) == 1)
    while reader.read()["type"] != "hello":
        pass
    wait_for(lambda: server.clients()[0].waiting == 0)
    wakes: list[int] = []
    monkeypatch.setattr(server, "_wake", lambda: wakes.append(1))
    for i in range(50):
        server.broadcast([event(float(i))])
        assert reader.read()["t_s"] == float(i)  # there at once: sent by broadcast itself
    assert wakes == []


def test_a_coach_gone_while_broadcasting_is_let_go_by_the_loop(server: HubServer) -> None:
    gone = LineClient(server.path)
    wait_for(lambda: len(server.clients()) == 1)
    gone.sock.close()
    for i in range(20):  # the first sends may still succeed; a later one fails
        server.broadcast([event(float(i))])
    wait_for(lambda: len(server.clients()) == 0)
