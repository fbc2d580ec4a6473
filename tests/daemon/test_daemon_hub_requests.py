"""HubServer's requests: answered on the query thread to the coach that asked, announced in
hello, bounded per coach, refused clearly when the server answers none or the line is bad."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from daemon_helpers import LineClient
from spinecoach.hub.messages import FEATURES, Hello, Reply, Request
from spinecoach.hub.server import MAX_PENDING_REQUESTS, HubServer, bind_hub_socket


def request(client: LineClient, request_id: int, query: str, **args: object) -> None:
    line = {"v": 1, "type": "request", "id": request_id, "query": query, "args": args}
    client.sock.sendall((json.dumps(line) + "\n").encode())


def reply(client: LineClient) -> dict:
    return client.read_until(lambda m: m["type"] == "reply")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "hub.sock"


def test_requests_are_answered_only_to_the_coach_that_asked(path: Path) -> None:
    asked: list[tuple[Request, str]] = []

    def answer(req: Request) -> Reply:
        asked.append((req, threading.current_thread().name))
        return Reply(req.id, req.query, True, "", {"sessions": [{"n": req.args.get("limit")}]})

    hub = HubServer(bind_hub_socket(path), path).start()
    hub.serve_queries(answer, FEATURES)
    hub.set_hello(Hello("0.2.0", "sim:test"))
    try:
        one, two = LineClient(path), LineClient(path)
        for client in (one, two):
            hello = client.read()
            assert hello["type"] == "hello" and hello["features"] == list(FEATURES)
        request(one, 5, "recent_sessions", limit=3)
        answered = reply(one)
        assert answered == {"v": 1, "type": "reply", "id": 5, "query": "recent_sessions",
                            "ok": True, "message": "", "data": {"sessions": [{"n": 3}]}}
        assert asked[0][1] == "spinecoach-query"  # never the engine's thread
        # The other coach got nothing: a request is private.
        two.sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            two.read()
        one.close()
        two.close()
    finally:
        hub.close()


def test_a_server_without_queries_refuses_requests_and_announces_none(path: Path) -> None:
    hub = HubServer(bind_hub_socket(path), path).start()
    hub.set_hello(Hello("0.2.0", "sim:test"))
    try:
        client = LineClient(path)
        assert client.read()["features"] == []
        request(client, 1, "progress")
        refused = reply(client)
        assert refused["ok"] is False and "answers no requests" in refused["message"]
        client.close()
    finally:
        hub.close()


def test_bad_request_lines_get_a_refused_reply_with_the_reason(path: Path) -> None:
    hub = HubServer(bind_hub_socket(path), path).start()
    hub.serve_queries(lambda req: Reply(req.id, req.query, True), FEATURES)
    hub.set_hello(Hello("0.2.0", "sim:test"))
    try:
        client = LineClient(path)
        request(client, 9, "everything")
        refused = reply(client)
        assert (refused["id"], refused["ok"]) == (9, False)
        assert "unknown query 'everything'" in refused["message"]
        client.close()
    finally:
        hub.close()


def test_a_coach_may_have_only_so_many_requests_waiting(path: Path) -> None:
    release = threading.Event()

    def slow(req: Request) -> Reply:
        release.wait(5.0)
        return Reply(req.id, req.query, True)

    hub = HubServer(bind_hub_socket(path), path).start()
    hub.serve_queries(slow, FEATURES)
    hub.set_hello(Hello("0.2.0", "sim:test"))
    try:
        client = LineClient(path)
        for request_id in range(MAX_PENDING_REQUESTS + 1):
            request(client, request_id, "catalogue")
        refused = reply(client)  # the one over the bound is answered at once
        assert refused["id"] == MAX_PENDING_REQUESTS and refused["ok"] is False
        assert "already wait" in refused["message"]
        release.set()
        ids = {reply(client)["id"] for _ in range(MAX_PENDING_REQUESTS)}
        assert ids == set(range(MAX_PENDING_REQUESTS))
        client.close()
    finally:
        release.set()
        hub.close()


def test_an_answer_that_fails_is_a_refused_reply_and_the_thread_goes_on(path: Path) -> None:
    def answer(req: Request) -> Reply:
        if req.query == "progress":
            raise RuntimeError("disk on fire")
        return Reply(req.id, req.query, True)

    hub = HubServer(bind_hub_socket(path), path, on_log=lambda line: None).start()
    hub.serve_queries(answer, FEATURES)
    hub.set_hello(Hello("0.2.0", "sim:test"))
    try:
        client = LineClient(path)
        request(client, 1, "progress")
        failed = reply(client)
        assert failed["ok"] is False and "disk on fire" in failed["message"]
        request(client, 2, "catalogue")
        assert reply(client)["ok"] is True
        client.close()
    finally:
        hub.close()
