"""The spinecoach daemon: sensors, engine, store and buzzer behind one Unix socket.

Threads and who owns what:

- the **sampler** (:class:`~spinecoach.acquisition.thread.SamplerThread`) reads the chips and
  never waits for anyone: when the engine falls behind its blocks become ``stall`` gaps;
- the **main thread** polls the sampler's queue and runs the engine (:class:`~spinecoach.hub.session.HubSession`: pipeline,
  protocol, cues, buzzer, store), carries out coaches' commands between blocks, pings the
  systemd watchdog and handles SIGTERM;
- the **hub** (:class:`~spinecoach.hub.server.HubServer`) serves the coaches from its own
  thread; the engine only queues lines for it, so a slow coach cannot hold anything up.

systemd (``Type=notify``): ``READY=1`` is sent once the socket listens and the sensors are
started, or once the degraded decision is made. The watchdog is pinged only while blocks are
being processed (:data:`PROGRESS_WINDOW_S`), so a stalled sampler stops the pings within that
window: systemd then restarts the daemon. SIGTERM (or SIGINT) ends the set in
progress, stores the session, switches the buzzer off and exits 0.

Without sensors:

- the ``hardware`` backend on a machine with **no I2C bus device** exits at once with one line and
  status 78 (EX_CONFIG): I2C is not enabled, which a restart cannot fix
  (``RestartPreventExitStatus=78``);
- a bus on which **no sensor answers** (unplugged, wiring) is the **degraded** mode: the daemon
  reports READY with a status saying so, serves coaches (who see every sensor ``missing`` and a
  notice), refuses sets, and tries the sensors again every :data:`RETRY_SENSORS_S`; the watchdog
  is fed by that retry loop, which is then the thing that must keep going.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from spinecoach.acquisition.sampler import Sampler, SamplerSettings
from spinecoach.acquisition.source import Source, describe_streams
from spinecoach.acquisition.source import open_source as open_backend_source
from spinecoach.acquisition.thread import SamplerThread
from spinecoach.backend import Backend
from spinecoach.calibration_steps import RigCalibrator, calibration_path
from spinecoach.config import SCHEMA, Config
from spinecoach.drivers.blocks import Block, StreamInfo
from spinecoach.engine.library import Library, load_library
from spinecoach.engine.progression import ProgressionSettings
from spinecoach.engine.runner import PipelineFactory, PipelineLike, core_pipeline
from spinecoach.engine.store import Store
from spinecoach.errors import ConfigError, NoBusError, SensorError
from spinecoach.hub.messages import (
    FEATURES,
    Ack,
    Command,
    Event,
    Hello,
    Message,
    SensorStatus,
    State,
)
from spinecoach.hub.queries import StoreQueries
from spinecoach.hub.server import HubServer, bind_hub_socket, name_os_thread
from spinecoach.hub.session import HubSession, SessionChoice
from spinecoach.notify import Notifier
from spinecoach.rig_calibration import Alignment, CalibrationRecord, read_band_profiles

#: Longest the engine waits for a block before looking at commands, the watchdog and the stop
#: flag again (s).
TICK_S = 0.05
#: The watchdog is pinged only if a block was processed within this much wall time (s).
PROGRESS_WINDOW_S = 1.0
#: How often the degraded daemon tries the sensors again (s).
RETRY_SENSORS_S = 5.0
#: Longest a stopping daemon waits for the sampler's last blocks (s).
FINAL_DRAIN_S = 0.5
#: Most blocks the engine processes before sending their messages to the coaches.
BATCH_BLOCKS = 8
#: Python's thread switch interval in the daemon (s), see :meth:`Daemon.run`.
GIL_SWITCH_S = 0.0005
#: Streams a rig has when none answered, shown as ``missing`` to the coaches.
RIG_STREAMS = ("trunk", "pelvis", "force")

SourceOpener = Callable[[Backend], Source]
Say = Callable[[str], None]


def _print_line(line: str) -> None:
    print(line, flush=True)


def daemon_sampler(handover_s: float) -> SamplerSettings:
    """The daemon's sampler cadence. The IMUs are drained after every second load-cell
    conversion (about 6 frames at 1 kHz) instead of after each, which halves the FIFO drains
    (three I2C transfers each, ~480 fewer a second) for at most ~6 ms more frames lost with a
    FIFO overflow after a reader stall. Blocks of
    ``handover_s`` of sample time per stream go to the engine (``device.handover_s``), and a
    simulated rig is paced in steps of the same length, so it wakes the engine as the chips
    would. Recordings made with `spinecoach record` keep the sampler's defaults."""
    return SamplerSettings(paced_drain_frames=4, block_s=handover_s, pace_ahead_s=handover_s)


#: The daemon's sampler with the configuration's default hand-over.
DAEMON_SAMPLER = daemon_sampler(float(SCHEMA["device"]["handover_s"].default))


def open_daemon_source(backend: Backend, handover_s: float | None = None) -> Source:
    """The source of ``backend`` paced to real time (a daemon serves people, not a batch),
    handing ``handover_s`` of samples at a time to the engine (default: the configuration's)."""
    settings = DAEMON_SAMPLER if handover_s is None else daemon_sampler(handover_s)
    return open_backend_source(backend, realtime=True, settings=settings)


def measurement_pipeline(streams: list[StreamInfo], what: Any) -> PipelineLike:
    """The measurement pipeline :class:`HubSession` asks for: with an exercise for a set (the
    engine's :func:`core_pipeline`), with motion settings or None for the display between sets."""
    if hasattr(what, "motion_settings"):
        return core_pipeline(streams, what)
    from spinecoach.core.pipeline import Pipeline  # type: ignore[import-not-found]

    return Pipeline(list(streams), what)  # type: ignore[no-any-return]


class _StampedSource:
    """A :class:`Source` driven by :class:`SamplerThread`, noting when each block left it.

    The arrival stamp (``perf_counter_ns`` on the sampler thread) is where the runner's
    sample-to-buzzer latency starts, so the time a block waits in the queues counts too.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self._arrivals: dict[tuple[str, int], int] = {}
        self._tare_request: tuple[str, float, float | None] | None = None

    def blocks(self, duration_s: float | None = None) -> Iterator[Block]:
        name_os_thread("sc-sampler")
        inner = self.source.blocks(duration_s)
        try:
            for block in inner:
                if self._tare_request is not None:
                    self._apply_tare()
                if len(block):
                    if len(self._arrivals) > 4096:  # blocks dropped as stall gaps never claim theirs
                        self._arrivals.clear()
                    self._arrivals[(block.info.name, int(block.index[0]))] = time.perf_counter_ns()
                yield block
        finally:
            close = getattr(inner, "close", None)
            if close is not None:
                close()

    def request_tare(self, name: str, offset_counts: float,
                     n_per_count: float | None = None) -> None:
        """Set a new tare (and scale, N per count, if given) between two blocks, on the sampler
        thread that owns the chips."""
        self._tare_request = (name, offset_counts, n_per_count)

    def _apply_tare(self) -> None:
        request, self._tare_request = self._tare_request, None
        sampler = getattr(self.source, "sampler", None)
        if request is not None and sampler is not None:
            sampler.set_tare(*request)

    def finish(self) -> list[Block]:
        """The sampler's final drain and whatever it had not handed over yet."""
        sampler = getattr(self.source, "sampler", None)
        return [] if sampler is None else sampler.finish()  # type: ignore[no-any-return]

    def arrival_ns(self, block: Block) -> int | None:
        if not len(block):
            return None
        return self._arrivals.pop((block.info.name, int(block.index[0])), None)


class _Ended:
    """What :meth:`BlockPump.get` returns after the source's last block (``error``: why it
    ended early)."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class BlockPump:
    """A source on the sampler thread; the engine polls its blocks between other work."""

    def __init__(self, source: Source) -> None:
        self.stamped = _StampedSource(source)
        # The blocks of one pacing step of the source's sampler reach the engine together.
        pacing = getattr(source, "sampler", None)
        self._sampler = SamplerThread(self.stamped,  # type: ignore[arg-type]
                                      pacing=pacing if isinstance(pacing, Sampler) else None)

    def start(self) -> None:
        self._sampler.start()

    def get_batch(self, timeout_s: float, limit: int) -> list[Block] | _Ended:
        """The blocks waiting (at most ``limit``; [] when none came within ``timeout_s``), or
        the end marker once every block before it has been taken."""
        try:
            blocks = self._sampler.poll_batch(timeout_s, limit)
        except Exception as error:  # noqa: BLE001 - the engine decides what it means
            return _Ended(error)
        if not blocks and self._sampler.ended:
            return _Ended(None)
        return blocks

    def get(self, timeout_s: float) -> Block | _Ended | None:
        """The next block, the end marker, or None when nothing came within ``timeout_s``."""
        try:
            block = self._sampler.poll(timeout_s)
        except Exception as error:  # noqa: BLE001 - the engine decides what it means
            return _Ended(error)
        if block is None and self._sampler.ended:
            return _Ended(None)
        return block

    def drain(self, deadline_s: float) -> Iterator[Block]:
        """Stop the sampler and yield its last blocks (the final drain) for ``deadline_s`` at most."""
        self._sampler.stop()
        end_s = time.monotonic() + deadline_s
        while (left_s := end_s - time.monotonic()) > 0:
            item = self.get(left_s)
            if item is None or isinstance(item, _Ended):
                break
            yield item

    def halt(self) -> None:
        self._sampler.stop()
        with contextlib.suppress(RuntimeError):  # never started: the start-up failed before
            self._sampler.join(timeout=0.2)


class Daemon:
    """``spinecoach daemon``: build with the backend, configuration and socket path, then :meth:`run`.

    ``open_source`` makes the backend's source and ``pipeline_factory`` the measurement
    pipeline (tests pass fakes); ``haptics`` is the buzzer to
    use (None: chosen by backend and configuration, see :meth:`_open_haptics`); ``store``:
    record sessions (default: on the ``hardware`` backend only, so simulated sessions stay out
    of the athlete's history).

    Calibration (the coach's ``tare`` and ``calibrate`` steps, between sets only): the load
    cell's tare and known-weight scale go to the sampler, which scales every later block with
    them; the trunk IMU's zero pose (mounting alignment, gyro bias) and its accelerometer
    calibration (offset and scale from one still pose per face of a box, step ``imu_pose``)
    go on the session's stream table, which the measurement pipeline applies, and the
    session restarts on them like after a tare. All are stored in the state directory (see
    :mod:`spinecoach.rig_calibration`) and taken up again at start.
    A band profile is captured from the session's full-rate samples between the coach's start
    and finish (see :mod:`spinecoach.band_profile`) and stored alongside. The steps themselves
    are :class:`~spinecoach.calibration_steps.RigCalibrator`'s, shared with the standalone coach.
    """

    def __init__(
        self,
        backend: Backend,
        config: Config,
        socket_path: Path,
        *,
        notifier: Notifier | None = None,
        open_source: SourceOpener | None = None,
        haptics: Any = None,
        store: bool | None = None,
        say: Say = _print_line,
        pipeline_factory: PipelineFactory | None = None,
    ) -> None:
        self.backend = backend
        self.config = config
        self.socket_path = socket_path
        self.notifier = notifier or Notifier()
        handover_s = float(config.get("device", "handover_s"))
        self._open_source = open_source or functools.partial(open_daemon_source,
                                                             handover_s=handover_s)
        self.haptics = haptics
        self._store_wanted = backend.kind == "hardware" if store is None else store
        self._say = say
        self._pipeline_factory = pipeline_factory or measurement_pipeline
        self._failed = False
        self._stopping = threading.Event()
        self.ready = threading.Event()
        self.server: HubServer | None = None
        self.store: Store | None = None
        self.session: HubSession | None = None
        self._library: Library | None = None
        self._source: Source | None = None
        self._pump: BlockPump | None = None
        self._problems: list[str] = []
        #: Messages of processed blocks not yet broadcast (see :meth:`_loop`).
        self._processed: list[Message] = []
        self._choice: SessionChoice | None = None
        self._progress_s = time.monotonic()
        self._last_ping_s = -1e9
        self._stalled = False
        self._retry_at_s = 0.0
        self._degraded_reason = ""
        #: The stored calibration and the coach's calibration steps (shared with the
        #: standalone coach and ``record``).
        self.calibrator = RigCalibrator(calibration_path(config.state_dir(), backend.kind), say)
        #: Sample-to-buzzer summaries of the sessions run (one line each), for the journal.
        self.latency_lines: list[str] = []

    @property
    def calibration(self) -> CalibrationRecord:
        """Everything calibrated (the stored record, updated by the coach's steps)."""
        return self.calibrator.record

    @property
    def alignment(self) -> Alignment | None:
        """The trunk IMU's mounting alignment and gyro bias from the zero pose (or stored)."""
        return self.calibrator.alignment

    # --- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the daemon to finish (thread-safe; what SIGTERM does)."""
        self._stopping.set()

    def run(self) -> int:
        """Serve until stopped; returns the exit status (0). Raises for start-up errors."""
        previous = self._install_signals()
        # The engine waits for the GIL whenever the sampler thread computes; the default 5 ms
        # switch interval would add up to that to every cue's latency.
        switch_s = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_S)
        try:
            self._start()
            self._loop()
        except BaseException:
            self._failed = True  # nothing more goes through the engine that just failed
            raise
        finally:
            self._shutdown()
            sys.setswitchinterval(switch_s)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda *_: self._stopping.set())
        return previous

    def _start(self) -> None:
        self._library = load_library(self.config.exercises_dir())
        self.server = HubServer(bind_hub_socket(self.socket_path), self.socket_path,
                                on_log=self._say)
        self.server.serve_queries(self._store_queries().answer, FEATURES)
        # The greeting before the first coach can attach (one retrying against a restarting
        # daemon attaches the moment the loop runs): every coach starts from a hello.
        self.server.set_hello(Hello(_version(), str(self.backend)))
        self.server.start()
        source = self._acquire_source()  # first: no I2C bus at all ends the start here
        self.calibrator.load()
        if self._store_wanted:
            from spinecoach.engine.session import open_store

            self.store = open_store(self.config, self._problems.append)
        if self.haptics is None:
            self.haptics = self._open_haptics()
        if source is not None:
            self._begin(source)
        self.notifier.ready(self._status())
        self.ready.set()
        self._say(f"ready: {self._status()}")

    def _open_haptics(self) -> Any:
        """The buzzer: mock pins off the hardware backend; on it, the GPIO pin, or none with a
        line saying so (a machine without GPIO still coaches on screen)."""
        if not self.config.get("coaching", "haptics"):
            self._say("haptics off (coaching.haptics = false): cues on screen only")
            return None
        from spinecoach.drivers.buzzer import Buzzer, BuzzerUnavailable
        from spinecoach.engine.sources import make_haptics

        if self.backend.kind != "hardware":
            return make_haptics(self.backend, self.config)
        with warnings.catch_warnings():
            # gpiozero warns for every pin library it tries before giving up; one line is enough.
            warnings.simplefilter("ignore")
            try:
                return Buzzer()
            except BuzzerUnavailable as error:
                self._say(f"running without haptics: {error}")
                return None

    def _open_sensors(self) -> None:
        """Start the source and a session on it, or enter the degraded mode (see module doc)."""
        source = self._acquire_source()
        if source is not None:
            self._begin(source)

    def _acquire_source(self) -> Source | None:
        """The started source; None when no sensor answered (degraded). Raises when no bus."""
        try:
            source = self._open_source(self.backend)
            start = getattr(source, "start", None)
            if start is not None:
                start()  # the chips: the stream table is final after this
        except NoBusError as error:
            # I2C is not enabled: a restart cannot fix that, so EX_CONFIG (no systemd restart).
            raise ConfigError(str(error)) from None
        except SensorError as error:
            if self.backend.kind != "hardware":
                raise
            self._degrade(str(error))
            return None
        for note in getattr(source, "notes", []):
            self._say(f"sensor note: {note}")
        return source

    def _begin(self, source: Source) -> None:
        self._source = source
        self._pump = BlockPump(source)
        # Stored load-cell models and new tares go to the sampler thread that owns the chips.
        owns_chips = getattr(source, "sampler", None) is not None
        self.calibrator.begin(source, self._pump.stamped.request_tare if owns_chips
                              else None, self._restart_session)
        self.session = self._new_session(source)
        assert self.server is not None
        self.server.set_notice(None)
        self.server.set_hello(self.session.hello())
        self.server.broadcast(self.session.start())
        self._pump.start()
        self._progress_s = time.monotonic()
        if self._degraded_reason:
            self._degraded_reason = ""
            self._say(f"sensors found: {self._status()}")
            self.notifier.status(self._status())

    def _degrade(self, reason: str) -> None:
        first = not self._degraded_reason
        self._degraded_reason = reason
        self._retry_at_s = time.monotonic() + RETRY_SENSORS_S
        if not first:
            return
        self._say(f"degraded: {reason}; retrying every {RETRY_SENSORS_S:g} s")
        missing = {name: SensorStatus("missing", 0.0, 0) for name in RIG_STREAMS}
        choice = self._session_choice(None)
        notice = Event(0.0, "cue", f"no sensors: {reason}", "", {"rule": "sensors"})
        assert self.server is not None
        self.server.set_notice(notice)
        self.server.broadcast([State(athlete=choice.athlete, sensors=missing,
                                     mode=choice.mode),  # type: ignore[arg-type]
                               notice])
        if self.ready.is_set():
            self.notifier.status(self._status())

    def _session_choice(self, source: Source | None) -> SessionChoice:
        """What the session runs: a coach's earlier choice, else the scenario's or recording's."""
        if self._choice is not None and self.backend.kind == "hardware":
            return self._choice
        exercise, protocol = "", ""
        if self.backend.kind == "sim":
            from spinecoach.engine.session import scenario_defaults

            defaults = scenario_defaults(self.backend.target)
            exercise, protocol = defaults.exercise, defaults.protocol
        elif source is not None:
            exercise = str(source.meta.get("exercise") or "")
            protocol = str(source.meta.get("protocol") or "")
        if self._library is not None and exercise not in self._library:
            exercise, protocol = "", ""
        self._choice = SessionChoice(
            athlete=str(self.config.get("device", "athlete")), exercise=exercise,
            protocol=protocol, mode=str(self.config.get("coaching", "mode")),
        )
        return self._choice

    def _new_session(self, source: Source) -> HubSession:
        session = HubSession(
            list(source.streams), str(self.backend), self._session_choice(source),
            library=self._library, autostart=self.backend.kind != "hardware", store=self.store,
            haptics=self.haptics, problems=self._problems, pipeline_factory=self._pipeline_factory,
            imu_calibration=self.calibrator.imu_calibrations(source.streams),
        )
        self.calibrator.attach(session)
        return session

    def _status(self) -> str:
        if self._degraded_reason:
            return f"degraded: {self._degraded_reason}; socket {self.socket_path}"
        streams = describe_streams(self._source.streams) if self._source is not None else "-"
        return f"{self.backend}: {streams}; socket {self.socket_path}"

    # --- the engine loop ---------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._carry_out_commands()
            pump = self._pump
            if pump is None:
                self._progress_s = time.monotonic()  # degraded: the retry loop is the progress
                if time.monotonic() >= self._retry_at_s:
                    self._open_sensors()
                self._stopping.wait(TICK_S)
            else:
                batch = pump.get_batch(TICK_S, BATCH_BLOCKS)
                if isinstance(batch, _Ended):
                    self._source_ended(batch.error)
                else:
                    # The blocks already waiting are processed before their messages go out:
                    # one send per batch, and no other thread competing with the engine for
                    # the interpreter while it works through the batch (a cue's latency).
                    for block in batch:
                        self._process(block, pump.stamped.arrival_ns(block))
                    self._send_processed()
            self._watchdog()

    def _process(self, block: Block, arrival_ns: int | None) -> None:
        if block.info.kind == "force" and self._rescaled(block.info):
            # The first block on a new load-cell scale (a tare came in force on the sampler
            # thread): the blocks queued before it were closed on the old scale and went to the
            # old session; this one starts the new session.
            self._send_processed()
            self._restart_session()
        assert self.session is not None and self.server is not None
        messages = self.session.process(block, arrival_ns)
        self._processed.extend(messages)
        self._progress_s = time.monotonic()
        self.calibrator.note(messages)
        self.calibrator.observe(block)

    def _rescaled(self, info: StreamInfo) -> bool:
        """Whether a force block's stream entry differs from the session's (a new tare or scale)."""
        assert self.session is not None
        known = self.session.stream(info.name)
        return known is not None and info is not known and info != known

    def _send_processed(self) -> None:
        """Broadcast the messages of the blocks processed since the last call."""
        if self._processed:
            assert self.server is not None
            messages, self._processed = self._processed, []
            self.server.broadcast(messages)

    def _restart_session(self) -> None:
        """A new session on the source's current stream table (after a tare)."""
        assert self.server is not None and self._source is not None
        self._close_session()
        self.session = self._new_session(self._source)
        self.server.broadcast(self.session.start())

    def _carry_out_commands(self) -> None:
        assert self.server is not None
        while True:
            try:
                client_id, command = self.server.commands.get_nowait()
            except queue.Empty:
                return
            if self.session is None:
                answer: list[Message] = [Ack(command.cmd, False, self._refusal(command))]
            elif command.cmd in ("tare", "calibrate"):
                exercise = self._choice.exercise if self._choice is not None else ""
                answer = [self.calibrator.handle(command, exercise)]
            else:
                answer = self.session.handle(command)
            self.server.send_to(client_id, [m for m in answer if isinstance(m, Ack)])
            self.server.broadcast([m for m in answer if not isinstance(m, Ack)])
            self.calibrator.note(answer)  # stop_set: calibrating may follow at once

    def _store_queries(self) -> StoreQueries:
        """The answers to coaches' requests: the state directory's store (read-only, on the
        hub's query thread), the library, and the band profiles in the calibration file."""
        assert self._library is not None
        path = self.calibrator.file.path
        return StoreQueries(self.config.state_dir(), self._library,
                            ProgressionSettings.from_config(self.config),
                            lambda: read_band_profiles(path))

    def _refusal(self, command: Command) -> str:
        return (f"{command.cmd.replace('_', ' ')}: no sensors ({self._degraded_reason}); "
                "check the wiring, the daemon retries by itself")

    def _close_session(self) -> None:
        """Finish the session (store it) and tell the coaches."""
        if self.session is None:
            return
        assert self.server is not None
        self.server.broadcast(self.session.finish())
        latency = getattr(self.session, "latency", None)
        if latency is not None:
            line = latency.describe()
            self.latency_lines.append(line)
            self._say(f"session ended: {line}")
        self.session = None

    def _source_ended(self, error: BaseException | None) -> None:
        self._close_session()
        self._release_source()
        if error is not None:
            if self.backend.kind != "hardware" or not isinstance(error, SensorError):
                raise error
            self._say(f"sensors failed: {error}")
            self._degrade(str(error))
            return
        # A scenario or a recording ran out: it starts again, so coaches always have a session.
        self._open_sensors()

    def _release_source(self) -> None:
        if self._pump is not None:
            self._pump.halt()
            self._pump = None
        if self._source is not None:
            with contextlib.suppress(Exception):
                self._source.close()
            self._source = None

    def _watchdog(self) -> None:
        interval_s = self.notifier.watchdog_interval_s
        now_s = time.monotonic()
        stalled = now_s - self._progress_s > PROGRESS_WINDOW_S
        if stalled != self._stalled:
            self._stalled = stalled
            line = (f"stalled: no samples for {PROGRESS_WINDOW_S:g} s; watchdog pings stop"
                    if stalled else f"running again: {self._status()}")
            self._say(line)
            self.notifier.status(line)
        if interval_s is None or stalled or now_s - self._last_ping_s < interval_s:
            return
        self._last_ping_s = now_s
        self.notifier.watchdog()

    # --- stopping ----------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Store the session, tell the coaches, release everything; the buzzer ends off."""
        self.notifier.stopping()
        if self._pump is not None and self.session is not None and not self._failed:
            for block in self._pump.drain(FINAL_DRAIN_S):
                self._process(block, None)
            self._send_processed()
        with contextlib.suppress(Exception):
            self._close_session()
        self._release_source()
        if self.server is not None:
            self.server.close()
        if self.store is not None:
            self.store.close(timeout_s=1.0)
        if self.haptics is not None and hasattr(self.haptics, "close"):
            self.haptics.close()
        self.notifier.close()
        if self.ready.is_set():
            stored = "session stored, " if self.store is not None else ""
            self._say(f"stopped: {stored}buzzer off")


def _version() -> str:
    from spinecoach import __version__

    return __version__
