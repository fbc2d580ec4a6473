"""The hub protocol: round trips, validation errors, version rejection, decimation."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from spinecoach.errors import SpinecoachError
from spinecoach.hub import messages
from spinecoach.hub.messages import (
    COMMANDS,
    MAX_FRAME_RATE_HZ,
    PROTOCOL_VERSION,
    Ack,
    Command,
    Event,
    Frame,
    FrameDecimator,
    Hello,
    ProtocolError,
    SensorStatus,
    State,
    Summary,
    decode,
    encode,
    to_json,
)

EXAMPLES = [
    Hello(daemon="0.1.0", backend="replay:demo.screc", demo=True),
    Frame(t_s=1.25, angle_deg=42.5, speed_dps=-30.0, force_n=310.0, phase="eccentric", hold_s=0.0),
    Frame(t_s=2.0, angle_deg=None, speed_dps=None, force_n=12.0),
    Event(t_s=3.5, kind="cue", message="Lower slower", pattern="warning",
          data={"rule": "eccentric_too_fast"}),
    State(
        athlete="Sam", exercise="hip_hinge", protocol="tempo_3010", set_state="running",
        set_no=2, rep_no=5, target={"reps": 8, "tempo_s": [3, 0, 1, 0]},
        sensors={"trunk": SensorStatus("ok", 1000.0, 0), "force": SensorStatus("degraded", 318.0, 4)},
        mode="tracking",
    ),
    Summary(scope="set", set_no=2, exercise="hip_hinge",
            figures={"reps": 8, "peak_force_n": 412.0, "mean_rom_deg": None},
            rows=[{"rom_deg": 55.0}]),
    Ack(cmd="start_set", ok=False, message="a set is already running"),
    Command("start_set"),
    Command("calibrate", {"step": "known_weight", "mass_kg": 20}),
    Command("tag_side", {"side": "left"}),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_one_json_line(message: object) -> None:
    line = encode(message)  # type: ignore[arg-type]
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    body = json.loads(line)
    assert body["v"] == PROTOCOL_VERSION
    assert decode(line) == message
    assert decode(line.decode()) == message


def test_other_versions_are_rejected_with_what_to_do() -> None:
    line = json.dumps({"v": 2, "type": "frame", "t_s": 0.0})
    with pytest.raises(ProtocolError, match=r"version 2 is not supported.*version 1.*same spinecoach"):
        decode(line)
    with pytest.raises(ProtocolError, match="version None"):
        decode(json.dumps({"type": "frame", "t_s": 0.0}))
    assert issubclass(ProtocolError, SpinecoachError) and issubclass(ProtocolError, ValueError)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"type": "nonsense"}, "unknown hub message type 'nonsense'"),
        ({"type": "frame", "t_s": "soon"}, r"frame: field 't_s' = 'soon', expected a number"),
        ({"type": "frame", "t_s": 1, "phase": "jumping"}, "field 'phase'"),
        ({"type": "frame", "t_s": True}, "field 't_s'"),
        ({"type": "state", "set_state": "paused"}, "field 'set_state'"),
        ({"type": "state", "sensors": {"trunk": {"status": "fine"}}}, "sensor 'trunk'"),
        ({"type": "state", "set_no": 1.5}, "expected an integer"),
        ({"type": "hello", "backend": "sim:x"}, "field 'daemon'"),
        ({"type": "summary", "scope": "week"}, "field 'scope'"),
        ({"type": "summary", "scope": "set", "figures": {"x": [1]}}, "figure 'x'"),
        ({"type": "summary", "scope": "set", "rows": [1]}, "every row"),
        ({"type": "event", "t_s": 0, "kind": "rep", "data": []}, "expected an object"),
        ({"type": "command", "cmd": "launch"}, "unknown command 'launch'"),
        ({"type": "command", "cmd": "tare", "args": {"x": 1}}, r"unknown argument\(s\) \['x'\]"),
        ({"type": "command", "cmd": "select_exercise"}, "'name' is required"),
        ({"type": "command", "cmd": "tag_side", "args": {"side": "up"}}, "side 'up' not one of"),
        ({"type": "command", "cmd": "set_mode", "args": {"mode": 3}}, "expected str"),
        ({"type": "command", "cmd": "calibrate", "args": {"step": "known_weight"}}, "mass_kg"),
        ({"type": "command", "cmd": "calibrate", "args": {"step": "guess"}}, "step 'guess'"),
    ],
)
def test_malformed_messages_name_the_field(body: dict, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode(json.dumps({"v": PROTOCOL_VERSION, **body}))


def test_lines_that_are_not_json_objects_are_rejected() -> None:
    with pytest.raises(ProtocolError, match="not JSON"):
        decode(b"{not json")
    with pytest.raises(ProtocolError, match="JSON object"):
        decode(b"[1, 2]")
    with pytest.raises(ProtocolError, match="not UTF-8"):
        decode(b"\xff\xfe")


def test_commands_validate_on_construction_and_cover_the_documented_set() -> None:
    assert {"select_exercise", "select_protocol", "start_set", "stop_set", "tare", "calibrate",
            "tag_side", "set_mode"} <= set(COMMANDS)
    with pytest.raises(ProtocolError):
        Command("set_mode", {"mode": "party"})
    Command("calibrate", {"step": "zero_pose"})


def test_non_finite_numbers_encode_as_null() -> None:
    line = encode(Frame(t_s=0.5, angle_deg=float("nan"), speed_dps=float("inf"), force_n=1.0))
    frame = decode(line)
    assert isinstance(frame, Frame) and frame.angle_deg is None and frame.speed_dps is None


def test_decimator_passes_at_most_the_frame_rate_in_sample_time() -> None:
    decimator = FrameDecimator()
    passed = [
        f for i in range(1000)
        if (f := decimator.offer(Frame(t_s=i / 1000.0, angle_deg=0.0, speed_dps=0.0, force_n=None)))
    ]
    assert len(passed) == 30  # one second of 1 kHz samples
    times = [f.t_s for f in passed]
    for start in np.arange(0.0, 0.9, 0.01):  # no window of a period holds two frames
        assert sum(start <= t < start + 1 / MAX_FRAME_RATE_HZ * 0.999 for t in times) <= 1
    # A seek backwards restarts the count instead of freezing the display.
    assert decimator.offer(Frame(t_s=0.1, angle_deg=0.0, speed_dps=0.0, force_n=None)) is not None
    with pytest.raises(ValueError):
        FrameDecimator(rate_hz=60.0)


_numbers = st.one_of(st.none(), st.floats(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=False).map(np.float64))


@given(t=_numbers, angle=_numbers, speed=_numbers, force=_numbers,
       phase=st.sampled_from(["still", "eccentric", "concentric", "moving"]), hold=_numbers)
def test_frames_written_out_directly_are_the_generic_encoding(t, angle, speed, force, phase,
                                                              hold) -> None:
    frame = Frame(t, angle, speed, force, phase, hold)
    # Every field of a frame, in order, so a field added later cannot be left out unnoticed.
    assert [f.name for f in dataclasses.fields(Frame)] == [
        "t_s", "angle_deg", "speed_dps", "force_n", "phase", "hold_s"]
    generic = (json.dumps(messages._finite(to_json(frame)), separators=(",", ":")) + "\n").encode()
    assert encode(frame) == generic


def test_decimator_due_says_what_offer_would_do() -> None:
    decimator = FrameDecimator()
    rng = np.random.default_rng(3)
    # irregular steps, a hole longer than a period and two seeks backwards
    times = np.concatenate([np.cumsum(rng.uniform(0.001, 0.02, 300)), [0.5, 0.51],
                            5.0 + np.cumsum(rng.uniform(0.001, 0.05, 100)), [1.0]])
    for t in times:
        due = decimator.due(float(t))
        passed = decimator.offer(Frame(t_s=float(t), angle_deg=0.0, speed_dps=0.0, force_n=None))
        assert due == (passed is not None)


def test_the_message_layer_never_imports_textual() -> None:
    code = (
        "import sys, spinecoach.hub.messages; "
        "sys.exit(1 if any(m.split('.')[0] == 'textual' for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
