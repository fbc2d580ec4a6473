"""The hub protocol: what the daemon (or an in-process feed) tells a coach, and what a coach asks.

One message per line, UTF-8 JSON objects, newline-terminated ("JSON lines"). Every line carries
``"v"`` (the protocol version, :data:`PROTOCOL_VERSION`) and ``"type"``. A reader rejects a line
with another version with a :class:`ProtocolError` that says which versions meet, so an old coach
attached to a new daemon fails with one clear sentence instead of misreading fields.

Server to client (the daemon speaks first with ``hello``):

- ``hello``   — who is speaking: daemon software version, backend (``hardware``, ``sim:…``,
  ``replay:…``), ``demo`` (True when replaying the bundled demo because no sensors answered).
- ``frame``   — the live measurement, decimated to at most :data:`MAX_FRAME_RATE_HZ` by sample time.
- ``event``   — something detected or a coaching cue: on-screen message and haptic pattern.
- ``state``   — athlete, exercise, protocol, set state and counters, target, sensors, mode.
- ``summary`` — figures of a finished set or session.
- ``ack``     — the answer to one command (accepted or refused, with the reason).
- ``reply``   — the answer to one ``request`` (stored sessions, progress, band profiles).

Client to server: ``command`` with ``cmd`` in :data:`COMMANDS` and its ``args``; ``request``
with ``query`` in :data:`QUERIES` (only to a daemon whose ``hello`` lists ``queries`` in its
``features``: the additions of version 1 are announced there, never sent unasked, so an older
coach or daemon never meets a message it does not know).

The full field reference, with units, is docs/hub-protocol.md. This module never imports Textual
(the daemon uses it) and never reads a clock: frame decimation runs on sample time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from spinecoach.errors import SpinecoachError

#: Version of this protocol. Bump on any change a reader of the previous version would misread.
PROTOCOL_VERSION = 1

#: Highest rate of ``frame`` messages (Hz): the coach never redraws faster than this.
MAX_FRAME_RATE_HZ = 30.0

#: Longest accepted line (bytes): a peer sending more is broken, not chatty.
MAX_LINE_BYTES = 1 << 20

Phase = Literal["still", "eccentric", "concentric", "moving"]
SetState = Literal["idle", "running", "rest", "done"]
Mode = Literal["training", "tracking"]
SensorStatusName = Literal["ok", "degraded", "missing", "stale"]
SummaryScope = Literal["set", "session"]

PHASES: tuple[str, ...] = ("still", "eccentric", "concentric", "moving")
SET_STATES: tuple[str, ...] = ("idle", "running", "rest", "done")
MODES: tuple[str, ...] = ("training", "tracking")
SENSOR_STATUSES: tuple[str, ...] = ("ok", "degraded", "missing", "stale")
SIDES: tuple[str, ...] = ("left", "right", "none")
CALIBRATION_STEPS: tuple[str, ...] = ("known_weight", "zero_pose", "band_profile", "imu_pose")
#: What a ``calibrate`` ``band_profile`` command does with the capture (``action``).
BAND_PROFILE_ACTIONS: tuple[str, ...] = ("start", "finish", "cancel")
#: Longest band name a coach may give (characters).
MAX_BAND_NAME = 40

#: Additions to version 1 a daemon announces in ``hello.features`` (a coach uses one only when
#: announced; a daemon without ``features`` is older and has none):
#: ``queries`` — it answers ``request`` lines with ``reply`` lines (:data:`QUERIES`);
#: ``band_profile`` — it captures band profiles (``calibrate`` ``band_profile`` with ``action``).
FEATURES: tuple[str, ...] = ("queries", "band_profile")

#: Requests a daemon with the ``queries`` feature answers, and each one's arguments with their
#: accepted types (all optional): ``catalogue`` (exercises, protocols, athletes),
#: ``recent_sessions`` (``athlete``, ``limit``), ``progress`` (``athlete``), ``band_profiles``
#: (``exercise``; none: all).
QUERIES: dict[str, dict[str, tuple[type, ...]]] = {
    "catalogue": {},
    "recent_sessions": {"athlete": (str,), "limit": (int,)},
    "progress": {"athlete": (str,)},
    "band_profiles": {"exercise": (str,)},
}
#: Most rows a ``recent_sessions`` reply carries (the ``limit`` is capped to it).
MAX_QUERY_ROWS = 100


class ProtocolError(SpinecoachError, ValueError):
    """A hub line that cannot be understood (EX_PROTOCOL)."""

    exit_status = 76


# --------------------------------------------------------------------------------------------
# Server -> client messages


@dataclass(frozen=True)
class Hello:
    """First line from the daemon. ``daemon``: its software version; ``backend``: the backend
    switch it runs (``hardware``, ``sim:SCENARIO``, ``replay:FILE``); ``demo``: True when it is
    replaying the bundled demo recording because no sensors were found."""

    daemon: str
    backend: str
    demo: bool = False
    #: Additions of the protocol this daemon offers (:data:`FEATURES`); empty from an older one.
    features: tuple[str, ...] = ()

    @property
    def version(self) -> int:
        """Protocol version this hello speaks (every encoded line carries it as ``v``)."""
        return PROTOCOL_VERSION


@dataclass(frozen=True)
class Frame:
    """The live measurement at sample time ``t_s`` (s).

    ``angle_deg``: primary angle (trunk flexion for a hinge; None without an IMU);
    ``speed_dps``: primary angular speed (°/s, signed; None without an IMU);
    ``force_n``: load-cell force (N; None without a load cell); ``phase``: movement phase;
    ``hold_s``: duration of the hold in progress (s), 0 when not holding.
    """

    t_s: float
    angle_deg: float | None
    speed_dps: float | None
    force_n: float | None
    phase: Phase = "still"
    hold_s: float = 0.0


@dataclass(frozen=True)
class Event:
    """A detection or a coaching cue at sample time ``t_s`` (s).

    ``kind``: a core event kind (``rep``, ``hold_start``, ``hold_end``, ``contraction``,
    ``limit``) or ``cue`` for a coaching cue. ``message``: the on-screen text, empty when the
    event is not shown as a cue. ``pattern``: the haptic pattern name sent to the buzzer, empty
    for none. ``data``: the result as JSON (e.g. a RepResult for ``rep``; ``{"rule": NAME}``
    naming the engine's cue rule for ``cue``).
    """

    t_s: float
    kind: str
    message: str = ""
    pattern: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SensorStatus:
    """Health of one sensor stream: ``status``, measured ``rate_hz`` and ``gaps`` (count of
    missing samples so far in this session)."""

    status: SensorStatusName
    rate_hz: float
    gaps: int = 0


@dataclass(frozen=True)
class State:
    """Everything a coach needs to draw the header, the set counters and the sensor panel.

    ``target``: the current set's prescription; documented keys (all optional):
    ``reps`` (count), ``tempo_s`` ([eccentric, pause lengthened, concentric, pause shortened] s),
    ``hold_s`` (s), ``rest_s`` (s), ``sets`` (count), ``side`` (left/right/none).
    """

    athlete: str = ""
    exercise: str = ""
    protocol: str = ""
    set_state: SetState = "idle"
    set_no: int = 0
    rep_no: int = 0
    target: dict[str, Any] = field(default_factory=dict)
    sensors: dict[str, SensorStatus] = field(default_factory=dict)
    mode: Mode = "training"


@dataclass(frozen=True)
class Summary:
    """Figures of a finished set or session.

    ``figures``: name -> value, names carry their unit (``peak_force_n``, ``mean_rom_deg``,
    ``best_hold_s``); a value may be None when it could not be measured. ``rows``: one dict per
    rep/hold/contraction (or per set for a session), same naming.
    """

    scope: SummaryScope
    set_no: int
    exercise: str
    figures: dict[str, float | int | str | None] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Ack:
    """The answer to a command: ``ok`` False with ``message`` saying why it was refused."""

    cmd: str
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class Reply:
    """The answer to one :class:`Request` (same ``id`` and ``query``): ``ok`` False with
    ``message`` saying why it could not be answered; ``data`` the answer (see
    docs/hub-protocol.md per query). Goes only to the coach that asked."""

    id: int
    query: str
    ok: bool
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Client -> server


#: Command names and, for each, its argument names with their accepted types. ``calibrate``
#: takes ``step`` (one of :data:`CALIBRATION_STEPS`); for ``known_weight``, ``mass_kg``; for
#: ``band_profile`` optionally ``action`` (:data:`BAND_PROFILE_ACTIONS`; without it the step
#: starts a capture, or finishes the one running) and ``name`` (the band's, on ``start``).
COMMANDS: dict[str, dict[str, tuple[type, ...]]] = {
    "select_athlete": {"name": (str,)},
    "select_exercise": {"name": (str,)},
    "select_protocol": {"name": (str,)},
    "start_set": {},
    "stop_set": {},
    "tare": {},
    "calibrate": {"step": (str,), "mass_kg": (int, float), "action": (str,), "name": (str,)},
    "tag_side": {"side": (str,)},
    "set_mode": {"mode": (str,)},
}

#: Arguments a command may leave out.
_OPTIONAL_ARGS: dict[str, frozenset[str]] = {
    "calibrate": frozenset({"mass_kg", "action", "name"}),
}


@dataclass(frozen=True)
class Command:
    """A request from a coach: ``cmd`` in :data:`COMMANDS`, ``args`` as listed there."""

    cmd: str
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_command(self.cmd, self.args)


@dataclass(frozen=True)
class Request:
    """A question from a coach: ``query`` in :data:`QUERIES` with its ``args``; ``id`` (chosen by
    the coach) comes back in the :class:`Reply`."""

    id: int
    query: str
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_request(self.query, self.args)


Message: TypeAlias = Hello | Frame | Event | State | Summary | Ack | Command | Request | Reply

_TYPE_NAMES: dict[type, str] = {
    Hello: "hello",
    Frame: "frame",
    Event: "event",
    State: "state",
    Summary: "summary",
    Ack: "ack",
    Command: "command",
    Request: "request",
    Reply: "reply",
}


# --------------------------------------------------------------------------------------------
# Encoding


def to_json(message: Message) -> dict[str, Any]:
    """The message as a JSON-ready dict with ``v`` and ``type``."""
    try:
        type_name = _TYPE_NAMES[type(message)]
    except KeyError:
        raise TypeError(f"not a hub message: {type(message).__name__}") from None
    body: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": type_name}
    if isinstance(message, State):
        body.update(
            athlete=message.athlete,
            exercise=message.exercise,
            protocol=message.protocol,
            set_state=message.set_state,
            set_no=message.set_no,
            rep_no=message.rep_no,
            target=dict(message.target),
            sensors={
                name: {"status": s.status, "rate_hz": s.rate_hz, "gaps": s.gaps}
                for name, s in message.sensors.items()
            },
            mode=message.mode,
        )
    else:
        body.update({name: getattr(message, name) for name in message.__dataclass_fields__})
        if isinstance(message, Hello):
            body["features"] = list(message.features)
    return body


def encode(message: Message) -> bytes:
    """One protocol line (UTF-8 JSON plus ``\\n``). NaN and infinity become null, as JSON has none."""
    if type(message) is Frame:
        return _frame_line(message)
    return (json.dumps(_finite(to_json(message)), separators=(",", ":")) + "\n").encode()


def _frame_line(frame: Frame) -> bytes:
    """A frame's line written out directly: frames are most of the hub's lines (30 a second per
    daemon), and the generic walk through a dict costs several times more. The same bytes as
    the generic encoding (tested)."""
    return (
        f'{{"v":{PROTOCOL_VERSION},"type":"frame","t_s":{_json_scalar(frame.t_s)},'
        f'"angle_deg":{_json_scalar(frame.angle_deg)},"speed_dps":{_json_scalar(frame.speed_dps)},'
        f'"force_n":{_json_scalar(frame.force_n)},"phase":{_json_scalar(frame.phase)},'
        f'"hold_s":{_json_scalar(frame.hold_s)}}}\n'
    ).encode()


def _json_scalar(value: Any) -> str:
    """``value`` as :func:`encode` writes it: floats by ``float.__repr__`` as :mod:`json` does
    (numpy floats too), non-finite ones and None as null."""
    if value is None:
        return "null"
    if isinstance(value, float):
        return float.__repr__(value) if math.isfinite(value) else "null"
    return json.dumps(_finite(value))


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# Decoding


def decode(line: bytes | str) -> Message:
    """Parse and validate one protocol line; raise :class:`ProtocolError` saying what is wrong."""
    if isinstance(line, bytes):
        if len(line) > MAX_LINE_BYTES:
            raise ProtocolError(f"hub line of {len(line)} bytes exceeds {MAX_LINE_BYTES}")
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ProtocolError(f"hub line is not UTF-8 ({error.reason})") from None
    try:
        body = json.loads(line)
    except json.JSONDecodeError as error:
        raise ProtocolError(f"hub line is not JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(body, dict):
        raise ProtocolError("hub line must be a JSON object")
    return from_json(body)


def from_json(body: Mapping[str, Any]) -> Message:
    """Validate a decoded JSON object and build its message."""
    version = body.get("v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"hub protocol version {version!r} is not supported (this spinecoach speaks "
            f"version {PROTOCOL_VERSION}): install the same spinecoach version on both ends"
        )
    type_name = body.get("type")
    reader = _READERS.get(type_name) if isinstance(type_name, str) else None
    if reader is None or not isinstance(type_name, str):
        raise ProtocolError(
            f"unknown hub message type {type_name!r}: expected one of {sorted(_READERS)}"
        )
    return reader(_Fields(type_name, body))


class _Fields:
    """Typed access to the fields of one message, with errors that name message and field."""

    def __init__(self, type_name: str, body: Mapping[str, Any]) -> None:
        self.type_name = type_name
        self.body = body

    def _fail(self, name: str, expected: str) -> ProtocolError:
        got = self.body.get(name, "<missing>")
        return ProtocolError(f"hub {self.type_name}: field {name!r} = {got!r}, expected {expected}")

    def text(self, name: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = self.body.get(name, default)
        if not isinstance(value, str) or (choices and value not in choices):
            raise self._fail(name, f"one of {list(choices)}" if choices else "a string")
        return value

    def flag(self, name: str, default: bool | None = None) -> bool:
        value = self.body.get(name, default)
        if not isinstance(value, bool):
            raise self._fail(name, "true or false")
        return value

    def integer(self, name: str, default: int | None = None) -> int:
        value = self.body.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(name, "an integer")
        return value

    def number(self, name: str, default: float | None = None) -> float:
        value = self.body.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(name, "a number")
        return float(value)

    def optional_num(self, name: str) -> float | None:
        value = self.body.get(name)
        if value is None:
            return None
        return self.number(name)

    def mapping(self, name: str) -> dict[str, Any]:
        value = self.body.get(name, {})
        if not isinstance(value, dict):
            raise self._fail(name, "an object")
        return dict(value)

    def array(self, name: str) -> list[Any]:
        value = self.body.get(name, [])
        if not isinstance(value, list):
            raise self._fail(name, "an array")
        return list(value)


def _read_hello(f: _Fields) -> Hello:
    # Features this reader does not know are dropped: it cannot use them anyway.
    features = tuple(name for name in f.array("features") if name in FEATURES)
    return Hello(daemon=f.text("daemon"), backend=f.text("backend"), demo=f.flag("demo", False),
                 features=features)


def _read_frame(f: _Fields) -> Frame:
    return Frame(
        t_s=f.number("t_s"),
        angle_deg=f.optional_num("angle_deg"),
        speed_dps=f.optional_num("speed_dps"),
        force_n=f.optional_num("force_n"),
        phase=f.text("phase", "still", PHASES),  # type: ignore[arg-type]
        hold_s=f.number("hold_s", 0.0),
    )


def _read_event(f: _Fields) -> Event:
    return Event(
        t_s=f.number("t_s"),
        kind=f.text("kind"),
        message=f.text("message", ""),
        pattern=f.text("pattern", ""),
        data=f.mapping("data"),
    )


def _read_sensor(name: str, body: Any) -> SensorStatus:
    if not isinstance(body, dict):
        raise ProtocolError(f"hub state: sensor {name!r} must be an object")
    f = _Fields(f"state sensor {name!r}", body)
    return SensorStatus(
        status=f.text("status", choices=SENSOR_STATUSES),  # type: ignore[arg-type]
        rate_hz=f.number("rate_hz", 0.0),
        gaps=f.integer("gaps", 0),
    )


def _read_state(f: _Fields) -> State:
    return State(
        athlete=f.text("athlete", ""),
        exercise=f.text("exercise", ""),
        protocol=f.text("protocol", ""),
        set_state=f.text("set_state", "idle", SET_STATES),  # type: ignore[arg-type]
        set_no=f.integer("set_no", 0),
        rep_no=f.integer("rep_no", 0),
        target=f.mapping("target"),
        sensors={name: _read_sensor(name, body) for name, body in f.mapping("sensors").items()},
        mode=f.text("mode", "training", MODES),  # type: ignore[arg-type]
    )


def _read_summary(f: _Fields) -> Summary:
    figures = f.mapping("figures")
    for name, value in figures.items():
        if value is not None and not isinstance(value, (int, float, str)):
            raise ProtocolError(f"hub summary: figure {name!r} must be a number, text or null")
    rows = f.array("rows")
    if not all(isinstance(row, dict) for row in rows):
        raise ProtocolError("hub summary: every row must be an object")
    return Summary(
        scope=f.text("scope", choices=("set", "session")),  # type: ignore[arg-type]
        set_no=f.integer("set_no", 0),
        exercise=f.text("exercise", ""),
        figures=figures,
        rows=rows,
    )


def _read_ack(f: _Fields) -> Ack:
    return Ack(cmd=f.text("cmd"), ok=f.flag("ok"), message=f.text("message", ""))


def _read_command(f: _Fields) -> Command:
    return Command(cmd=f.text("cmd"), args=f.mapping("args"))


def _read_request(f: _Fields) -> Request:
    return Request(id=f.integer("id"), query=f.text("query"), args=f.mapping("args"))


def _read_reply(f: _Fields) -> Reply:
    return Reply(id=f.integer("id"), query=f.text("query"), ok=f.flag("ok"),
                 message=f.text("message", ""), data=f.mapping("data"))


_READERS: dict[str, Callable[[_Fields], Message]] = {
    "hello": _read_hello,
    "frame": _read_frame,
    "event": _read_event,
    "state": _read_state,
    "summary": _read_summary,
    "ack": _read_ack,
    "command": _read_command,
    "request": _read_request,
    "reply": _read_reply,
}


def _check_command(cmd: str, args: Mapping[str, Any]) -> None:
    """Raise ProtocolError unless ``cmd`` is known and ``args`` match its argument list."""
    spec = COMMANDS.get(cmd)
    if spec is None:
        raise ProtocolError(f"unknown command {cmd!r}: expected one of {sorted(COMMANDS)}")
    _check_args(f"command {cmd}", spec, args, _OPTIONAL_ARGS.get(cmd, frozenset()))
    choices = {"tag_side": ("side", SIDES), "set_mode": ("mode", MODES)}.get(cmd)
    if cmd == "calibrate":
        choices = ("step", CALIBRATION_STEPS)
        if args["step"] == "known_weight" and not args.get("mass_kg", 0) > 0:
            raise ProtocolError("command calibrate known_weight: 'mass_kg' must be > 0 (kg)")
        _check_band_args(args)
    if choices and args[choices[0]] not in choices[1]:
        raise ProtocolError(
            f"command {cmd}: {choices[0]} {args[choices[0]]!r} not one of {list(choices[1])}"
        )


def _check_args(what: str, spec: Mapping[str, tuple[type, ...]], args: Mapping[str, Any],
                optional: frozenset[str]) -> None:
    """Raise ProtocolError for an argument not in ``spec``, a missing one not in ``optional``,
    or one of the wrong type (a bool is never a number)."""
    unknown = set(args) - set(spec)
    if unknown:
        raise ProtocolError(f"{what}: unknown argument(s) {sorted(unknown)}")
    for name, types in spec.items():
        if name not in args:
            if name in optional:
                continue
            raise ProtocolError(f"{what}: argument {name!r} is required")
        value = args[name]
        if isinstance(value, bool) or not isinstance(value, types):
            expected = " or ".join(t.__name__ for t in types)
            raise ProtocolError(f"{what}: argument {name!r} = {value!r}, expected {expected}")


def _check_band_args(args: Mapping[str, Any]) -> None:
    """``action`` and ``name`` belong to the band-profile step and must be sensible."""
    extra = sorted({"action", "name"} & set(args))
    if extra and args["step"] != "band_profile":
        raise ProtocolError(f"command calibrate {args['step']}: {extra} only go with band_profile")
    action = args.get("action")
    if action is not None and action not in BAND_PROFILE_ACTIONS:
        raise ProtocolError(
            f"command calibrate band_profile: action {action!r} not one of "
            f"{list(BAND_PROFILE_ACTIONS)}"
        )
    name = args.get("name")
    if name is not None and (len(name) > MAX_BAND_NAME or not name.isprintable()):
        raise ProtocolError(
            f"command calibrate band_profile: name must be printable and at most "
            f"{MAX_BAND_NAME} characters"
        )


def _check_request(query: str, args: Mapping[str, Any]) -> None:
    """Raise ProtocolError unless ``query`` is known and ``args`` match its argument list."""
    spec = QUERIES.get(query)
    if spec is None:
        raise ProtocolError(f"unknown query {query!r}: expected one of {sorted(QUERIES)}")
    _check_args(f"query {query}", spec, args, frozenset(spec))
    if "limit" in args and not 0 < args["limit"]:
        raise ProtocolError(f"query {query}: 'limit' must be > 0")


# --------------------------------------------------------------------------------------------
# Frame decimation


class FrameDecimator:
    """Pass at most ``rate_hz`` frames per second of *sample time* (never the wall clock).

    Frames are due on a grid of one period: ``offer(frame)`` returns the first frame at or after
    each grid time and None for the others, so blocks of any size keep the full rate (a 10 ms
    block size still gives 30 frames a second, not 25). After a hole longer than a period the
    grid restarts at the next frame. A frame whose time goes backwards (a replay seek) is let
    through and restarts the grid, so seeking never freezes the display.
    """

    def __init__(self, rate_hz: float = MAX_FRAME_RATE_HZ) -> None:
        if not 0 < rate_hz <= MAX_FRAME_RATE_HZ:
            raise ValueError(f"rate_hz must be in (0, {MAX_FRAME_RATE_HZ}]")
        self.period_s = 1.0 / rate_hz
        self._last_t_s: float | None = None
        self._next_due_s = 0.0

    def due(self, t_s: float) -> bool:
        """Whether a frame at sample time ``t_s`` would be passed (lets a caller skip building
        one that would not)."""
        last = self._last_t_s
        return last is None or t_s < last or t_s >= self._next_due_s

    def offer(self, frame: Frame) -> Frame | None:
        """The frame if it is due, else None."""
        t = frame.t_s
        if self._last_t_s is None or t < self._last_t_s:
            self._next_due_s = t + self.period_s
        elif t >= self._next_due_s:
            self._next_due_s += self.period_s
            if self._next_due_s <= t:
                self._next_due_s = t + self.period_s
        else:
            return None
        self._last_t_s = t
        return frame
