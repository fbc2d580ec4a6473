"""`spinecoach daemon`: sensors, engine, store and buzzer behind the coach socket (systemd service)."""

from __future__ import annotations

import argparse
from pathlib import Path

from spinecoach.backend import Backend


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "daemon",
        help="run the trainer: sensors, coaching and storage, serving coaches on a local socket",
        description=(
            "Own the sensors and the buzzer, run the coaching engine, store sessions, and serve "
            "coaches (`spinecoach tui`) on a Unix socket. Runs under systemd as "
            "spinecoach.service (Type=notify, watchdog); from a shell it runs the same. "
            "Opens no network socket."
        ),
    )
    parser.add_argument(
        "--backend",
        type=Backend.parse,
        default=None,
        metavar="BACKEND",
        help="hardware, sim:SCENARIO or replay:FILE (default: device.backend in the config)",
    )
    parser.add_argument(
        "--socket",
        type=Path,
        default=None,
        metavar="PATH",
        help="socket to serve (default: $RUNTIME_DIRECTORY/hub.sock under systemd, else "
        "$XDG_RUNTIME_DIR/spinecoach/hub.sock, else /tmp/spinecoach-$UID/hub.sock)",
    )
    parser.add_argument(
        "--store",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="record sessions in the store (default: on for hardware, off for sim and replay)",
    )
    parser.set_defaults(func=run)


def _configured_backend(text: str) -> Backend:
    """The configuration's backend; a bad one is a configuration error (exit 78, no restart)."""
    from spinecoach.errors import ConfigError, UsageError

    try:
        return Backend.parse(text)
    except UsageError as error:
        raise ConfigError(f"device.backend in the configuration: {error}") from None


def run(args: argparse.Namespace) -> int:
    from spinecoach.config import load_config
    from spinecoach.daemon import Daemon
    from spinecoach.hub.server import default_socket_path

    config = load_config()
    backend = args.backend or _configured_backend(str(config.get("device", "backend")))
    socket_path = args.socket or default_socket_path()
    return Daemon(backend, config, socket_path, store=args.store).run()
