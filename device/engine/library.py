"""The exercise library: one TOML file per exercise, built-in and user-supplied.

Built-in files live in ``spinecoach/exercises/*.toml``; the user's folder (``[exercises]
directory`` in the configuration, default ``$XDG_CONFIG_HOME/spinecoach/exercises``) adds
exercises or overrides a built-in one with the same ``id`` without touching code. Every file is
validated on load; a bad one raises one :class:`~spinecoach.errors.DataFormatError` naming the
file, the key, the value and what was expected.

Angles follow the trunk sensor frame of the common conventions: the primary angle is the rotation
about ``motion.primary_axis`` from the upright zero pose (0 = standing upright, positive = flexed
forward for the +y axis), in degrees.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from spinecoach.config import Key, check_value
from spinecoach.core.results import MotionSettings, Tempo
from spinecoach.errors import DataFormatError

KINDS = ("dynamic", "hold", "pull", "throw", "balance")
PLACEMENTS = ("trunk", "pelvis", "implement")
PROTOCOL_IDS = (
    "tempo_set", "isometric_holds", "holds_with_transitions", "max_pulls", "repeaters",
    "critical_force", "sorensen", "free",
)

#: Top-level keys of an exercise file.
_TOP: dict[str, Key] = {
    "id": Key(str, None, "", "Identifier (letters, digits, underscore)."),
    "name": Key(str, None, "", "Display name."),
    "description": Key(str, "", "", "One or two sentences for the coach screen."),
    "kind": Key(str, "dynamic", "", "What is measured.", choices=KINDS),
    "default_protocol": Key(str, "free", "", "Protocol used when none is named.", choices=PROTOCOL_IDS),
    "unilateral": Key(bool, False, "", "Sets are tagged left/right and compared."),
    "uses_force": Key(bool, True, "", "The load cell is part of the exercise."),
}
_SENSORS: dict[str, Key] = {
    "imu": Key(str, "trunk", "", "Placement of the IMU that gives the primary angle.", choices=PLACEMENTS),
    "placement": Key(str, "", "", "Where and how to mount the sensors (shown to the athlete)."),
    "load_cell": Key(str, "", "", "Where the load cell sits (band/chain anchor)."),
}
_MOTION: dict[str, Key] = {
    "eccentric": Key(str, "increasing", "", "Direction of the primary angle while lengthening.",
                     choices=("increasing", "decreasing")),
    "min_rom_deg": Key(float, 15.0, "deg", "Smallest excursion counted as a rep.", min_value=1.0,
                       max_value=180.0),
    "extension_limit_deg": Key(float, None, "deg", "Most extended primary angle allowed.",
                               min_value=-180.0, max_value=180.0),
    "flexion_limit_deg": Key(float, None, "deg", "Most flexed primary angle allowed.",
                             min_value=-180.0, max_value=180.0),
}
_TEMPO: dict[str, Key] = {
    "default": Key(str, "3-1-1-0", "s", "E-P-C-P tempo; X = explosive."),
    "too_fast_fraction": Key(float, 0.7, "", "Eccentric shorter than this fraction of the target "
                             "is cued as too fast.", min_value=0.1, max_value=1.0),
}
_HOLD: dict[str, Key] = {
    "target_deg": Key(float, None, "deg", "Primary angle of the hold.", min_value=-180.0,
                      max_value=180.0),
    "tolerance_deg": Key(float, 5.0, "deg", "Half-width of the hold band.", min_value=0.5,
                         max_value=45.0),
    "target_s": Key(float, 4.0, "s", "Hold duration target.", min_value=0.5, max_value=600.0),
    "force_tolerance_frac": Key(float, 0.10, "", "Force band around the hold mean.", min_value=0.01,
                                max_value=1.0),
    "debounce_s": Key(float, 0.2, "s", "How long a break must last to end a hold.", min_value=0.0,
                      max_value=5.0),
}
_SECTIONS: dict[str, dict[str, Key]] = {
    "sensors": _SENSORS, "motion": _MOTION, "tempo": _TEMPO, "hold": _HOLD,
}
_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


def parse_tempo(text: str) -> Tempo:
    """Parse an E-P-C-P tempo such as ``"3-1-1-0"`` or ``"31X0"``; ``X`` (explosive) is 0 s."""
    cleaned = text.replace("-", "").replace(" ", "").upper()
    if len(cleaned) != 4 or any(c != "X" and not c.isdigit() for c in cleaned):
        raise ValueError(f"tempo {text!r}: expected four digits E-P-C-P such as 3-1-1-0 (X = explosive)")
    seconds = [0.0 if c == "X" else float(c) for c in cleaned]
    return Tempo(*seconds)


def format_tempo(tempo: Tempo) -> str:
    """``Tempo(3, 1, 0, 0)`` -> ``"3-1-X-0"``: a 0-second concentric is explosive by convention."""
    parts = [
        tempo.eccentric_s, tempo.pause_lengthened_s, tempo.concentric_s, tempo.pause_shortened_s
    ]
    text = [f"{p:g}" for p in parts]
    if tempo.concentric_s == 0:
        text[2] = "X"
    return "-".join(text)


@dataclass(frozen=True)
class CueOverride:
    """Per-exercise change of one cue rule (None keeps the rule's default)."""

    enabled: bool | None = None
    pattern: str | None = None
    message: str | None = None
    delay_s: float | None = None
    min_interval_s: float | None = None


@dataclass(frozen=True)
class Exercise:
    """One library entry. See ``docs`` in README for every key; angles in degrees."""

    id: str
    name: str
    description: str
    kind: str
    default_protocol: str
    unilateral: bool
    uses_force: bool
    imu: str
    placement: str
    load_cell: str
    primary_axis: tuple[float, float, float]
    eccentric: str
    min_rom_deg: float
    extension_limit_deg: float | None
    flexion_limit_deg: float | None
    tempo: Tempo
    too_fast_fraction: float
    hold_target_deg: float | None
    hold_tolerance_deg: float
    hold_target_s: float
    hold_force_tolerance_frac: float
    hold_debounce_s: float
    protocols: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cues: Mapping[str, CueOverride] = field(default_factory=dict)
    source: str = ""

    @property
    def eccentric_sign(self) -> int:
        """+1 when the lengthening phase moves the primary angle up, -1 when down."""
        return 1 if self.eccentric == "increasing" else -1

    def motion_settings(self) -> MotionSettings:
        """The movement-kernel settings of this exercise.

        ``extension_limit_deg`` in the file is the most extended primary angle allowed (e.g. -10
        = 10° behind upright, or 20 on a 45° bench); the kernels receive it as the magnitude
        ``-extension_limit_deg`` so that "angle < -extension_limit_deg" is past the limit.
        """
        return MotionSettings(
            primary_axis=self.primary_axis,
            eccentric_sign=self.eccentric_sign,
            min_rom_deg=self.min_rom_deg,
            hold_target_deg=self.hold_target_deg,
            hold_tolerance_deg=self.hold_tolerance_deg,
            hold_force_tolerance_frac=self.hold_force_tolerance_frac,
            hold_debounce_s=self.hold_debounce_s,
            # The kernels take the extension limit as a magnitude of extension (the angle may not
            # go below -extension_limit_deg); the library states it as the angle itself.
            extension_limit_deg=(
                None if self.extension_limit_deg is None else -self.extension_limit_deg
            ),
            flexion_limit_deg=self.flexion_limit_deg,
            # A throw turns about the vertical: gravity cannot see that rotation, so its primary
            # angle is the heading from the integrated gyro, not a gravity-referenced angle.
            primary_angle="heading" if self.kind == "throw" else "axis",
        )

    def protocol_params(self, protocol_id: str) -> dict[str, Any]:
        """This exercise's parameter overrides for ``protocol_id`` (possibly empty)."""
        return dict(self.protocols.get(protocol_id, {}))


class Library:
    """Exercises by id, built-in first, then the user's files overriding by id."""

    def __init__(self, exercises: Iterable[Exercise]) -> None:
        self._by_id: dict[str, Exercise] = {}
        for exercise in exercises:
            self._by_id[exercise.id] = exercise

    def __contains__(self, exercise_id: object) -> bool:
        return exercise_id in self._by_id

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._by_id.values(), key=lambda e: e.id))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, exercise_id: str) -> Exercise:
        """The exercise ``exercise_id``; raises DataFormatError listing the known ids."""
        try:
            return self._by_id[exercise_id]
        except KeyError:
            raise DataFormatError(
                f"unknown exercise {exercise_id!r}; known: {', '.join(sorted(self._by_id))} "
                "(add your own as a TOML file in the user exercises folder)"
            ) from None


def builtin_files() -> list[Path]:
    """The built-in exercise files shipped with the package."""
    folder = resources.files("spinecoach").joinpath("exercises")
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml"))


def load_library(user_dir: Path | None = None) -> Library:
    """Built-in exercises plus the ``*.toml`` files in ``user_dir`` (when it exists)."""
    files = builtin_files()
    if user_dir is not None and user_dir.is_dir():
        files += sorted(user_dir.glob("*.toml"))
    return Library(load_exercise_file(path) for path in files)


def load_exercise_file(path: Path) -> Exercise:
    """Parse and validate one exercise file."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise DataFormatError(f"{path}: not valid TOML ({error}); fix the syntax") from None
    except OSError as error:
        raise DataFormatError(f"{path}: cannot be read ({error.strerror})") from None
    return parse_exercise(data, str(path))


def parse_exercise(data: Mapping[str, Any], where: str) -> Exercise:
    """Validate the parsed TOML ``data`` of one exercise (``where`` names it in errors)."""
    allowed = set(_TOP) | set(_SECTIONS) | {"protocols", "cues"}
    for key in data:
        if key not in allowed:
            _fail(where, key, data[key], "a known key: " + ", ".join(sorted(allowed)))
    top = _table(data, _TOP, "", where)
    for required in ("id", "name"):
        if top[required] is None:
            raise DataFormatError(f"{where}: key {required!r} is missing; every exercise needs one")
    if not top["id"].replace("_", "").isalnum():
        _fail(where, "id", top["id"], "letters, digits and underscores")
    sections = {
        name: _table(_sub(data, name, where), keys, name + ".", where)
        for name, keys in _SECTIONS.items()
    }
    raw_motion = data.get("motion", {})
    axis = _axis(raw_motion.get("primary_axis", "y") if isinstance(raw_motion, dict) else "y", where)
    try:
        tempo = parse_tempo(sections["tempo"]["default"])
    except ValueError:
        _fail(where, "tempo.default", sections["tempo"]["default"], "E-P-C-P such as 3-1-1-0")
    ext, flex = sections["motion"]["extension_limit_deg"], sections["motion"]["flexion_limit_deg"]
    if ext is not None and flex is not None and ext >= flex:
        _fail(where, "motion.extension_limit_deg", ext, f"less than flexion_limit_deg ({flex})")
    protocols = _sub(data, "protocols", where)
    for protocol_id, params in protocols.items():
        if protocol_id not in PROTOCOL_IDS:
            _fail(where, f"protocols.{protocol_id}", params, "a protocol: " + ", ".join(PROTOCOL_IDS))
        if not isinstance(params, dict):
            _fail(where, f"protocols.{protocol_id}", params, "a table of protocol parameters")
    cues = {
        rule: _cue_override(params, f"cues.{rule}", where)
        for rule, params in _sub(data, "cues", where).items()
    }
    return Exercise(
        id=top["id"], name=top["name"], description=top["description"], kind=top["kind"],
        default_protocol=top["default_protocol"], unilateral=top["unilateral"],
        uses_force=top["uses_force"],
        imu=sections["sensors"]["imu"], placement=sections["sensors"]["placement"],
        load_cell=sections["sensors"]["load_cell"],
        primary_axis=axis, eccentric=sections["motion"]["eccentric"],
        min_rom_deg=sections["motion"]["min_rom_deg"], extension_limit_deg=ext,
        flexion_limit_deg=flex, tempo=tempo,
        too_fast_fraction=sections["tempo"]["too_fast_fraction"],
        hold_target_deg=sections["hold"]["target_deg"],
        hold_tolerance_deg=sections["hold"]["tolerance_deg"],
        hold_target_s=sections["hold"]["target_s"],
        hold_force_tolerance_frac=sections["hold"]["force_tolerance_frac"],
        hold_debounce_s=sections["hold"]["debounce_s"],
        protocols={k: dict(v) for k, v in protocols.items()}, cues=cues, source=where,
    )


_CUE_KEYS: dict[str, Key] = {
    "enabled": Key(bool, None, "", "Rule on or off."),
    "pattern": Key(str, None, "", "Buzzer pattern or 'none'.",
                   choices=("tick", "double", "long", "warning", "ramp", "none")),
    "message": Key(str, None, "", "On-screen text; {placeholders} from the event."),
    "delay_s": Key(float, None, "s", "Wait before cueing.", min_value=0.0, max_value=30.0),
    "min_interval_s": Key(float, None, "s", "Quiet time after a cue.", min_value=0.0, max_value=600.0),
}


def _cue_override(params: Any, prefix: str, where: str) -> CueOverride:
    if not isinstance(params, dict):
        _fail(where, prefix, params, "a table with enabled/pattern/message/delay_s/min_interval_s")
    return CueOverride(**_table(params, _CUE_KEYS, prefix + ".", where))


def _table(data: Mapping[str, Any], keys: Mapping[str, Key], prefix: str, where: str) -> dict[str, Any]:
    for name in data:
        if name not in keys and prefix:  # top level is checked by the caller
            _fail(where, prefix + name, data[name], "a known key: " + ", ".join(sorted(keys)))
    out = {}
    for name, key in keys.items():
        if name in data:
            out[name] = check_value(key, prefix + name, data[name], where, DataFormatError)
        else:
            out[name] = key.default
    return out


def _sub(data: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        _fail(where, name, value, f"a [{name}] table")
    if name == "motion":
        value = {k: v for k, v in value.items() if k != "primary_axis"}
    return value


def _axis(value: Any, where: str) -> tuple[float, float, float]:
    if isinstance(value, str) and value in _AXES:
        return _AXES[value]
    if (
        isinstance(value, list) and len(value) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        norm = math.sqrt(sum(float(v) ** 2 for v in value))
        if norm > 1e-6:
            x, y, z = (float(v) / norm for v in value)
            return (x, y, z)
    _fail(where, "motion.primary_axis", value, "x, y, z or a non-zero [x, y, z] in the sensor frame")
    raise AssertionError  # unreachable: _fail raises


def _fail(where: str, key: str, value: Any, expected: str) -> None:
    raise DataFormatError(f"{where}: {key} = {value!r} is not valid; expected {expected}")
