"""HubSession: frames decimated by sample time, events, set bookkeeping, commands, summaries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from spinecoach.core.results import CoreEvent, HoldResult, RepResult, Tempo
from spinecoach.drivers.blocks import Block, ForceBlock, StreamInfo
from spinecoach.hub.messages import Ack, Command, Event, Frame, State, Summary
from spinecoach.hub.session import HubSession

RATE_HZ = 1000.0
INFO = StreamInfo(name="force", kind="force", rate_hz=RATE_HZ)


@dataclass
class Live:
    t_s: float
    angle_deg: float | None
    speed_dps: float | None
    force_n: float | None
    phase: str


class ScriptedMeasure:
    """Emits a scripted core event when the samples pass its time."""

    def __init__(self, events: list[CoreEvent]) -> None:
        self.events = sorted(events, key=lambda e: e.t_s)
        self.live: Live | None = None

    def process(self, block: Block) -> list[CoreEvent]:
        assert isinstance(block, ForceBlock)
        t_end = float(block.t_s[-1])
        self.live = Live(t_end, 10.0, float("nan"), float(block.force_n[-1]), "eccentric")
        due = [e for e in self.events if e.t_s <= t_end]
        self.events = self.events[len(due):]
        return due


def blocks(duration_s: float, block_n: int = 10) -> list[ForceBlock]:
    out = []
    for start in range(0, int(duration_s * RATE_HZ), block_n):
        index = np.arange(start, start + block_n, dtype=np.int64)
        out.append(ForceBlock(INFO, index, np.full(block_n, 50.0), np.ones(block_n, bool)))
    return out


REP = RepResult(start_s=0.2, end_s=0.9, rom_deg=55.0, tempo=Tempo(0.3, 0.1, 0.2, 0.1),
                peak_eccentric_speed_dps=120.0, peak_force_n=300.0)
HOLD = HoldResult(start_s=1.0, end_s=1.5, duration_s=0.5, mean_force_n=200.0)


def run(session: HubSession, duration_s: float) -> list:
    out = [session.hello(), *session.start()]
    for block in blocks(duration_s):
        out.extend(session.process(block))
    return out


def test_frames_are_decimated_to_30_hz_of_sample_time_and_non_finite_become_none() -> None:
    session = HubSession(ScriptedMeasure([]), "replay:x.screc", [INFO], autostart=True)
    out = run(session, 2.0)
    frames = [m for m in out if isinstance(m, Frame)]
    assert 58 <= len(frames) <= 61
    assert frames[0].speed_dps is None and frames[0].angle_deg == 10.0
    assert out[0].backend == "replay:x.screc" and not out[0].demo


def test_reps_and_holds_count_and_summarise() -> None:
    events = [
        CoreEvent("phase", 0.1, "eccentric"),
        CoreEvent("rep", 0.9, REP),
        CoreEvent("hold_start", 1.0),
        CoreEvent("hold_end", 1.5, HOLD),
        CoreEvent("limit", 1.6, {"angle_deg": 72.0, "limit_deg": 70.0}),
    ]
    session = HubSession(ScriptedMeasure(events), "hardware", [INFO], exercise="hip_hinge",
                         autostart=True)
    out = run(session, 2.0)
    kinds = [m.kind for m in out if isinstance(m, Event)]
    assert kinds == ["rep", "hold_start", "hold_end", "limit"]  # phases stay in the frames
    rep = next(m for m in out if isinstance(m, Event) and m.kind == "rep")
    assert rep.data["tempo"]["eccentric_s"] == 0.3 and rep.data["rom_deg"] == 55.0
    limit = next(m for m in out if isinstance(m, Event) and m.kind == "limit")
    assert limit.message == "Past the limit: 72° (limit 70°)"
    holding = [m.hold_s for m in out if isinstance(m, Frame) and 1.0 < m.t_s < 1.5]
    assert holding and holding[-1] > 0.4
    states = [m for m in out if isinstance(m, State)]
    assert states[-1].rep_no == 1 and states[-1].set_state == "running"
    assert states[-1].sensors["force"].status == "ok"

    end = session.finish()
    set_summary = next(m for m in end if isinstance(m, Summary) and m.scope == "set")
    assert set_summary.figures["reps"] == 1 and set_summary.figures["best_hold_s"] == 0.5
    assert set_summary.figures["peak_force_n"] == 300.0
    assert len(set_summary.rows) == 2
    session_summary = next(m for m in end if isinstance(m, Summary) and m.scope == "session")
    assert session_summary.figures == {"sets": 1, "reps": 1, "peak_force_n": 300.0,
                                       "best_hold_s": 0.5}
    assert [m for m in end if isinstance(m, State)][-1].set_state == "done"


def test_commands_manage_sets_and_refuse_what_does_not_apply() -> None:
    session = HubSession(ScriptedMeasure([]), "replay:x.screc", [INFO])
    assert session.start()[0].set_state == "idle"
    out = session.handle(Command("start_set"))
    assert out[0] == Ack("start_set", True, "set 1 started") and out[1].set_state == "running"
    assert session.handle(Command("start_set"))[0].ok is False
    assert session.handle(Command("select_exercise", {"name": "bridge"}))[0].ok is False
    out = session.handle(Command("stop_set"))
    assert out[0].ok and isinstance(out[1], Summary) and out[2].set_state == "rest"
    assert session.handle(Command("stop_set"))[0].ok is False
    out = session.handle(Command("select_exercise", {"name": "bridge"}))
    assert out[1].exercise == "bridge"
    assert session.handle(Command("set_mode", {"mode": "tracking"}))[1].mode == "tracking"
    assert session.handle(Command("tag_side", {"side": "left"}))[1].target["side"] == "left"
    assert session.handle(Command("select_athlete", {"name": "Kim"}))[1].athlete == "Kim"
    tare = session.handle(Command("tare"))[0]
    assert not tare.ok and "recording" in tare.message
