"""HubSession: frames by sample time, core events and cues, sets through the engine, commands."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from spinecoach.core.results import CoreEvent, HoldResult, LoweringResult, RepResult, Tempo
from spinecoach.drivers.blocks import ForceBlock, StreamInfo
from spinecoach.engine.library import Exercise, load_library
from spinecoach.hub.messages import Ack, Command, Event, Frame, Hello, State, Summary
from spinecoach.hub.session import HubSession, SessionChoice

RATE_HZ = 1000.0
INFO = StreamInfo(name="force", kind="force", rate_hz=RATE_HZ)
LIBRARY = load_library()


def rep(start_s: float, end_s: float, eccentric_s: float) -> RepResult:
    return RepResult(start_s=start_s, end_s=end_s, rom_deg=55.0,
                     tempo=Tempo(eccentric_s, 0.5, 1.0, 0.5), peak_eccentric_speed_dps=60.0,
                     mean_concentric_speed_dps=50.0, peak_force_n=300.0)


class ScriptedPipeline:
    """Stands in for the measurement pipeline: scripted core events at their sample times."""

    made: ClassVar[list[ScriptedPipeline]] = []

    def __init__(self, streams: list[StreamInfo], exercise: Exercise | None,
                 events: list[CoreEvent]) -> None:
        self.exercise = exercise
        self.events = sorted(events, key=lambda e: e.t_s)
        self._live: dict[str, Any] = {"t_s": 0.0, "angle_deg": None, "omega_dps": None,
                                      "force_n": None, "phase": "still"}
        ScriptedPipeline.made.append(self)

    def feed_imu(self, name: str, index: Any, gyro_dps: Any, accel_g: Any, valid: Any) -> list:
        raise AssertionError("no IMU in these tests")

    def feed_force(self, name: str, index: Any, force_n: Any, valid: Any) -> list[CoreEvent]:
        t_end = float(index[-1]) / RATE_HZ
        self._live.update(t_s=t_end, angle_deg=30.0, omega_dps=float("nan"),
                          force_n=float(force_n[-1]), phase="eccentric")
        due = [e for e in self.events if e.t_s <= t_end]
        self.events = self.events[len(due):]
        return due

    def finish(self) -> None:
        return None

    @property
    def live(self) -> dict[str, Any]:
        return dict(self._live)


def factories(events: list[CoreEvent]) -> dict[str, Any]:
    """HubSession's pipeline factories (per set from the exercise, and measure-only)."""
    ScriptedPipeline.made = []
    return {
        "pipeline_factory": lambda streams, exercise: ScriptedPipeline(streams, exercise,
                                                                       list(events)),
        "bare_pipeline": lambda streams: ScriptedPipeline(streams, None, list(events)),
    }


def blocks(start_s: float, end_s: float, block_n: int = 10) -> list[ForceBlock]:
    out = []
    for start in range(int(start_s * RATE_HZ), int(end_s * RATE_HZ), block_n):
        index = np.arange(start, start + block_n, dtype=np.int64)
        out.append(ForceBlock(INFO, index, np.full(block_n, 50.0), np.ones(block_n, bool)))
    return out


def run(session: HubSession, start_s: float, end_s: float) -> list:
    out: list = []
    for block in blocks(start_s, end_s):
        out.extend(session.process(block))
    return out


def tempo_session(events: list[CoreEvent], **kwargs: Any) -> HubSession:
    choice = SessionChoice(athlete="Sam", exercise="banded_good_morning")
    return HubSession([INFO], "replay:x.screc", choice, library=LIBRARY,
                      **factories(events), **kwargs)


def test_a_tempo_set_runs_through_the_engine_with_cues_reps_and_a_summary() -> None:
    events = [
        CoreEvent("phase", 0.1, "eccentric"),
        CoreEvent("phase", 0.7, "still"),  # a 0.6 s lowering: far too fast for 3 s
        CoreEvent("eccentric_end", 0.7, LoweringResult(0.1, 0.7, 0.6, 55.0, True)),
        CoreEvent("rep", 2.0, rep(0.1, 2.0, eccentric_s=0.6)),
        CoreEvent("rep", 5.0, rep(2.0, 5.0, eccentric_s=3.0)),
        CoreEvent("hold_start", 5.5),
        CoreEvent("hold_end", 6.0, HoldResult(5.5, 6.0, 0.5)),
    ]
    session = tempo_session(events, autostart=True)
    assert isinstance(session.hello(), Hello)
    first = session.start()[0]
    assert first.exercise == "banded_good_morning" and first.protocol == "tempo_set"
    assert first.target["tempo_s"] == [3.0, 1.0, 1.0, 0.0] and first.target["reps"] >= 1
    out = run(session, 0.0, 6.5)

    assert [p.exercise.id for p in ScriptedPipeline.made if p.exercise is not None] == [
        "banded_good_morning"  # one set, its pipeline made from the exercise
    ]
    states = [m for m in out if isinstance(m, State)]
    assert states[0].set_state == "running" and states[0].set_no == 1
    assert states[-1].rep_no == 2 and states[-1].sensors["force"].status == "ok"
    reps = [m for m in out if isinstance(m, Event) and m.kind == "rep"]
    assert [r.data["tempo"]["eccentric_s"] for r in reps] == [0.6, 3.0]
    cues = [m for m in out if isinstance(m, Event) and m.kind == "cue"]
    too_fast = [c for c in cues if c.data["rule"] == "eccentric_too_fast"]
    assert too_fast and too_fast[0].pattern == "warning" and "Lower slower" in too_fast[0].message
    assert any(c.data["rule"] == "metronome" for c in cues)  # the tempo metronome ticks
    assert not any(isinstance(m, Event) and m.kind == "phase" for m in out)
    holding = [m.hold_s for m in out if isinstance(m, Frame) and 5.5 < m.t_s < 6.0]
    assert holding and 0.4 < holding[-1] <= 0.5
    frames = [m for m in out if isinstance(m, Frame)]
    assert 190 <= len(frames) <= 196  # 6.5 s at 30 Hz
    assert frames[-1].speed_dps is None and frames[-1].force_n == 50.0

    end = session.finish()
    set_summary = next(m for m in end if isinstance(m, Summary) and m.scope == "set")
    assert set_summary.figures["reps"] == 2 and set_summary.figures["status"] == "stopped"
    assert set_summary.figures["mean_rom_deg"] == pytest.approx(55.0)
    assert len(set_summary.rows) == 2  # per-rep metrics
    session_summary = next(m for m in end if isinstance(m, Summary) and m.scope == "session")
    assert session_summary.figures["sets"] == 1 and session_summary.figures["reps"] == 2
    assert [m for m in end if isinstance(m, State)][-1].set_state == "done"


def test_tracking_mode_silences_the_buzzer_patterns() -> None:
    events = [CoreEvent("phase", 0.1, "eccentric"), CoreEvent("phase", 0.7, "still"),
              CoreEvent("eccentric_end", 0.7, LoweringResult(0.1, 0.7, 0.6, 55.0, True)),
              CoreEvent("rep", 2.0, rep(0.1, 2.0, eccentric_s=0.6))]
    session = tempo_session(events, autostart=True)
    session.start()
    ack = session.handle(Command("set_mode", {"mode": "tracking"}))
    assert ack[0] == Ack("set_mode", True, "tracking mode") and ack[1].mode == "tracking"
    out = run(session, 0.0, 3.0)
    cues = [m for m in out if isinstance(m, Event) and m.kind == "cue"]
    assert cues and all(c.pattern == "" for c in cues)


def test_without_an_exercise_the_bare_pipeline_measures() -> None:
    events = [CoreEvent("rep", 1.0, rep(0.1, 1.0, eccentric_s=0.4))]
    session = HubSession([INFO], "replay:y.csv", SessionChoice(), library=LIBRARY,
                         **factories(events), autostart=True)
    assert session.start()[0].protocol == "free"
    out = run(session, 0.0, 1.5)
    assert ScriptedPipeline.made[0].exercise is None
    assert [m.kind for m in out if isinstance(m, Event)] == ["rep"]
    assert [m for m in out if isinstance(m, State)][-1].rep_no == 1
    assert not any(m.kind == "cue" for m in out if isinstance(m, Event))


def test_commands_start_stop_and_choose() -> None:
    session = tempo_session([], autostart=False)
    assert session.start()[0].set_state == "idle"
    out = run(session, 0.0, 0.5)  # idle: the display still moves
    assert any(isinstance(m, Frame) for m in out)
    assert all(not isinstance(m, State) or m.set_state == "idle" for m in out)

    refused = session.handle(Command("select_exercise", {"name": "no_such_thing"}))[0]
    assert not refused.ok and "no_such_thing" in refused.message
    out = session.handle(Command("select_exercise", {"name": "back_extension_hold"}))
    assert out[0].ok and out[1].protocol == "isometric_holds" and out[1].target["hold_s"] > 0
    out = session.handle(Command("select_protocol", {"name": "free"}))
    assert out[0].ok and out[1].protocol == "free"
    assert not session.handle(Command("select_protocol", {"name": "juggling"}))[0].ok

    assert session.handle(Command("start_set"))[0].ok
    assert not session.handle(Command("start_set"))[0].ok
    assert not session.handle(Command("select_exercise", {"name": "bridge"}))[0].ok
    out = run(session, 0.5, 1.0)
    assert next(m for m in out if isinstance(m, State)).set_state == "running"
    out = session.handle(Command("stop_set"))
    assert out[0] == Ack("stop_set", True, "stopped")
    assert any(isinstance(m, Summary) and m.scope == "set" for m in out)
    assert [m for m in out if isinstance(m, State)][-1].set_state == "done"
    assert not session.handle(Command("stop_set"))[0].ok

    out = session.handle(Command("tag_side", {"side": "left"}))
    assert out[1].target["side"] == "left"
    assert session.handle(Command("select_athlete", {"name": "Kim"}))[1].athlete == "Kim"
    tare = session.handle(Command("tare"))[0]
    assert not tare.ok and "recording" in tare.message
