"""Text for the coach's panels, drawn from the model (Rich text; no Textual, no clock).

Colours are the eight basic ANSI names only, so the panels read the same on the 16-colour Linux
console as over SSH in a truecolor terminal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from spinecoach.band_profile import BandProfile
from spinecoach.engine.protocols import HOLD_END_WORDS
from spinecoach.hub.messages import Frame, SensorStatus, State, Summary
from spinecoach.tui.canvas import BlockCanvas, BrailleCanvas, Range
from spinecoach.tui.model import TEMPO_LABELS, TEMPO_SLOTS, CoachModel, RepRecord

#: Series colours, oldest to newest; the newest rep is drawn last, in the last colour.
SERIES_STYLES: tuple[str, ...] = ("blue", "magenta", "green", "yellow", "cyan")
#: Seconds of force shown on the force-time plot.
FORCE_WINDOW_S = 10.0

#: Colour of a stored band profile's reference curve.
BAND_STYLE = "white"

SET_STATE_STYLE = {"idle": "white", "running": "bold green", "rest": "bold yellow", "done": "cyan"}
SENSOR_STYLE = {"ok": "green", "degraded": "yellow", "stale": "red", "missing": "red"}


@dataclass(frozen=True)
class Glyphs:
    """Symbols the coach draws with. The Linux console's fonts (512 glyphs at most) have box
    drawing, block elements and Latin-1 but no braille and few symbols, hence a second set."""

    canvas: type[BrailleCanvas]
    sensor: str
    play: str
    pause: str
    end: str
    ok: str
    fail: str
    current: str


UNICODE_GLYPHS = Glyphs(BrailleCanvas, "●", "▶", "❚❚", "■", "✓", "✗", "▶")
CONSOLE_GLYPHS = Glyphs(BlockCanvas, "*", ">", "||", "[]", "+", "x", ">")


def fmt(value: float | None, digits: int = 0, unit: str = "") -> str:
    """A number for display; an en dash when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}{unit}"


# --------------------------------------------------------------------------------------------
# Plots


def plot_text(
    series: Sequence[Sequence[tuple[float, float]]],
    width: int,
    height: int,
    x_range: Range,
    y_range: Range,
    y_unit: str,
    x_unit: str,
    styles: Sequence[str] = SERIES_STYLES,
    empty_message: str = "",
    x_labels: tuple[str, str] | None = None,
    glyphs: Glyphs = UNICODE_GLYPHS,
) -> Text:
    """A braille line plot with a y axis on the left and the x range underneath.

    ``width``×``height`` is the whole area in cells, axes included. Series are drawn in order,
    so the last one is on top. ``x_labels`` replace the numbers at the ends of the x axis.
    """
    label_w = max(len(f"{y_range.high:.0f}"), len(f"{y_range.low:.0f}"), len(y_unit)) + 1
    plot_w = max(1, width - label_w - 1)
    plot_h = max(1, height - 1)
    canvas = glyphs.canvas(plot_w, plot_h)
    for index, points in enumerate(series):
        canvas.plot(points, x_range, y_range, series=index)
    text = Text(no_wrap=True, overflow="crop")
    rows = canvas.rows()
    labels = {0: f"{y_range.high:.0f}", plot_h - 1: f"{y_range.low:.0f}"}
    if plot_h >= 3:
        labels[plot_h // 2] = y_unit
    for r, row in enumerate(rows):
        text.append(labels.get(r, "").rjust(label_w - 1) + " ", style="dim")
        text.append("│" if r else "┤", style="dim")
        if not any(owner >= 0 for _, owner in row) and empty_message and r == plot_h // 2:
            text.append(empty_message[:plot_w].center(plot_w), style="dim italic")
        else:
            _append_runs(text, row, styles)
        text.append("\n")
    low, high = x_labels or (f"{x_range.low:.0f}", f"{x_range.high:.0f}{x_unit}")
    gap = max(1, plot_w - len(low) - len(high))
    text.append(" " * label_w + "└" + low + "─" * gap + high, style="dim")
    return text


def _append_runs(text: Text, row: list[tuple[str, int]], styles: Sequence[str]) -> None:
    """Append a canvas row, one span per run of cells drawn by the same series (a plot is
    redrawn up to 30 times a second: one append per cell would dominate its cost)."""
    start = 0
    for end in range(1, len(row) + 1):
        if end == len(row) or row[end][1] != row[start][1]:
            owner = row[start][1]
            chars = "".join(char for char, _ in row[start:end])
            text.append(chars, style=styles[owner % len(styles)] if owner >= 0 else None)
            start = end


def force_time_text(
    model: CoachModel, width: int, height: int, glyphs: Glyphs = UNICODE_GLYPHS
) -> Text:
    """Force (N) over the last :data:`FORCE_WINDOW_S` seconds of sample time."""
    latest = model.latest
    frames = [f for f in model.frames if f.force_n is not None]
    if latest is None:
        x_range = Range(0.0, FORCE_WINDOW_S)
        frames = []
    else:
        start = max(0.0, latest.t_s - FORCE_WINDOW_S)
        x_range = Range(start, start + FORCE_WINDOW_S)
        frames = [f for f in frames if f.t_s >= start]
    points = [(f.t_s, float(f.force_n)) for f in frames if f.force_n is not None]
    y_range = _force_range([p[1] for p in points])
    empty = "no load cell" if latest is not None and not points else "waiting for data"
    return plot_text(
        [points], width, height, x_range, y_range, "N", " s", ("cyan",), empty, glyphs=glyphs
    )


def force_angle_text(
    model: CoachModel, width: int, height: int, glyphs: Glyphs = UNICODE_GLYPHS,
    band: BandProfile | None = None,
) -> Text:
    """Force (N) against the primary angle (°) for the last reps, newest on top; under them, in
    :data:`BAND_STYLE`, the stored ``band`` profile's own curve (the athlete sees their force
    above the band's)."""
    reps = model.curve_reps()
    curves = [rep.curve for rep in reps]
    reference = band.reference_curve() if band is not None else []
    series = [reference, *curves] if reference else curves
    angles = [a for curve in series for a, _ in curve]
    forces = [f for curve in series for _, f in curve]
    x_range = Range.covering(angles, minimum_span=20.0)
    y_range = _force_range(forces)
    styles = list(SERIES_STYLES[-len(curves):] if curves else SERIES_STYLES)
    if reference:
        styles = [BAND_STYLE, *styles[:len(curves)]]
    return plot_text(
        series, width, height, x_range, y_range, "N", "°", styles, "curves appear after a rep",
        glyphs=glyphs,
    )


def band_title(band: BandProfile | None) -> str:
    """The force-angle plot's title: what the white curve is, when there is one."""
    if band is None:
        return "Force · angle (last reps)"
    return f"Force · angle · white: {band.name}"


def band_profile_text(band: BandProfile | None, exercise: str, width: int, height: int,
                      glyphs: Glyphs = UNICODE_GLYPHS) -> Text:
    """The calibration wizard's view of the stored band profile of ``exercise``: range,
    stiffness, bins and capture date, then its curve."""
    if band is None:
        what = _title(exercise) or "this exercise"
        return Text(f"No band profile stored for {what} yet.", style="dim")
    low, high = band.range_deg
    stiffness = fmt(band.stiffness_n_per_deg, 2, " N/°")
    text = Text()
    text.append(f"Stored band: {band.name}", style="bold")
    text.append(f"\n{low:.0f}–{high:.0f}° · {band.bins} bins of {band.bin_deg:g}° · "
                f"stiffness {stiffness}")
    text.append(f"\nCaptured {band.captured_utc[:16].replace('T', ' ')} UTC", style="dim")
    if height > 5:
        points = band.reference_curve()
        x_range = Range.covering([a for a, _ in points], minimum_span=20.0)
        text.append("\n")
        text.append_text(plot_text([points], width, height - 3, x_range,
                                   _force_range([f for _, f in points]), "N", "°",
                                   (BAND_STYLE,), glyphs=glyphs))
    return text


def _force_range(forces: Sequence[float]) -> Range:
    """Force axis from 0 (or the lowest force, if negative) to a round top."""
    if not forces:
        return Range(0.0, 100.0)
    top = max(forces)
    step = 50.0 if top <= 500 else 100.0
    return Range(min(0.0, min(forces)), max(step, math.ceil(top / step) * step))


# --------------------------------------------------------------------------------------------
# Panels


def status_line(model: CoachModel, replay: str = "", width: int = 0) -> Text:
    """Header: set and rep counters, set state, athlete, exercise, protocol, mode; a replay's
    position and speed stay visible at the right end, the rest is cut to fit ``width``."""
    state = model.state
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(" spinecoach ", style="bold reverse")
    text.append(" ")
    # Counters and set state first: on a narrow screen the names are what gets cut.
    text.append(f"set {state.set_no}", style="bold")
    reps_target = state.target.get("reps")
    text.append(f" rep {state.rep_no}" + (f"/{reps_target}" if reps_target else ""), style="bold")
    text.append(" ")
    text.append(state.set_state.upper(), style=SET_STATE_STYLE.get(state.set_state, ""))
    text.append(" · ")
    text.append(state.athlete or "no athlete", style="bold")
    text.append(" · ")
    text.append(_title(state.exercise) or "no exercise")
    if state.protocol:
        text.append(f" · {_title(state.protocol)}")
    text.append(" · ")
    text.append(state.mode, style="dim" if state.mode == "tracking" else "")
    if not replay:
        return text
    tail = Text(f" {replay} ", style="bold cyan")
    if width:
        room = max(0, width - tail.cell_len)
        if text.cell_len > room:
            text.truncate(room, overflow="ellipsis")
        text.append(" " * (room - text.cell_len))
    else:
        text.append(" ")
    text.append_text(tail)
    return text


def _title(name: str) -> str:
    return name.replace("_", " ")


def backend_words(backend: str) -> str:
    """A backend switch as a person says it: ``sim:good_morning_tempo`` is the "simulated rig:
    good morning tempo", ``replay:DIR/x.screc`` the "recording x.screc"; ``hardware`` stays."""
    kind, _, target = backend.partition(":")
    if kind == "sim" and target:
        return f"simulated rig: {_title(target)}"
    if kind == "replay" and target:
        return f"recording {target.rsplit('/', 1)[-1]}"
    return backend


def tempo_text(model: CoachModel, glyphs: Glyphs = UNICODE_GLYPHS) -> Text:
    """The four tempo slots against the target; the current slot is bar-filled by elapsed time."""
    target = model.target_tempo_s()
    text = Text(no_wrap=True, overflow="crop")
    heading = "Tempo " + ("-".join(f"{t:g}" for t in target) if target else "(free)")
    text.append(heading + "\n", style="bold")
    elapsed = model.tempo_elapsed_s()
    last = model.reps[-1].tempo_s() if model.reps else [None] * 4
    for i, slot in enumerate(TEMPO_SLOTS):
        current = slot == model.tempo_slot
        goal = target[i] if target else None
        shown = elapsed if current else last[i]
        marker = glyphs.current if current else " "
        text.append(f"{marker}{TEMPO_LABELS[slot]:<6}", style="bold" if current else "dim")
        text.append(_bar(shown, goal, 10, current))
        text.append(f" {fmt(shown, 1)}/{fmt(goal, 1)} s\n", style="" if current else "dim")
    text.rstrip()
    return text


def _bar(value: float | None, goal: float | None, width: int, current: bool) -> Text:
    """A bar of ``width`` cells filled to value/goal. The phase in progress is green until it
    passes its target (then yellow: move on); a finished phase is green within 0.8-1.25 of its
    target, yellow outside. Without a target one cell is one second."""
    if value is None:
        return Text("·" * width, style="dim")
    if not goal:
        filled = min(width, int(value))
        return Text("█" * filled + "░" * (width - filled), style="cyan")
    ratio = value / goal
    filled = min(width, round(ratio * width))
    if current:
        style = "green" if ratio <= 1.0 else "yellow"
    else:
        style = "green" if 0.8 <= ratio <= 1.25 else "yellow"
    return Text("█" * filled + "░" * (width - filled), style=style)


def hold_text(model: CoachModel) -> Text:
    """The hold in progress against its target, else the last hold."""
    latest: Frame | None = model.latest
    target = model.state.target.get("hold_s")
    text = Text(no_wrap=True, overflow="crop")
    text.append("Hold ", style="bold")
    holding = latest is not None and latest.hold_s > 0
    if holding and latest is not None:
        text.append(f"{latest.hold_s:5.1f} s", style="bold green")
        if isinstance(target, (int, float)) and target > 0:
            text.append(f" / {target:g} s  ")
            text.append(_bar(latest.hold_s, float(target), 10, True))
    elif model.last_hold:
        duration = model.last_hold.get("duration_s")
        reason = HOLD_END_WORDS.get(str(model.last_hold.get("end_reason", "")), "")
        text.append(f"last {fmt(duration, 1)} s" + (f" ({reason})" if reason else ""))
    else:
        text.append("–", style="dim")
        if isinstance(target, (int, float)) and target > 0:
            text.append(f" target {target:g} s", style="dim")
    return text


def readout_text(model: CoachModel) -> Text:
    """The live numbers: angle, speed, force, phase."""
    latest = model.latest
    text = Text(no_wrap=True, overflow="crop")
    if latest is None:
        text.append("waiting for the first samples…", style="dim")
        return text
    text.append(f"{fmt(latest.angle_deg, 0, '°'):>5}", style="bold")
    text.append(f" {fmt(latest.speed_dps, 0, '°/s'):>7}  ")
    text.append(f"{fmt(latest.force_n, 0, ' N'):>6}", style="bold")
    text.append(f"  {latest.phase}", style="cyan")
    return text


def cues_text(model: CoachModel, lines: int) -> Text:
    """The newest cues, newest first."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("Cues\n", style="bold")
    cues = list(model.cues)[::-1][: max(0, lines - 1)]
    if not cues:
        text.append("none yet", style="dim")
    for i, cue in enumerate(cues):
        text.append(f"{cue.t_s:6.1f} s ", style="dim")
        text.append(cue.message, style="bold yellow" if i == 0 else "")
        if i < len(cues) - 1:
            text.append("\n")
    return text


def sensors_text(state: State, ack: str = "", glyphs: Glyphs = UNICODE_GLYPHS) -> Text:
    """One line: each sensor's status, rate and gaps; then the last command answer."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if not state.sensors:
        text.append("sensors: none reported", style="dim")
    for i, (name, sensor) in enumerate(sorted(state.sensors.items())):
        if i:
            text.append("  ")
        text.append_text(_sensor(name, sensor, glyphs))
    if ack:
        text.append("  | " + ack, style="italic")
    return text


def _sensor(name: str, sensor: SensorStatus, glyphs: Glyphs) -> Text:
    style = SENSOR_STYLE.get(sensor.status, "")
    text = Text()
    text.append(f"{glyphs.sensor} ", style=style)
    text.append(f"{name} {sensor.rate_hz:.0f} Hz")
    if sensor.status != "ok":
        text.append(f" {sensor.status}", style=style)
    text.append(f" gaps {sensor.gaps}", style="yellow" if sensor.gaps else "dim")
    return text


REP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("#", ""),
    ("ROM °", "rom_deg"),
    ("Lower s", "tempo.eccentric_s"),
    ("Lift s", "tempo.concentric_s"),
    ("Peak ecc °/s", "peak_eccentric_speed_dps"),
    ("Peak N", "peak_force_n"),
    ("@ °", "angle_at_peak_force_deg"),
)


def rep_row(rep: RepRecord) -> tuple[str, ...]:
    """The rep table row of one rep, as in :data:`REP_COLUMNS`."""
    tempo = rep.tempo_s()
    return (
        str(rep.number),
        fmt(rep.figure("rom_deg")),
        fmt(tempo[0], 1),
        fmt(tempo[2], 1),
        fmt(rep.figure("peak_eccentric_speed_dps")),
        fmt(rep.figure("peak_force_n")),
        fmt(rep.figure("angle_at_peak_force_deg")),
    )


# --------------------------------------------------------------------------------------------
# Summaries


#: Unit suffixes of figure names and how they are shown.
_UNITS: tuple[tuple[str, str, int], ...] = (
    ("_n_per_s", "N/s", 0),
    ("_n_per_deg", "N/°", 1),
    ("_n_s", "N·s", 1),
    ("_dps", "°/s", 0),
    ("_deg", "°", 0),
    ("_pct", "%", 0),
    ("_hz", "Hz", 0),
    ("_kg", "kg", 1),
    ("_n", "N", 0),
    ("_s", "s", 1),
)


def figure_label(name: str) -> tuple[str, str, int]:
    """(label, unit, decimals) of a figure name such as ``peak_force_n``."""
    for suffix, unit, digits in _UNITS:
        if name.endswith(suffix):
            return _words(name[: -len(suffix)]), unit, digits
    return _words(name), "", 0


#: Abbreviations kept in capitals in labels.
_ACRONYMS = {"rom": "ROM", "rfd": "RFD", "sparc": "SPARC", "cf": "CF", "imu": "IMU"}


def _words(name: str) -> str:
    """``mean_rom`` -> ``Mean ROM``."""
    words = [_ACRONYMS.get(w, w) for w in name.split("_") if w]
    if words and words[0] == words[0].lower():
        words[0] = words[0].capitalize()
    return " ".join(words)


def figure_value(name: str, value: float | str | None, unit: bool = True) -> str:
    """A summary figure, with its unit unless ``unit`` is False (a column header carries it)."""
    if isinstance(value, str):
        return value
    _, unit_text, digits = figure_label(name)
    if isinstance(value, int) and not unit_text:
        return str(value)
    return fmt(value, digits, f" {unit_text}" if unit and unit_text else "")


def summary_title(summary: Summary | None, scope: str) -> str:
    if summary is None:
        return f"No {scope} summary yet: finish a set and it appears here."
    if summary.scope == "set":
        return f"Set {summary.set_no} · {_title(summary.exercise)}"
    return f"Session · {_title(summary.exercise)}"
