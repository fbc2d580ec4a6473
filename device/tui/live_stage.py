"""The standalone coach's session on live sensors: what the daemon runs, in the coach's process.

:class:`LiveStage` is the in-process feed's :class:`~spinecoach.tui.inprocess.Stage` on the
sensors or the simulated rig: a :class:`~spinecoach.hub.session.HubSession` made with the stored
calibration in force, and the coach's ``tare`` and ``calibrate`` steps carried out by the same
:class:`~spinecoach.calibration_steps.RigCalibrator` the daemon uses. The feed's worker thread
both reads the sampler and handles commands, so a new tare is set on the sampler at once (between
two blocks) and the session restarts on it there and then, as the daemon's does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from spinecoach.calibration_steps import RigCalibrator
from spinecoach.drivers.blocks import Block, StreamInfo
from spinecoach.hub.messages import Command, Hello, Message
from spinecoach.hub.session import HubSession, SessionChoice

#: Protocol additions the in-process stage serves like a daemon (the coach's band name).
STAGE_FEATURES: tuple[str, ...] = ("band_profile",)

#: Makes a session on a stream table with the IMU calibrations in force (by stream name).
SessionMaker = Callable[[list[StreamInfo], dict[str, Any]], HubSession]


class LiveStage:
    """A session on ``source`` (a started sampler source: ``streams``, ``sampler``; no block
    taken yet) with the calibration of ``calibrator`` (loaded) in force; ``choice`` is what the
    sessions run (shared by every restart, so a chosen exercise stays chosen)."""

    def __init__(self, source: Any, calibrator: RigCalibrator, choice: SessionChoice,
                 make_session: SessionMaker) -> None:
        self._source = source
        self._calibrator = calibrator
        self._choice = choice
        self._make_session = make_session
        sampler = getattr(source, "sampler", None)
        calibrator.begin(source, self._tare if sampler is not None else None, self._restart_soon)
        self._restart_due = False  # the stored tare is in force before the first session
        self.session = self._new_session()

    def hello(self) -> Hello:
        return replace(self.session.hello(), features=STAGE_FEATURES)

    def start(self) -> list[Message]:
        return self.session.start()

    def process(self, block: Block) -> list[Message]:
        messages = self.session.process(block)
        self._calibrator.note(messages)
        self._calibrator.observe(block)
        return messages

    def handle(self, command: Command) -> list[Message]:
        if command.cmd in ("tare", "calibrate"):
            out: list[Message] = [self._calibrator.handle(command, self._choice.exercise)]
            if self._restart_due:
                out += self._restart()
        else:
            out = self.session.handle(command)
        self._calibrator.note(out)
        return out

    def finish(self) -> list[Message]:
        return self.session.finish()

    def _new_session(self) -> HubSession:
        streams = list(self._source.streams)
        session = self._make_session(streams, self._calibrator.imu_calibrations(streams))
        self._calibrator.attach(session)
        return session

    def _tare(self, name: str, offset_counts: float, n_per_count: float | None) -> None:
        self._source.sampler.set_tare(name, offset_counts, n_per_count)
        self._restart_due = True

    def _restart_soon(self) -> None:
        self._restart_due = True

    def _restart(self) -> list[Message]:
        """The session finished (stored) and a new one started on the calibration now in force."""
        self._restart_due = False
        out = self.session.finish()
        self.session = self._new_session()
        return [*out, *self.session.start()]
