"""Configuration in TOML: the device file, then the user's file, over documented defaults.

Two files are read, later ones overriding earlier ones key by key:

1. ``/etc/spinecoach/config.toml`` (the device, written by the installer),
2. ``$XDG_CONFIG_HOME/spinecoach/config.toml`` (the user; platformdirs' user config dir),

or exactly the files given (``--config FILE``, tests). Every key is declared once in
:data:`SCHEMA` with its type, unit, default and range, and documented in
``docs/configuration.md`` (a test checks the two agree). A bad value, an unknown key or a file that
is not TOML raises one :class:`~spinecoach.errors.ConfigError` naming the file, the key, the value
and what was expected; the command line exits with status 78 so systemd does not restart on it.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
from spinecoach.errors import ConfigError

APP_NAME = "spinecoach"

#: The device-wide configuration file.
SYSTEM_CONFIG_PATH = Path("/etc/spinecoach/config.toml")

#: Environment variable naming one configuration file to read instead of the two defaults.
CONFIG_ENV = "SPINECOACH_CONFIG"


@dataclass(frozen=True)
class Key:
    """One documented setting: ``kind`` is the Python type the TOML value must have.

    ``choices`` restricts strings; ``min_value``/``max_value`` bound numbers (inclusive).
    ``unit`` is printed in the documentation ("s", "MB", "%", or "" for none).
    """

    kind: type
    default: Any
    unit: str
    doc: str
    choices: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None

    def expected(self) -> str:
        """Human description of an acceptable value, for error messages."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        names = {bool: "true or false", str: "a string", int: "an integer", float: "a number"}
        text = names.get(self.kind, self.kind.__name__)
        if self.min_value is not None and self.max_value is not None:
            text += f" from {self.min_value:g} to {self.max_value:g}"
        elif self.min_value is not None:
            text += f" >= {self.min_value:g}"
        if self.unit:
            text += f" ({self.unit})"
        return text


#: Every configuration key: {section: {key: Key}}.
SCHEMA: dict[str, dict[str, Key]] = {
    "device": {
        "backend": Key(str, "hardware", "", "Sample source: hardware, sim:SCENARIO or replay:FILE."),
        "athlete": Key(str, "default", "", "Athlete whose sessions are stored when none is named."),
        "handover_s": Key(
            float, 0.03, "s",
            "Sample time the daemon's sampler gathers per stream before handing it to the "
            "engine: a cue comes up to this much after its sample (plus the engine's few ms); "
            "longer wakes the engine less often and costs less CPU.",
            min_value=0.01, max_value=0.1,
        ),
    },
    "coaching": {
        "mode": Key(
            str, "training", "",
            "training: live haptic and on-screen cues; tracking: measure and store only.",
            choices=("training", "tracking"),
        ),
        "haptics": Key(bool, True, "", "Drive the vibration motor (false: on-screen cues only)."),
        "velocity_loss_stop_pct": Key(
            float, 20.0, "%", "Velocity loss that ends a tempo set (METRICS.md: 10/20/40).",
            min_value=1.0, max_value=90.0,
        ),
    },
    "store": {
        "state_dir": Key(
            str, "", "path",
            "Where the session database lives ($SPINECOACH_STATE_DIR overrides it); empty: "
            "systemd's $STATE_DIRECTORY, then the XDG state directory.",
        ),
        "commit_interval_s": Key(
            float, 0.5, "s",
            "Longest time results and raw samples wait before a batched commit (at most 1 s, "
            "so a storage failure is reported within 1 s).",
            min_value=0.05, max_value=1.0,
        ),
        "memory_buffer_mb": Key(
            float, 64.0, "MB",
            "Bound of the in-memory buffer that holds writes while storage fails "
            "(disk full, read-only); the oldest raw samples are dropped beyond it.",
            min_value=1.0, max_value=1024.0,
        ),
        "retry_interval_s": Key(
            float, 1.0, "s", "How often a failed store is retried.", min_value=0.1, max_value=60.0
        ),
        "keep_raw": Key(bool, True, "", "Store the raw recording of every set with its results."),
    },
    "exercises": {
        "directory": Key(
            str, "", "path",
            "Folder of the user's exercise TOML files (added to or overriding the built-in "
            "library); empty: exercises/ in the user config dir.",
        ),
    },
    "export": {
        "directory": Key(
            str, "", "path",
            "Where `spinecoach export` writes; empty: exports/ in the user data dir.",
        ),
    },
    "progression": {
        "hold_step_s": Key(float, 1.0, "s", "How much longer the next holds are when targets were met.",
                           min_value=0.1, max_value=30.0),
        "eccentric_step_s": Key(float, 1.0, "s", "How much slower the next eccentric is when controlled.",
                                min_value=0.1, max_value=5.0),
        "max_eccentric_s": Key(float, 6.0, "s", "Slowest eccentric suggested before more tension is.",
                               min_value=1.0, max_value=20.0),
        "force_drop_pct": Key(float, 10.0, "%", "Drop against the best that triggers a back-off.",
                              min_value=1.0, max_value=50.0),
        "trend_sessions": Key(int, 6, "sessions", "How many recent sessions a trend is fitted over.",
                              min_value=2, max_value=100),
    },
}


class Config:
    """Validated settings; read with ``config["store"]["commit_interval_s"]`` or :meth:`get`."""

    def __init__(self, values: Mapping[str, Mapping[str, Any]], sources: Sequence[Path] = ()) -> None:
        self._values = {section: dict(keys) for section, keys in values.items()}
        #: Files that were read, in order.
        self.sources = tuple(sources)

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self._values[section]

    def get(self, section: str, key: str) -> Any:
        return self._values[section][key]

    def with_values(self, **sections: Mapping[str, Any]) -> Config:
        """A copy with some keys replaced (validated like file values); used by command flags."""
        merged = {s: dict(k) for s, k in self._values.items()}
        for section, keys in sections.items():
            for key, value in keys.items():
                merged[section][key] = _check(SCHEMA, section, key, value, "<command line>")
        return Config(merged, self.sources)

    # Resolved paths ---------------------------------------------------------------------------

    def state_dir(self) -> Path:
        """The store's directory (see :func:`resolve_state_dir`)."""
        return resolve_state_dir(self.get("store", "state_dir"))

    def exercises_dir(self) -> Path:
        configured = self.get("exercises", "directory")
        return Path(configured).expanduser() if configured else user_config_dir() / "exercises"

    def export_dir(self) -> Path:
        configured = self.get("export", "directory")
        if configured:
            return Path(configured).expanduser()
        return Path(platformdirs.user_data_dir(APP_NAME)) / "exports"


def user_config_dir() -> Path:
    """The user's configuration folder (``$XDG_CONFIG_HOME/spinecoach`` on Linux)."""
    return Path(platformdirs.user_config_dir(APP_NAME))


def resolve_state_dir(configured: str = "", environ: Mapping[str, str] | None = None) -> Path:
    """The state directory: ``$SPINECOACH_STATE_DIR``, then the configured one, then systemd's
    ``$STATE_DIRECTORY`` (first entry), then the XDG state directory."""
    env = os.environ if environ is None else environ
    if env.get("SPINECOACH_STATE_DIR"):
        return Path(env["SPINECOACH_STATE_DIR"]).expanduser()
    if configured:
        return Path(configured).expanduser()
    if env.get("STATE_DIRECTORY"):
        # systemd joins several StateDirectory= entries with ':'; ours is the first.
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    return Path(platformdirs.user_state_dir(APP_NAME))


def default_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Files read when none is given: ``$SPINECOACH_CONFIG`` alone, else device then user."""
    env = os.environ if environ is None else environ
    if env.get(CONFIG_ENV):
        return [Path(env[CONFIG_ENV])]
    return [SYSTEM_CONFIG_PATH, user_config_dir() / "config.toml"]


def load_config(paths: Iterable[Path] | None = None, *, required: bool = False) -> Config:
    """Read and validate configuration files over the defaults.

    Missing files are skipped unless ``required`` (a file named on the command line must exist).
    Raises ConfigError for the first problem found.
    """
    values = {section: {k: key.default for k, key in keys.items()} for section, keys in SCHEMA.items()}
    read: list[Path] = []
    for path in default_paths() if paths is None else paths:
        path = Path(path)
        if not path.exists():
            if required:
                raise ConfigError(f"{path}: configuration file not found; check the path")
            continue
        for section, key, value in _read_file(path):
            values[section][key] = _check(SCHEMA, section, key, value, str(path))
        read.append(path)
    return Config(values, read)


def _read_file(path: Path) -> Iterable[tuple[str, str, Any]]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error}); fix the syntax") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror}); check its permissions") from None
    for section, table in data.items():
        if section not in SCHEMA:
            raise ConfigError(
                f"{path}: unknown section [{section}]; expected one of {', '.join(sorted(SCHEMA))}"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section} = {table!r} is a value; expected a [{section}] table")
        for key, value in table.items():
            yield section, key, value


def check_value(
    key: Key, name: str, value: Any, where: str, error: Callable[[str], Exception] = ConfigError
) -> Any:
    """Validate ``value`` for ``key``; return it (ints widened to float for float keys).

    Raises ``error(message)`` naming ``where``, ``name``, the value and what was expected. Shared by
    the configuration and the exercise library so both report problems the same way.
    """
    ok = isinstance(value, key.kind) and not (key.kind is int and isinstance(value, bool))
    if key.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if ok and isinstance(value, float) and not math.isfinite(value):
        ok = False
    if ok and key.choices and value not in key.choices:
        ok = False
    if ok and isinstance(value, (int, float)) and not isinstance(value, bool):
        if key.min_value is not None and value < key.min_value:
            ok = False
        if key.max_value is not None and value > key.max_value:
            ok = False
    if not ok:
        raise error(f"{where}: {name} = {value!r} is not valid; expected {key.expected()}")
    return value


def _check(schema: Mapping[str, Mapping[str, Key]], section: str, key: str, value: Any, where: str) -> Any:
    if key not in schema[section]:
        raise ConfigError(
            f"{where}: unknown key {section}.{key}; expected one of "
            + ", ".join(sorted(schema[section]))
        )
    return check_value(schema[section][key], f"{section}.{key}", value, where)
