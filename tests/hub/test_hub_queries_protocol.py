"""The protocol's additions to version 1: ``request``/``reply`` lines, ``hello.features`` and the
band-profile arguments of ``calibrate``, read by this version and ignored by an older reader."""

from __future__ import annotations

import json

import pytest
from spinecoach.hub.messages import (
    FEATURES,
    MAX_BAND_NAME,
    Command,
    Hello,
    ProtocolError,
    Reply,
    Request,
    decode,
    encode,
)


def test_request_and_reply_round_trip() -> None:
    request = Request(7, "recent_sessions", {"athlete": "Sam", "limit": 20})
    assert decode(encode(request)) == request
    reply = Reply(7, "recent_sessions", True, "", {"sessions": [{"started": "2026-11-21 18:00"}]})
    assert decode(encode(reply)) == reply
    line = json.loads(encode(Reply(3, "progress", False, "cannot read")))
    assert line == {"v": 1, "type": "reply", "id": 3, "query": "progress", "ok": False,
                    "message": "cannot read", "data": {}}


@pytest.mark.parametrize(("query", "args", "match"), [
    ("everything", {}, "unknown query"),
    ("recent_sessions", {"limit": "ten"}, "expected int"),
    ("recent_sessions", {"limit": 0}, "must be > 0"),
    ("progress", {"exercise": "x"}, "unknown argument"),
    ("band_profiles", {"exercise": True}, "expected str"),
])
def test_bad_requests_are_refused(query: str, args: dict, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        Request(1, query, args)


def test_hello_announces_features_and_an_older_hello_has_none() -> None:
    hello = Hello("0.2.0", "hardware", features=FEATURES)
    assert decode(encode(hello)).features == FEATURES
    older = decode('{"v":1,"type":"hello","daemon":"0.1.0","backend":"hardware","demo":false}')
    assert older.features == ()
    # A feature this reader does not know is dropped, not an error.
    newer = decode('{"v":1,"type":"hello","daemon":"9","backend":"hardware","features":'
                   '["queries","teleport"]}')
    assert newer.features == ("queries",)


def test_an_older_reader_ignores_the_new_hello_field() -> None:
    # What version 1 promised: unknown fields are ignored. The line still carries every field
    # an older reader requires, with the meaning it knows.
    body = json.loads(encode(Hello("0.2.0", "hardware", features=FEATURES)))
    assert {k: body[k] for k in ("v", "type", "daemon", "backend", "demo")} == {
        "v": 1, "type": "hello", "daemon": "0.2.0", "backend": "hardware", "demo": False}


def test_band_profile_arguments() -> None:
    assert Command("calibrate", {"step": "band_profile"}).args == {"step": "band_profile"}
    Command("calibrate", {"step": "band_profile", "action": "start", "name": "red band"})
    Command("calibrate", {"step": "band_profile", "action": "finish"})
    with pytest.raises(ProtocolError, match="action 'go' not one of"):
        Command("calibrate", {"step": "band_profile", "action": "go"})
    with pytest.raises(ProtocolError, match="only go with band_profile"):
        Command("calibrate", {"step": "zero_pose", "action": "start"})
    with pytest.raises(ProtocolError, match="at most"):
        Command("calibrate", {"step": "band_profile", "name": "x" * (MAX_BAND_NAME + 1)})
    with pytest.raises(ProtocolError, match="printable"):
        Command("calibrate", {"step": "band_profile", "name": "red\nband"})
