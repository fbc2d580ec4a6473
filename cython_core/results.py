"""Results and events the measurement pipeline emits (plain data, units in names).

The engine, the store, the hub and ``spinecoach analyze --json`` all consume these, so field names
match the documented JSON schema. Times are sample-clock times (s).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Phase = Literal["still", "eccentric", "concentric", "moving"]


@dataclass(frozen=True)
class MotionSettings:
    """Exercise-specific settings of the movement kernels (METRICS.md defaults).

    ``primary_axis``: unit vector of the working axis in the sensor frame, or None for the axis
    of largest angular excursion. ``eccentric_sign``: +1 if the lengthening phase moves the
    primary angle up, -1 if down. Angles in degrees, speeds in °/s, times in seconds.
    ``primary_angle``: "axis" (rotation about ``primary_axis``, gravity-referenced) or "heading"
    (rotation about the earth vertical, the integrated vertical rate; rotational throws).
    """

    primary_axis: tuple[float, float, float] | None = None
    eccentric_sign: int = 1
    min_rom_deg: float = 15.0
    moving_threshold_dps: float = 10.0
    still_threshold_dps: float = 5.0
    min_phase_s: float = 0.1
    hold_target_deg: float | None = None
    hold_tolerance_deg: float = 5.0
    hold_force_tolerance_frac: float = 0.10
    hold_debounce_s: float = 0.2
    extension_limit_deg: float | None = None
    flexion_limit_deg: float | None = None
    min_hold_s: float = 1.0
    min_return_frac: float = 0.5
    primary_angle: str = "axis"


@dataclass(frozen=True)
class Tempo:
    """Phase durations of one rep (s): E-P-C-P."""

    eccentric_s: float
    pause_lengthened_s: float
    concentric_s: float
    pause_shortened_s: float


@dataclass(frozen=True)
class RepResult:
    """One repetition: an excursion >= min ROM away from and back to the start position."""

    start_s: float
    end_s: float
    rom_deg: float
    tempo: Tempo
    peak_eccentric_speed_dps: float = 0.0
    mean_eccentric_speed_dps: float = 0.0
    peak_concentric_speed_dps: float = 0.0
    mean_concentric_speed_dps: float = 0.0
    eccentric_sparc: float | None = None
    overshoot_deg: float | None = None
    peak_force_n: float | None = None
    mean_force_n: float | None = None
    angle_at_peak_force_deg: float | None = None
    eccentric_first: bool = True
    stabilisation_s: float | None = None
    sway_rms_deg: float | None = None
    rotation_speed_dps: float | None = None
    onset_asynchrony_s: float | None = None
    band_stiffness_n_per_deg: float | None = None
    force_angle: dict[str, Any] | None = None
    sticking_region_deg: list[float] | None = None
    velocity_loss_pct: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HoldResult:
    """An isometric hold; duration exact to one sample."""

    start_s: float
    end_s: float
    duration_s: float
    mean_angle_deg: float | None = None
    mean_force_n: float | None = None
    end_reason: str = "released"
    stabilisation_s: float | None = None
    overshoot_deg: float | None = None
    sway_rms_deg: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ContractionResult:
    """A force contraction (METRICS.md "Force"). Keys of the dicts are windows in ms."""

    onset_s: float
    end_s: float
    baseline_n: float
    peak_force_n: float
    time_to_peak_s: float
    force_at_n: dict[str, float] = field(default_factory=dict)
    rfd_n_per_s: dict[str, float] = field(default_factory=dict)
    peak_rfd_n_per_s: float = 0.0
    impulse_n_s: dict[str, float] = field(default_factory=dict)
    pretensioned: bool = False
    rate_hz: float = 0.0
    mean_force_n: float = 0.0
    invalid_samples: int = 0
    baseline_sd_n: float = 0.0
    threshold_n: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoweringResult:
    """One eccentric movement, measured as soon as it stops (the ``eccentric_end`` event).

    ``start_s``/``end_s`` are where its speed leaves and returns to rest: from the bell-shaped
    fit of the speed seen up to the deciding sample when one fits (``fitted``), else the phase
    boundaries. ``rom_deg``: angle swept between the phase boundaries.
    """

    start_s: float
    end_s: float
    duration_s: float
    rom_deg: float
    fitted: bool


@dataclass(frozen=True)
class CoreEvent:
    """Something the pipeline detected at sample time ``t_s``.

    ``kind`` is one of: ``phase`` (data: phase), ``rep`` (data: RepResult), ``hold_start``,
    ``hold_end`` (data: HoldResult), ``contraction_onset``, ``contraction`` (data:
    ContractionResult), ``limit`` (data: angle_deg, limit_deg), ``movement_onset``,
    ``eccentric_end`` (data: LoweringResult; ``t_s`` is the sample that decided the stop).
    """

    kind: str
    t_s: float
    data: Any = None


@dataclass(frozen=True)
class AnalysisResult:
    """Everything one pass of the pipeline measured over a recording (or a session so far).

    ``streams``: name -> sample rate (Hz) of every stream; rate-dependent figures were computed at
    these rates. ``summary``: set-level figures (velocity loss, fatigue index, critical force and
    W', set force-angle curve, band stiffness); see the README's ``analyze --json`` schema.
    """

    streams: dict[str, float]
    duration_s: float
    reps: list[RepResult] = field(default_factory=list)
    holds: list[HoldResult] = field(default_factory=list)
    contractions: list[ContractionResult] = field(default_factory=list)
    movement_onsets_s: list[float] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
