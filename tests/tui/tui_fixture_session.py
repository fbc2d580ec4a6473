"""A fixed, deterministic coach session for Pilot and snapshot tests (no clock, no randomness).

Three hip-hinge reps on a band at tempo 3-1-1-1, sampled as 30 Hz hub frames, with the events,
states and summaries a daemon would send, and a small catalogue of stored sessions.
"""

from __future__ import annotations

import time

from spinecoach.band_profile import BandProfile
from spinecoach.hub.messages import Event, Frame, Hello, SensorStatus, State, Summary
from spinecoach.tui.catalogue import FixedCatalogue, Progress, ProgressPoint, SessionRow
from spinecoach.tui.feed import Posted

FRAME_HZ = 30.0
TEMPO_S = (3.0, 1.0, 1.0, 1.0)
ROM_DEG = 60.0
REPS = 3
START_S = 1.0

SENSORS = {
    "trunk": SensorStatus("ok", 1000.0, 0),
    "force": SensorStatus("degraded", 318.0, 12),
}


def _state(rep_no: int, set_state: str = "running") -> State:
    return State(
        athlete="Sam",
        exercise="hip_hinge",
        protocol="tempo_set",
        set_state=set_state,  # type: ignore[arg-type]
        set_no=2,
        rep_no=rep_no,
        target={"reps": 8, "tempo_s": list(TEMPO_S), "hold_s": 4, "side": "left"},
        sensors=SENSORS,
        mode="training",
    )


def _band_force_n(angle_deg: float, rep: int) -> float:
    """Band force rising with trunk flexion, a little weaker each rep (fatigue)."""
    return 120.0 + 4.0 * angle_deg - 8.0 * rep


def _rep_frames(rep: int, t0_s: float) -> tuple[list[Frame], float]:
    """Frames of one rep starting at ``t0_s``; returns the frames and the end time."""
    frames: list[Frame] = []
    # The second rep's lowering is too fast (2 s instead of 3 s), for the cue.
    ecc_s = 2.0 if rep == 1 else TEMPO_S[0]
    segments = (
        ("eccentric", ecc_s, 0.0, ROM_DEG),
        ("still", TEMPO_S[1], ROM_DEG, ROM_DEG),
        ("concentric", TEMPO_S[2], ROM_DEG, 0.0),
        ("still", TEMPO_S[3], 0.0, 0.0),
    )
    t = t0_s
    for phase, duration, a0, a1 in segments:
        n = round(duration * FRAME_HZ)
        speed = (a1 - a0) / duration
        for i in range(n):
            angle = a0 + (a1 - a0) * i / n
            frames.append(
                Frame(
                    t_s=round(t + i / FRAME_HZ, 4),
                    angle_deg=round(angle, 2),
                    speed_dps=round(speed, 1) if phase != "still" else 0.0,
                    force_n=round(_band_force_n(angle, rep), 1),
                    phase=phase,  # type: ignore[arg-type]
                )
            )
        t += duration
    return frames, t


def _rep_event(rep: int, start_s: float, end_s: float) -> Event:
    ecc_s = 2.0 if rep == 1 else TEMPO_S[0]
    return Event(
        t_s=end_s,
        kind="rep",
        data={
            "start_s": start_s,
            "end_s": end_s,
            "rom_deg": ROM_DEG,
            "tempo": {
                "eccentric_s": ecc_s,
                "pause_lengthened_s": TEMPO_S[1],
                "concentric_s": TEMPO_S[2],
                "pause_shortened_s": TEMPO_S[3],
            },
            "peak_eccentric_speed_dps": round(ROM_DEG / ecc_s * 1.3, 1),
            "mean_eccentric_speed_dps": round(ROM_DEG / ecc_s, 1),
            "peak_concentric_speed_dps": 78.0,
            "mean_concentric_speed_dps": 60.0,
            "peak_force_n": _band_force_n(ROM_DEG, rep),
            "mean_force_n": _band_force_n(ROM_DEG / 2, rep),
            "angle_at_peak_force_deg": ROM_DEG,
        },
    )


def set_summary() -> Summary:
    return Summary(
        scope="set",
        set_no=1,
        exercise="hip_hinge",
        figures={
            "reps": 8,
            "mean_rom_deg": 58.5,
            "mean_eccentric_s": 2.9,
            "peak_force_n": 372.0,
            "velocity_loss_pct": 12.0,
            "band_stiffness_n_per_deg": 4.1,
        },
        rows=[
            {"rom_deg": 58.0 + i * 0.5, "eccentric_s": 3.0 - i * 0.05, "peak_force_n": 372.0 - 3 * i}
            for i in range(8)
        ],
    )


def session_summary() -> Summary:
    return Summary(
        scope="session",
        set_no=0,
        exercise="hip_hinge",
        figures={"sets": 1, "reps": 8, "best_hold_s": None, "peak_force_n": 372.0},
    )


def session_messages(reps: int = REPS, demo: bool = False) -> list[Posted]:
    """The whole fixed session, in the order a daemon sends it."""
    out: list[Posted] = [
        Hello(daemon="0.1.0", backend="replay:demo.screc" if demo else "hardware", demo=demo),
        set_summary(),
        session_summary(),
        _state(0),
    ]
    t = START_S
    for i in range(round(START_S * FRAME_HZ)):
        out.append(Frame(t_s=round(i / FRAME_HZ, 4), angle_deg=0.0, speed_dps=0.0,
                         force_n=120.0, phase="still"))
    for rep in range(reps):
        frames, end = _rep_frames(rep, t)
        out.extend(frames)
        out.append(_rep_event(rep, t, end))
        if rep == 1:
            out.append(Event(t_s=t + 2.0, kind="cue", message="Lower slower: 2.0 s, aim for 3 s",
                             pattern="warning", data={"rule": "eccentric_too_fast"}))
        out.append(_state(rep + 1))
        t = end
    out.append(Event(t_s=t, kind="hold_end", data={"duration_s": 4.2, "end_reason": "released"}))
    out.append(Event(t_s=t, kind="limit", data={"angle_deg": 62.0, "limit_deg": 60.0}))
    out.append(Event(t_s=t + 0.1, kind="cue", message="Past the limit: 62 deg (limit 60)",
                     pattern="warning", data={"rule": "angle_limit"}))
    # The athlete is mid-way through lowering the next rep.
    frames, _ = _rep_frames(reps, t)
    out.extend(frames[:45])
    return out


def catalogue() -> FixedCatalogue:
    return FixedCatalogue(
        exercise_names=["hip_hinge", "back_extension_hold", "bridge", "bird_dog"],
        protocol_names=["tempo_set", "isometric_holds", "max_pull", "free"],
        athlete_names=["Sam", "Alex"],
        sessions=[
            SessionRow("2026-11-20 18:05", "hip_hinge", "tempo_set", 3, 24, "372 N", "complete"),
            SessionRow("2026-11-18 18:10", "back_extension_hold", "isometric_holds", 5, 5,
                       "4.4 s", "complete"),
            SessionRow("2026-11-16 17:55", "hip_hinge", "tempo_set", 2, 13, "351 N",
                       "interrupted"),
        ],
        series=[
            Progress(
                "hip_hinge", "peak force", "N",
                tuple(ProgressPoint(f"S{i + 1}", 330.0 + 7 * i) for i in range(6)),
                "Next: slow the lowering to 4 s; force and control held for two sessions.",
            ),
            Progress(
                "back_extension_hold", "best hold", "s",
                tuple(ProgressPoint(f"S{i + 1}", 3.0 + 0.3 * i) for i in range(5)),
                "Next: 5 × 5 s holds.",
            ),
        ],
    )


async def wait_drawn(pilot, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Wait (polling, so a loaded machine only makes it slower) until the coach's screen shows
    its current model, then let Textual finish the refresh."""
    deadline = time.monotonic() + timeout_s
    await pilot.pause()
    while not pilot.app.up_to_date:
        assert time.monotonic() < deadline, "the coach never drew its screen"
        await pilot.pause(0.02)
    await pilot.pause()


def band_profile(exercise: str = "hip_hinge", name: str = "red band") -> BandProfile:
    """The fixture band's own curve, captured with nobody pulling harder than the band: the
    athlete's reps draw above it (their force is the band's plus their effort)."""
    edges = [2.0 * k for k in range(31)]
    concentric = tuple((edge, round(100.0 + 3.5 * (edge + 1.0), 1)) for edge in edges)
    eccentric = tuple((edge, round(96.0 + 3.5 * (edge + 1.0), 1)) for edge in edges)
    return BandProfile(name, exercise, "2026-11-21T17:40:00+00:00", (0.3, 61.2), 3.5,
                       concentric, eccentric)
