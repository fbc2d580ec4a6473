"""Scenarios: scripted sessions of the exercises in DESIGN.md, with their ground truth.

A :class:`Scenario` bundles the rig (the signals the chip simulators sample), the streams it
has, the exercise and protocol ids of the engine's library (``device/exercises/*.toml``,
``device/engine/protocols.py``), a seed, and the ground truth derived from the same scripts.
``build_scenario(name)`` builds one; ``SCENARIOS`` maps names to builders and
``DESCRIPTIONS`` to one-line descriptions (``spinecoach scenarios``). Building is cheap (tens
of milliseconds): signals are evaluated lazily when sampled.

Geometry (m) shared by the hinge scenarios: the hips are the pivot, 0.95 m above the floor
standing; the trunk IMU sits 0.45 m up the spine and 0.10 m posterior of the spine's axis;
bands and chains attach at the shoulders, 0.55 m up the spine. Jitter of ±5 % on phase
durations and a few degrees on ranges (seeded) makes reps differ as real reps do.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from spinecoach.drivers.sim.motion import Channel, Constant, Scaled, Script, Sum, Wobble
from spinecoach.drivers.sim.rig import (
    Band,
    BodyMotion,
    Chain,
    Contraction,
    FloatArray,
    ForceSignal,
    ForceSource,
    ImuMount,
    ImuSignal,
    IsometricPulls,
    LoadCellErrorModel,
    Rig,
    Spike,
)
from spinecoach.drivers.sim.truth import (
    ANGLE_CURVE_RATE_HZ,
    AngleCurve,
    GroundTruth,
    contractions_truth,
    fatigue_index_pct,
    holds_from_script,
    reps_from_script,
    shifts_from_script,
)
from spinecoach.errors import UsageError

#: Nominal output rates of the streams (Hz): IMU FIFO rate and NAU7802 conversion rate.
IMU_RATE_HZ = 1000.0
FORCE_RATE_HZ = 320.0
#: Seed used when none is given (fixtures are made with it).
DEFAULT_SEED = 1
#: Slow processes (bias walk, drift, creep) are pre-computed at least this far (s): a scenario
#: may be sampled past its script (the athlete then stands still), e.g. by a ten-minute soak.
MIN_SPAN_S = 660.0

HIP_HEIGHT_M = 0.95
TRUNK_LEVER_M = (0.45, 0.0, 0.10)
SHOULDER_ATTACH_M = (0.55, 0.0, 0.0)

#: Postural sway and physiological tremor on every angle channel (deg RMS, Hz band).
SWAY_RMS_DEG = 0.25
SWAY_BAND_HZ = (0.1, 0.8)
TREMOR_RMS_DEG = 0.004
TREMOR_BAND_HZ = (8.0, 12.0)


#: One-line description of every scenario (`spinecoach scenarios`), without building it.
DESCRIPTIONS: dict[str, str] = {
    "good_morning_tempo": "banded good morning, 8 reps at tempo 3-1-1-0, trunk IMU + band load cell",
    "chained_good_morning": "chained good morning, 6 reps at tempo 3-1-1-1, trunk IMU + chain load cell",
    "dumbbell_row_slow_eccentric": "dumbbell row, 6 reps at tempo 4-1-1-1 (slow eccentric), IMU on the implement",
    "back_extension_holds": "back extension, 5 x 4 s end-range holds with 6 s rests, chain on the load cell",
    "bridge_pelvic_shifts": "bridge held 30 s with lateral pelvic shifts, trunk + pelvis IMUs + hip band",
    "single_leg_deadlift": "single-leg deadlift, 6 reps at tempo 3-1-2-1 with frontal-plane sway",
    "sorensen_hold": "Sorensen hold: trunk horizontal ~70 s, slow fatigue sag, then the drop",
    "isometric_max_pulls": "isometric max pulls, 3 trials of 4 s, load cell at 320 SPS (RFD, impulse)",
    "repeaters_7_3": "repeaters 7 s on / 3 s off x 6 with fatigue, load cell at 320 SPS",
    "rotational_throws": "rotational medicine-ball throws, 3 each side, trunk IMU (peak rotation speed)",
}


@dataclass(frozen=True)
class Scenario:
    """One scripted session.

    ``imu_placements``: IMU streams (each at ``imu_rate_hz``); ``force_rate_hz`` is None when
    there is no load cell. ``primary_placement`` carries the exercise's primary angle.
    """

    name: str
    description: str
    duration_s: float
    exercise: str
    protocol: str
    imu_placements: tuple[str, ...]
    imu_rate_hz: float
    force_rate_hz: float | None
    seed: int
    primary_placement: str
    rig: Rig
    truth: GroundTruth

    @property
    def has_load_cell(self) -> bool:
        return self.force_rate_hz is not None

    def imu_signal(self, placement: str, *, ideal: bool = False) -> ImuSignal:
        """``t_s -> (gyro_dps (n,3), accel_g (n,3))`` in the sensor's axes."""
        return self.rig.imu_signal(placement, ideal=ideal)

    def force_signal(self, *, ideal: bool = False, spikes: Sequence[Spike] = ()) -> ForceSignal:
        """``t_s -> force_n`` of the load cell (KeyError without a load cell)."""
        return self.rig.force_signal(ideal=ideal, spikes=spikes)

    def motion(self, placement: str | None = None) -> BodyMotion:
        """The body motion carrying ``placement`` (default the primary placement)."""
        return self.rig.imus[placement or self.primary_placement].motion

    def primary_angle_deg(self, t_s: FloatArray, placement: str | None = None) -> FloatArray:
        """The exact true primary angle (deg) at ``t_s`` (flexion, or heading for throws)."""
        motion = self.motion(placement)
        channel = (
            motion.heading_deg if self.truth.primary_angle == "heading" else motion.flexion_deg
        )
        return channel.evaluate(np.asarray(t_s, dtype=np.float64)).value


# ------------------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------------------
class _Builder:
    """Seeded helpers shared by the scenario builders."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.seed = seed
        self.rig_seed = int(
            np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1)[0]
        )
        self.rng = np.random.default_rng([seed, zlib.crc32(name.encode()), 1])
        self.load_cell_errors = LoadCellErrorModel()

    def jitter(self, value: float, fraction: float = 0.05) -> float:
        """``value`` scaled by a uniform factor in 1 ± ``fraction`` (tempo variation)."""
        return float(value * (1.0 + self.rng.uniform(-fraction, fraction)))

    def spread(self, value: float, plus_minus: float) -> float:
        """``value`` ± a uniform offset (range variation)."""
        return float(value + self.rng.uniform(-plus_minus, plus_minus))

    def sway(self, what: str, rms_deg: float = SWAY_RMS_DEG) -> Channel:
        """Postural sway plus physiological tremor for the channel ``what``."""
        code = zlib.crc32(f"{self.name}/{what}".encode())
        # Few components each: every one costs two sines per sample, and three incommensurate
        # frequencies already look irregular.
        return Sum(
            (
                Wobble.seeded([self.seed, code, 1], rms_deg, SWAY_BAND_HZ, components=3),
                Wobble.seeded([self.seed, code, 2], TREMOR_RMS_DEG, TREMOR_BAND_HZ, components=2),
            )
        )

    def segment(
        self,
        placement: str,
        flexion: Channel,
        *,
        lean: Channel | None = None,
        heading: Channel | None = None,
        pivot_m: tuple[Channel, Channel, Channel] | None = None,
        lever_m: tuple[float, float, float] = TRUNK_LEVER_M,
    ) -> BodyMotion:
        """A segment whose three angles carry sway on top of the given channels."""

        def with_sway(channel: Channel | None, what: str) -> Channel:
            sway = self.sway(f"{placement}/{what}")
            return sway if channel is None else Sum((channel, sway))

        return BodyMotion(
            flexion_deg=with_sway(flexion, "flexion"),
            lean_deg=with_sway(lean, "lean"),
            heading_deg=with_sway(heading, "heading"),
            pivot_m=pivot_m or (Constant(), Constant(), Constant(HIP_HEIGHT_M)),
            lever_m=lever_m,
        )

    def scenario(
        self,
        *,
        exercise: str,
        protocol: str,
        duration_s: float,
        imus: dict[str, BodyMotion],
        primary: str,
        force: ForceSource | None = None,
        primary_angle: str = "flexion",
        tempo: str | None = None,
        eccentric_sign: int | None = None,
        fill: Callable[[GroundTruth], None] | None = None,
        angle_rate_hz: float = ANGLE_CURVE_RATE_HZ,
    ) -> Scenario:
        rig = Rig(
            seed=self.rig_seed,
            span_s=max(duration_s + 60.0, MIN_SPAN_S),
            imus={p: ImuMount(m, IMU_RATE_HZ) for p, m in imus.items()},
            force=force,
            force_rate_hz=FORCE_RATE_HZ,
            load_cell_errors=self.load_cell_errors,
        )
        angles = {
            placement: AngleCurve.sample(
                _value_fn(motion.heading_deg if primary_angle == "heading" else motion.flexion_deg),
                duration_s,
                angle_rate_hz,
            )
            for placement, motion in imus.items()
        }
        truth = GroundTruth(
            scenario=self.name,
            exercise=exercise,
            protocol=protocol,
            seed=self.seed,
            duration_s=duration_s,
            primary_placement=primary,
            primary_angle=primary_angle,
            tempo=tempo,
            eccentric_sign=eccentric_sign,
            angles=angles,
        )
        if fill is not None:
            fill(truth)
        return Scenario(
            name=self.name,
            description=DESCRIPTIONS[self.name],
            duration_s=duration_s,
            exercise=exercise,
            protocol=protocol,
            imu_placements=tuple(imus),
            imu_rate_hz=IMU_RATE_HZ,
            force_rate_hz=FORCE_RATE_HZ if force is not None else None,
            seed=self.seed,
            primary_placement=primary,
            rig=rig,
            truth=truth,
        )


def _value_fn(channel: Channel) -> Callable[[FloatArray], FloatArray]:
    return lambda t: channel.evaluate(t).value


def _angle_fn(motion: BodyMotion) -> Callable[[FloatArray], FloatArray]:
    return _value_fn(motion.flexion_deg)


# ------------------------------------------------------------------------------------------------
# The scenarios
# ------------------------------------------------------------------------------------------------
def _tempo_set(
    b: _Builder,
    *,
    start_deg: float,
    end_range_deg: float,
    spread_deg: float,
    tempo_s: tuple[float, float, float, float],
    reps: int,
    concentric_first: bool = False,
    lead_in_s: float = 3.0,
    lead_out_s: float = 3.0,
) -> Script:
    """A set of reps at tempo E-P-C-P (s) between ``start_deg`` and ``end_range_deg`` (± a
    seeded ``spread_deg`` per rep, durations ± 5 %). Hinges start with the eccentric; a row
    starts with the concentric (``concentric_first``)."""
    eccentric_s, pause_lengthened_s, concentric_s, pause_shortened_s = tempo_s
    script = Script(start_deg).pause(lead_in_s, label="start position")
    for rep in range(reps):
        away = b.spread(end_range_deg, spread_deg)
        if concentric_first:
            script.move(away, b.jitter(concentric_s), phase="concentric", rep=rep)
            script.pause(b.jitter(pause_shortened_s), phase="pause_shortened", rep=rep)
            script.move(start_deg, b.jitter(eccentric_s), phase="eccentric", rep=rep)
            script.pause(b.jitter(pause_lengthened_s), phase="pause_lengthened", rep=rep)
        else:
            script.move(away, b.jitter(eccentric_s), phase="eccentric", rep=rep)
            script.pause(b.jitter(pause_lengthened_s), phase="pause_lengthened", rep=rep)
            script.move(start_deg, b.jitter(concentric_s), phase="concentric", rep=rep)
            script.pause(b.jitter(pause_shortened_s), phase="pause_shortened", rep=rep)
    return script.pause(lead_out_s, label="start position")


def _good_morning(
    b: _Builder,
    *,
    exercise: str,
    tempo_s: tuple[float, float, float, float],
    reps: int,
    end_range_deg: float,
    load: Callable[[BodyMotion], ForceSource],
) -> Scenario:
    """A loaded good-morning set: trunk IMU, the ``load`` (band or chain) on the load cell."""
    flexion = _tempo_set(
        b, start_deg=0.0, end_range_deg=end_range_deg, spread_deg=3.0, tempo_s=tempo_s, reps=reps
    )
    trunk = b.segment("trunk", flexion)
    return b.scenario(
        exercise=exercise,
        protocol="tempo_set",
        duration_s=flexion.end_s,
        imus={"trunk": trunk},
        primary="trunk",
        force=load(trunk),
        tempo="-".join(f"{d:g}" for d in tempo_s),
        eccentric_sign=1,
        fill=lambda truth: truth.reps.extend(reps_from_script(flexion, trunk.flexion_deg)),
    )


def good_morning_tempo(seed: int = DEFAULT_SEED) -> Scenario:
    """Banded good morning, 8 reps at tempo 3-1-1-0, band tension on the load cell."""
    # A doubled light band from under the feet over the upper back: 1.50 m long standing,
    # 1.07 m at 90° of flexion, rest length 0.90 m, so tension falls from ~150 N at lockout
    # to ~45 N at the bottom (the variable resistance of a band).
    return _good_morning(
        _Builder("good_morning_tempo", seed),
        exercise="banded_good_morning",
        tempo_s=(3, 1, 1, 0),
        reps=8,
        end_range_deg=85.0,
        load=lambda trunk: Band(trunk, SHOULDER_ATTACH_M, (0.05, 0.0, 0.0), 250.0, 0.90),
    )


def chained_good_morning(seed: int = DEFAULT_SEED) -> Scenario:
    """Chained good morning, 6 reps at tempo 3-1-1-1, chain weight on the load cell."""
    # Two 5 kg/m chains hang from the bar on the shoulders (1.50 m up standing, ~1.05 m at
    # the bottom): ~160 N of chain off the floor at lockout, ~115 N at the bottom.
    return _good_morning(
        _Builder("chained_good_morning", seed),
        exercise="chained_good_morning",
        tempo_s=(3, 1, 1, 1),
        reps=6,
        end_range_deg=80.0,
        load=lambda trunk: Chain(
            trunk, SHOULDER_ATTACH_M, mass_kg_per_m=10.0, length_m=1.8, rigging_n=15.0
        ),
    )


def dumbbell_row_slow_eccentric(seed: int = DEFAULT_SEED) -> Scenario:
    """Bent-over dumbbell row, 6 reps at tempo 4-1-1-1, IMU on the implement."""
    b = _Builder("dumbbell_row_slow_eccentric", seed)
    # The implement IMU rides the dumbbell, swung by the arm about the shoulder: 0° = arm
    # hanging (sensor x up the arm), positive = pulled up and back.
    flexion = _tempo_set(
        b,
        start_deg=0.0,
        end_range_deg=70.0,
        spread_deg=4.0,
        tempo_s=(4, 1, 1, 1),
        reps=6,
        concentric_first=True,
        lead_out_s=2.0,
    )
    implement = b.segment(
        "implement",
        flexion,
        pivot_m=(Constant(), Constant(-0.2), Constant(1.15)),
        lever_m=(-0.55, 0.0, 0.0),
    )
    return b.scenario(
        exercise="dumbbell_row",
        protocol="tempo_set",
        duration_s=flexion.end_s,
        imus={"implement": implement},
        primary="implement",
        tempo="4-1-1-1",
        eccentric_sign=-1,
        fill=lambda truth: truth.reps.extend(reps_from_script(flexion, implement.flexion_deg)),
    )


def back_extension_holds(seed: int = DEFAULT_SEED) -> Scenario:
    """45° back extension, 5 × 4 s holds at end-range extension with 6 s rests, chain load."""
    b = _Builder("back_extension_holds", seed)
    # On a 45° bench the body line is at 45° of "flexion"; end-range extension is ~15° past
    # it (30°); the rest position hangs at 115°.
    flexion = Script(115.0).pause(3.0, label="rest")
    for hold in range(5):
        # Late bracing: the trunk overshoots the end range by 1-6° and settles back in 0.4 s
        # (the overshoot and stabilisation time the device reports as timing proxies).
        flexion.move(30.0 - b.spread(3.5, 2.5), b.jitter(1.3), label="rise")
        flexion.move(30.0, b.jitter(0.4), label="settle")
        flexion.hold(4.0, label="end-range hold")
        flexion.move(115.0, b.jitter(1.5), label="lower")
        flexion.pause(6.0 if hold < 4 else 3.0, label="rest")
    trunk = b.segment("trunk", flexion, pivot_m=(Constant(), Constant(), Constant(1.0)))
    # A 4 kg/m training chain hung from the shoulders: 45 N hanging, 73 N at the hold.
    chain = Chain(trunk, SHOULDER_ATTACH_M, mass_kg_per_m=4.0, length_m=1.6, rigging_n=15.0)
    duration = flexion.end_s
    return b.scenario(
        exercise="back_extension_hold",
        protocol="isometric_holds",
        duration_s=duration,
        imus={"trunk": trunk},
        primary="trunk",
        force=chain,
        fill=lambda truth: truth.holds.extend(
            holds_from_script(flexion, _angle_fn(trunk), duration)
        ),
    )


def bridge_pelvic_shifts(seed: int = DEFAULT_SEED) -> Scenario:
    """Glute bridge held 30 s with lateral pelvic shifts, trunk and pelvis IMUs, hip band."""
    b = _Builder("bridge_pelvic_shifts", seed)
    # Supine: flexion −90° (spine horizontal, back down); bridging rotates the trunk about the
    # shoulders to −115° (hips up), the pelvis a little further.
    # The exercise's IMU is the pelvis one (on the sacrum); the trunk IMU shows the lumbar angle.
    pelvis_flexion = Script(-90.0).pause(3.0, label="lie")
    pelvis_flexion.move(-118.0, 1.5, label="bridge up").hold(30.0, label="bridge")
    pelvis_flexion.move(-90.0, 1.5, label="lower").pause(3.0, label="lie")
    trunk_flexion = Script(-90.0).pause(3.0).move(-115.0, 1.5).pause(30.0)
    trunk_flexion.move(-90.0, 1.5).pause(3.0)
    shift = Script(0.0).until(6.5)
    for offset in (0.04, 0.0, -0.04, 0.0, 0.04, 0.0, -0.04, 0.0):
        shift.move(offset, b.jitter(1.0), label="shift").pause(b.jitter(2.0))
    shoulders = (Constant(), Constant(), Constant(0.10))
    trunk = b.segment(
        "trunk",
        trunk_flexion,
        lean=Scaled(shift, 20.0),
        pivot_m=(shoulders[0], Scaled(shift, 0.4), shoulders[2]),
        lever_m=(-0.30, 0.0, 0.03),
    )
    # The pelvis rolls ~2° toward the side it shifts to (50 °/m of shift).
    pelvis = b.segment(
        "pelvis",
        pelvis_flexion,
        lean=Scaled(shift, -50.0),
        pivot_m=(shoulders[0], shift, shoulders[2]),
        lever_m=(-0.55, 0.0, 0.03),
    )
    # A band across the front of the hips (0.60 m from the shoulders along the pelvis, 0.15 m
    # anterior of the sacrum) anchored to the floor 0.6 m to the athlete's right: ~135 N in
    # the bridge, ±12 N as the pelvis shifts away from or toward the anchor.
    band = Band(pelvis, (-0.60, 0.0, -0.15), (0.5, -0.6, 0.0), 400.0, 0.45)
    duration = pelvis_flexion.end_s

    def fill(truth: GroundTruth) -> None:
        # The library's bridge hold band is ±8° (device/exercises/bridge_lateral_shift.toml).
        holds = holds_from_script(pelvis_flexion, _angle_fn(pelvis), duration, tolerance_deg=8.0)
        truth.holds.extend(holds)
        truth.shifts.extend(shifts_from_script(shift))

    return b.scenario(
        exercise="bridge_lateral_shift",
        protocol="holds_with_transitions",
        duration_s=duration,
        imus={"trunk": trunk, "pelvis": pelvis},
        primary="pelvis",
        force=band,
        fill=fill,
    )


def single_leg_deadlift(seed: int = DEFAULT_SEED) -> Scenario:
    """Single-leg deadlift, 6 reps at tempo 3-1-2-1 with frontal-plane sway."""
    b = _Builder("single_leg_deadlift", seed)
    flexion = _tempo_set(
        b,
        start_deg=0.0,
        end_range_deg=80.0,
        spread_deg=3.0,
        tempo_s=(3, 1, 2, 1),
        reps=6,
        lead_out_s=2.0,
    )
    code = zlib.crc32(b"sldl-balance")
    # Balancing on one leg: frontal-plane sway of ~1.2° RMS and some hip opening (heading).
    balance = Wobble.seeded([seed, code, 1], 1.2, (0.2, 1.2), components=4)
    hip_opening = Wobble.seeded([seed, code, 2], 0.8, (0.2, 1.0), components=3)
    trunk = b.segment("trunk", flexion, lean=balance, heading=hip_opening)
    lean_fn = _value_fn(trunk.lean_deg)
    return b.scenario(
        exercise="single_leg_deadlift",
        protocol="tempo_set",
        duration_s=flexion.end_s,
        imus={"trunk": trunk},
        primary="trunk",
        tempo="3-1-2-1",
        eccentric_sign=1,
        fill=lambda truth: truth.reps.extend(
            reps_from_script(flexion, trunk.flexion_deg, sway_fn=lean_fn)
        ),
    )


def sorensen_hold(seed: int = DEFAULT_SEED) -> Scenario:
    """Sørensen hold: trunk horizontal for ~70 s, a slow fatigue sag, then the drop."""
    b = _Builder("sorensen_hold", seed)
    # Prone over the bench edge, hips as the pivot: 90° = horizontal, 150° = hanging down.
    flexion = Script(150.0).pause(3.0, label="hang")
    flexion.move(90.0, 2.0, label="lift").hold(60.0, label="horizontal")
    flexion.move(93.0, 12.0, label="fatigue sag")
    flexion.move(115.0, 1.5, label="drop").move(150.0, 1.5, label="hang").pause(3.0)
    trunk = b.segment("trunk", flexion, pivot_m=(Constant(), Constant(), Constant(0.80)))
    duration = flexion.end_s
    return b.scenario(
        exercise="sorensen_hold",
        protocol="sorensen",
        duration_s=duration,
        imus={"trunk": trunk},
        primary="trunk",
        # The library's Sørensen band is ±10° (device/exercises/sorensen_hold.toml).
        fill=lambda truth: truth.holds.extend(
            holds_from_script(flexion, _angle_fn(trunk), duration, tolerance_deg=10.0)
        ),
    )


def _pull_scenario(
    b: _Builder,
    *,
    exercise: str,
    protocol: str,
    baseline_n: float,
    contractions: tuple[Contraction, ...],
    tail_s: float,
    trunk_flexion_deg: float,
    with_fatigue_index: bool,
) -> Scenario:
    """Contractions against the anchored load cell, the trunk held in a fixed hinge."""
    pulls = IsometricPulls(baseline_n, contractions)
    last = contractions[-1]

    noise_sd_n = b.load_cell_errors.noise_sd_n

    def fill(truth: GroundTruth) -> None:
        truth.contractions.extend(contractions_truth(contractions, baseline_n, noise_sd_n))
        if with_fatigue_index:
            truth.fatigue_index_pct = fatigue_index_pct(truth.contractions)

    return b.scenario(
        exercise=exercise,
        protocol=protocol,
        duration_s=last.onset_s + last.on_s + tail_s,
        imus={"trunk": b.segment("trunk", Constant(trunk_flexion_deg))},
        primary="trunk",
        force=pulls,
        fill=fill,
    )


def isometric_max_pulls(seed: int = DEFAULT_SEED) -> Scenario:
    """Three isometric maximal pulls (4 s) against the anchored load cell, 13 s apart."""
    b = _Builder("isometric_max_pulls", seed)
    # Quiet baseline >= 3 s before each pull (METRICS.md baseline window), ~1.2 kN peaks with
    # rise time constants near 0.1 s: RFD(50 ms) around 9 kN/s, as in trained pullers.
    contractions = tuple(
        Contraction(
            onset_s=5.0 + 17.0 * i,
            on_s=4.0,
            amplitude_n=b.spread(1180.0, 40.0),
            tau_rise_s=b.jitter(0.10, 0.15),
            decline_n_per_s=6.0,
            tau_relax_s=0.08,
        )
        for i in range(3)
    )
    return _pull_scenario(
        b,
        exercise="isometric_pull",
        protocol="max_pulls",
        baseline_n=40.0,
        contractions=contractions,
        tail_s=6.0,
        trunk_flexion_deg=40.0,
        with_fatigue_index=False,
    )


def repeaters_7_3(seed: int = DEFAULT_SEED) -> Scenario:
    """Isometric repeaters 7 s on / 3 s off × 6 with fatigue."""
    b = _Builder("repeaters_7_3", seed)
    # Fatigue: each rep's amplitude 3.5 % below the previous one, and force sags 5 N/s
    # within a rep.
    contractions = tuple(
        Contraction(
            onset_s=5.0 + 10.0 * i,
            on_s=7.0,
            amplitude_n=700.0 * (1.0 - 0.035 * i),
            tau_rise_s=0.12,
            decline_n_per_s=5.0,
            tau_relax_s=0.10,
        )
        for i in range(6)
    )
    return _pull_scenario(
        b,
        exercise="repeaters",
        protocol="repeaters",
        baseline_n=30.0,
        contractions=contractions,
        tail_s=4.0,
        trunk_flexion_deg=35.0,
        with_fatigue_index=True,
    )


def rotational_throws(seed: int = DEFAULT_SEED) -> Scenario:
    """Rotational medicine-ball throws, 3 to each side (peak rotation speed)."""
    b = _Builder("rotational_throws", seed)
    heading = Script(0.0).pause(3.0, label="stance")
    for rep in range(6):
        # Three throws to the right (wind-up turning left, heading increasing), then three
        # mirrored to the left.
        side = 1.0 if rep < 3 else -1.0
        heading.move(50.0 * side, b.jitter(0.8), phase="eccentric", rep=rep, label="wind-up")
        heading.pause(b.jitter(0.15), phase="pause_lengthened", rep=rep)
        heading.move(-70.0 * side, b.jitter(0.30), phase="concentric", rep=rep, label="throw")
        heading.move(0.0, b.jitter(1.2), rep=rep, label="return")
        heading.pause(3.5, label="rest")
    # The trunk stays upright, so turning about vertical is turning about the spine (sensor
    # x), the working axis of the exercise.
    trunk = b.segment("trunk", Constant(0.0), heading=heading)

    def vertical_speed_dps(t: FloatArray) -> FloatArray:
        omega, _ = trunk.earth_angular_velocity(t)
        return np.degrees(omega[:, 2])

    return b.scenario(
        exercise="rotational_throw",
        protocol="free",
        eccentric_sign=1,
        duration_s=heading.end_s,
        imus={"trunk": trunk},
        primary="trunk",
        primary_angle="heading",
        # Throws turn at ~750 °/s: a finer curve keeps linear interpolation within 0.02°.
        angle_rate_hz=250.0,
        fill=lambda truth: truth.reps.extend(
            reps_from_script(heading, trunk.heading_deg, speed_fn=vertical_speed_dps)
        ),
    )


#: Every scenario: name -> builder (listing order).
SCENARIOS: dict[str, Callable[[int], Scenario]] = {
    "good_morning_tempo": good_morning_tempo,
    "chained_good_morning": chained_good_morning,
    "dumbbell_row_slow_eccentric": dumbbell_row_slow_eccentric,
    "back_extension_holds": back_extension_holds,
    "bridge_pelvic_shifts": bridge_pelvic_shifts,
    "single_leg_deadlift": single_leg_deadlift,
    "sorensen_hold": sorensen_hold,
    "isometric_max_pulls": isometric_max_pulls,
    "repeaters_7_3": repeaters_7_3,
    "rotational_throws": rotational_throws,
}


def scenario_names() -> list[str]:
    """Names of every scenario, in listing order."""
    return list(SCENARIOS)


def build_scenario(name: str, seed: int = DEFAULT_SEED) -> Scenario:
    """Build the scenario ``name``; UsageError naming the known ones otherwise."""
    entry = SCENARIOS.get(name)
    if entry is None:
        raise UsageError(
            f"unknown scenario {name!r}: choose one of {', '.join(SCENARIOS)} "
            "(`spinecoach scenarios` lists them)"
        )
    return entry(seed)
