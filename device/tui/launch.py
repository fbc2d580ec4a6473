"""Assembling the coach: which feed (sensors, simulated rig, demo, a recording), which catalogue,
and running it."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from spinecoach.backend import Backend
from spinecoach.config import Config, load_config
from spinecoach.drivers.blocks import Block, StreamInfo
from spinecoach.engine.library import Library, load_library
from spinecoach.engine.progression import ProgressionSettings
from spinecoach.errors import SensorError
from spinecoach.hub.session import HubSession, SessionChoice
from spinecoach.tui.app import CoachApp, wants_console
from spinecoach.tui.catalogue import Catalogue
from spinecoach.tui.feed import CoachFeed
from spinecoach.tui.inprocess import InProcessFeed, ReplayTransport
from spinecoach.tui.store_catalogue import StoreCatalogue

#: Block length a replay is cut into (s): one frame's worth, so frames keep the full 30 Hz.
REPLAY_BLOCK_S = 1.0 / 30.0


def demo_path() -> Path:
    """The bundled demo recording."""
    return Path(str(resources.files("spinecoach") / "data" / "demo.screc"))


def replay_feed(
    path: str | os.PathLike[str],
    *,
    speed: float = 1.0,
    paused: bool = False,
    demo: bool = False,
    loop: bool = False,
    config: Config | None = None,
) -> InProcessFeed:
    """A feed replaying ``path`` through the coached session (nothing stored, no buzzer).

    The recording's metadata names its exercise (and protocol, athlete, side) when it has them;
    without an exercise the session only measures. Raises DataFormatError for a bad file.
    """
    from spinecoach.recording.load import load_recording

    config = config or load_config()
    library = load_library(config.exercises_dir())
    recording = load_recording(path)
    meta = recording.meta
    exercise = str(meta.get("exercise") or "")
    choice = SessionChoice(
        athlete=str(meta.get("athlete") or ("demo" if demo else "")),
        exercise=exercise if exercise in library else "",
        protocol=str(meta.get("protocol") or ""),
        side=str(meta.get("side") or "none"),
        mode=str(config.get("coaching", "mode")),
    )
    streams = recording.streams
    blocks: list[Block] = list(recording.blocks(REPLAY_BLOCK_S))
    backend = str(Backend("replay", str(path)))

    def make_stage() -> HubSession:
        fresh = SessionChoice(**{**vars(choice), "params": dict(choice.params)})
        return HubSession(streams, backend, fresh, library=library,
                          demo=demo, autostart=True)

    transport = ReplayTransport(recording.duration_s, speed=speed, paused=paused)
    return InProcessFeed(make_stage, blocks, transport, loop=loop)


def live_feed(backend: Backend, config: Config | None = None) -> InProcessFeed:
    """A feed on the sensors (``hardware``) or the simulated rig (``sim:SCENARIO``, in real time).

    On the sensors sessions are stored and cues buzz; the coach starts a session with Enter once
    an exercise is chosen. A scenario runs its own exercise and protocol at once.
    The stored calibration of the backend's sensors is in force and the calibration wizard's
    steps work as through the daemon (:class:`~spinecoach.tui.live_stage.LiveStage`).
    Raises SensorError when no sensor answers, CalibrationFileError when the stored
    calibration is unreadable.
    """
    from spinecoach.acquisition.source import open_source
    from spinecoach.calibration_steps import RigCalibrator, calibration_path
    from spinecoach.engine.session import open_store, scenario_defaults
    from spinecoach.engine.sources import make_haptics
    from spinecoach.tui.live_stage import LiveStage

    config = config or load_config()
    library = load_library(config.exercises_dir())
    calibrator = RigCalibrator(calibration_path(config.state_dir(), backend.kind), say=_quiet)
    source = open_source(backend, realtime=True)
    try:
        blocks = source.blocks()  # starts the chips: the stream table is final after this
        # After the chips: with no sensors the standalone coach falls back to the demo whatever
        # the file holds; with them, an unreadable file is one line (the CLI's) and no coach.
        calibrator.load()
    except BaseException:
        source.close()
        raise
    exercise, protocol = ("", "")
    if backend.kind == "sim":
        defaults = scenario_defaults(backend.target)
        exercise, protocol = defaults.exercise, defaults.protocol
    choice = SessionChoice(
        athlete=str(config.get("device", "athlete")),
        exercise=exercise,
        protocol=protocol,
        mode=str(config.get("coaching", "mode")),
    )
    if backend.kind == "sim":
        choice.params = dict(defaults.params)  # the scenario's scripted prescription
    stored = backend.kind == "hardware"
    problems: list[str] = []
    store = open_store(config, problems.append) if stored else None
    haptics = make_haptics(backend, config)

    def make_session(streams: list[StreamInfo], imu_calibration: dict[str, Any]) -> HubSession:
        return HubSession(streams, str(backend), choice, library=library,
                          autostart=backend.kind == "sim", store=store, haptics=haptics,
                          problems=problems, imu_calibration=imu_calibration)

    stage = LiveStage(source, calibrator, choice, make_session)

    def close() -> None:
        source.close()
        if store is not None:
            store.close()

    return InProcessFeed(lambda: stage, blocks, on_close=close)


def _quiet(line: str) -> None:
    """The standalone coach's log lines: the coach's own acks already say it on screen."""


def standalone_feed(force_demo: bool = False, backend: Backend | None = None) -> CoachFeed:
    """A running daemon when its socket answers, else the sensors when they answer, else the
    demo recording (looping, with the banner).

    ``backend`` other than ``hardware`` is used as given (a scenario or a recording).
    """
    if backend is not None and backend.kind == "replay":
        return replay_feed(backend.path)
    if backend is not None and backend.kind == "sim":
        return live_feed(backend)
    if not force_demo:
        from spinecoach.hub.client import SocketFeed, find_daemon

        daemon_socket = find_daemon()
        if daemon_socket is not None:
            return SocketFeed(daemon_socket)  # a daemon owns the sensors: attach to it
        try:
            return live_feed(Backend("hardware"))
        except SensorError:
            pass  # no bus, or no chip answered: the demo says so on screen
    return replay_feed(demo_path(), demo=True, loop=True)


def default_catalogue(config: Config | None = None, backend_kind: str = "hardware") -> Catalogue:
    """The exercise library and session store on this machine, and the band profiles kept for
    ``backend_kind``'s sensors."""
    from spinecoach.calibration_steps import calibration_path

    config = config or load_config()
    library: Library = load_library(config.exercises_dir())
    state_dir = config.state_dir()
    return StoreCatalogue(library, state_dir, ProgressionSettings.from_config(config),
                          calibration_file=calibration_path(state_dir, backend_kind).name)


def coach_catalogue(feed: CoachFeed, config: Config | None = None) -> Catalogue:
    """What the coach lists: the daemon's store when attached to one (it is asked over the
    socket; an older daemon falls back to this machine's), else this machine's."""
    request = getattr(feed, "request", None)
    if request is not None:
        from spinecoach.tui.hub_catalogue import HubCatalogue

        return HubCatalogue(request, default_catalogue(config))
    return default_catalogue(config)


def run_coach(feed: CoachFeed, *, console: bool = False, catalogue: Catalogue | None = None) -> int:
    """Run the coach until the user quits; a session error ends it and is raised here."""
    app = CoachApp(feed, catalogue or coach_catalogue(feed), console=console or wants_console())
    app.run()
    error = getattr(feed, "error", None)
    if error is not None:
        raise error
    return app.return_code or 0
