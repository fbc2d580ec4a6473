"""The coach's screens. Each draws from the app's model in :meth:`CoachScreen.show`."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from spinecoach.band_profile import BandProfile, newest_profile
from spinecoach.hub.messages import (
    CALIBRATION_STEPS,
    MAX_BAND_NAME,
    PROTOCOL_VERSION,
    Command,
    Summary,
)
from spinecoach.tui import render
from spinecoach.tui.canvas import Range
from spinecoach.tui.catalogue import Catalogue, Progress
from spinecoach.tui.model import CoachModel
from spinecoach.tui.widgets import ModelPanel, RowsTable
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

if TYPE_CHECKING:
    from spinecoach.tui.app import CoachApp

DEMO_BANNER = "DEMO — replaying a recorded session; no sensors found"


class CoachScreen(Screen[None]):
    """A top-level screen: status line on top, footer with the keys at the bottom."""

    @property
    def coach(self) -> CoachApp:
        return cast("CoachApp", self.app)

    def compose_status(self) -> ComposeResult:
        yield ModelPanel(
            lambda model, w, h: render.status_line(model, self.coach.replay_label(), w),
            classes="status",
        )
        yield Static(DEMO_BANNER, classes="banner")

    #: True between mount (children composed) and unmount: only then can it be drawn.
    ready = False

    def on_mount(self) -> None:
        # Textual runs every class's on_mount along the MRO, so subclasses need not call this.
        self.ready = True
        self.coach.invalidate()

    def on_unmount(self) -> None:
        self.ready = False

    def on_screen_resume(self) -> None:
        # Drawn by the app's next pull (within 1/30 s), which copes with a half-built screen.
        self.coach.invalidate()

    def show(self, model: CoachModel) -> None:
        """Redraw everything on this screen from ``model`` (the app calls this only when
        :attr:`ready`)."""
        self.set_class(model.demo, "demo")
        self.set_class(self.coach.console_look, "console")
        for panel in self.query(ModelPanel):
            panel.show(model)
        self._show_link()

    _banner_text = DEMO_BANNER

    def _show_link(self) -> None:
        """A coach attached to a daemon that went away says so in the banner slot."""
        link = self.coach.link_label()
        text = link or DEMO_BANNER
        if text != self._banner_text:
            for banner in self.query(".banner").results(Static):  # none before compose
                banner.update(text)
                self._banner_text = text
        if link:
            self.set_class(True, "demo")


# --------------------------------------------------------------------------------------------


class LiveScreen(CoachScreen):
    """The set in progress: plots, tempo, hold, cues, reps, sensors."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "toggle_set", "Start/stop set", key_display="Enter"),
        Binding("t", "tare", "Tare"),
        Binding("m", "toggle_mode", "Mode"),
    ]

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        with Horizontal(id="plots"):
            yield ModelPanel(
                lambda m, w, h: render.force_time_text(m, w, h, self.coach.glyphs),
                id="force-time", classes="plot",
            )
            yield ModelPanel(
                lambda m, w, h: render.force_angle_text(m, w, h, self.coach.glyphs,
                                                        self._band(m)),
                # Curves change only when a rep is counted, the session restarts or another
                # band profile applies.
                key=lambda m: (len(m.reps), m.reps[-1].result.get("end_s") if m.reps else None,
                               self.coach.console_look, self._band(m)),
                id="force-angle", classes="plot",
            )
        with Horizontal(id="middle"):
            yield ModelPanel(lambda m, w, h: render.tempo_text(m, self.coach.glyphs), id="tempo")
            with Vertical(id="side"):
                yield ModelPanel(lambda m, w, h: render.readout_text(m), id="readout")
                yield ModelPanel(lambda m, w, h: render.hold_text(m), id="hold")
                yield ModelPanel(lambda m, w, h: render.cues_text(m, h), id="cues")
        yield RowsTable(tuple(name for name, _ in render.REP_COLUMNS), id="reps")
        yield ModelPanel(
            lambda m, w, h: render.sensors_text(m.state, self.coach.ack_line(), self.coach.glyphs),
            id="sensors",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#force-time").border_title = "Force · time"
        self.query_one("#force-angle").border_title = render.band_title(None)

    def _band(self, model: CoachModel) -> BandProfile | None:
        """The stored band profile of the exercise being trained (the newest one)."""
        return newest_profile(self.coach.catalogue.band_profiles(), model.state.exercise)

    def show(self, model: CoachModel) -> None:
        super().show(model)
        title = render.band_title(self._band(model))
        panel = self.query_one("#force-angle")
        if panel.border_title != title:  # a new title repaints the panel's border
            panel.border_title = title
        self.query_one("#reps", RowsTable).set_rows(
            [render.rep_row(rep) for rep in model.reps], newest_visible=True
        )

    def action_toggle_set(self) -> None:
        running = self.coach.model.state.set_state == "running"
        self.coach.send(Command("stop_set" if running else "start_set"))

    def action_tare(self) -> None:
        self.coach.send(Command("tare"))

    def action_toggle_mode(self) -> None:
        mode = "tracking" if self.coach.model.state.mode == "training" else "training"
        self.coach.send(Command("set_mode", {"mode": mode}))


# --------------------------------------------------------------------------------------------


class HomeScreen(CoachScreen):
    """Athlete, exercise and protocol choice; recent sessions."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("g", "go", "Go to set")]

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        with Horizontal(id="choices"):
            yield OptionList(id="athletes", classes="choice")
            yield OptionList(id="exercises", classes="choice")
            yield OptionList(id="protocols", classes="choice")
        yield Static("", id="home-note", classes="note")
        yield RowsTable(("Started", "Exercise", "Protocol", "Sets", "Reps", "Best", "Status"),
                        id="recent")
        yield Footer()

    def on_mount(self) -> None:
        for selector, title in (("#athletes", "Athlete"), ("#exercises", "Exercise"),
                                ("#protocols", "Protocol")):
            self.query_one(selector, OptionList).border_title = title
        self._fill_lists()
        self.query_one("#recent", RowsTable).border_title = "Recent sessions"
        self.query_one("#athletes", OptionList).focus()

    _listed: tuple[tuple[str, ...], ...] = ()

    def _fill_lists(self) -> None:
        """List the catalogue's names; again whenever they change (a daemon's answer comes a
        moment after the screen opens)."""
        catalogue = self.coach.catalogue
        names = (tuple(catalogue.athletes()), tuple(catalogue.exercises()),
                 tuple(catalogue.protocols()))
        if names == self._listed:
            return
        self._listed = names
        for selector, listed in zip(("#athletes", "#exercises", "#protocols"), names):
            option_list = self.query_one(selector, OptionList)
            highlighted = option_list.highlighted
            option_list.clear_options()
            option_list.add_options([Option(name.replace("_", " "), id=name) for name in listed])
            if listed:
                option_list.highlighted = min(highlighted or 0, len(listed) - 1)

    def show(self, model: CoachModel) -> None:
        super().show(model)
        self._fill_lists()
        catalogue: Catalogue = self.coach.catalogue
        athlete = model.state.athlete
        for selector, current in (
            ("#athletes", athlete),
            ("#exercises", model.state.exercise),
            ("#protocols", model.state.protocol),
        ):
            self._mark_current(self.query_one(selector, OptionList), current)
        sessions = catalogue.recent_sessions(athlete, limit=10)
        self.query_one("#recent", RowsTable).set_rows(
            [
                (s.started, s.exercise.replace("_", " "), s.protocol.replace("_", " "),
                 str(s.sets), str(s.reps), s.headline, s.status)
                for s in sessions
            ]
        )
        note = catalogue.unavailable_reason
        if not note:
            note = (
                "Choose with ↑/↓ and Enter; Tab moves between lists; g goes to the set."
                if sessions
                else f"No sessions stored for {athlete or 'this athlete'} yet: "
                "finish a set and it is listed here."
            )
        elif not sessions:
            note += " Recent sessions are listed here once a set is stored."
        self.query_one("#home-note", Static).update(note)

    @staticmethod
    def _mark_current(option_list: OptionList, name: str) -> None:
        """Highlight the current choice, unless the user is moving through this list."""
        if option_list.has_focus or not name:
            return
        try:
            option_list.highlighted = option_list.get_option_index(name)
        except OptionDoesNotExist:
            return

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        command = {
            "athletes": "select_athlete",
            "exercises": "select_exercise",
            "protocols": "select_protocol",
        }[event.option_list.id or ""]
        self.coach.send(Command(command, {"name": event.option.id or ""}))

    def action_go(self) -> None:
        self.coach.switch_mode("live")


# --------------------------------------------------------------------------------------------


class SummaryScreen(CoachScreen):
    """The last set's figures and rows, and the session's figures."""

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        with Horizontal(id="summaries"):
            yield RowsTable(("Set figure", "Value"), id="set-figures")
            yield RowsTable(("Session figure", "Value"), id="session-figures")
        yield Static("", id="summary-note", classes="note")
        yield RowsTable(("#",), id="summary-rows")
        yield Footer()

    def show(self, model: CoachModel) -> None:
        super().show(model)
        set_table = self.query_one("#set-figures", RowsTable)
        session_table = self.query_one("#session-figures", RowsTable)
        set_table.border_title = render.summary_title(model.set_summary, "set")
        session_table.border_title = render.summary_title(model.session_summary, "session")
        set_table.set_rows(_figure_rows(model.set_summary))
        session_table.set_rows(_figure_rows(model.session_summary))
        note = ""
        if model.set_summary is None:
            note = "No set finished yet: stop a set (Enter on the live screen) to see its summary."
        summary_note = self.query_one("#summary-note", Static)
        summary_note.update(note)
        summary_note.display = bool(note)
        self._show_rows(model.set_summary)

    def _show_rows(self, summary: Summary | None) -> None:
        rows = summary.rows if summary else []
        names: list[str] = []
        for row in rows:
            names.extend(n for n in row if n not in names and not isinstance(row[n], dict))
        header = ("#", *(" ".join(render.figure_label(n)[:2]).strip() for n in names))
        table = self.query_one("#summary-rows", RowsTable)
        table.set_columns(header)
        table.set_rows(
            [
                (str(i + 1), *(render.figure_value(n, row.get(n), unit=False) for n in names))
                for i, row in enumerate(rows)
            ]
        )
        table.border_title = f"{len(rows)} rows" if rows else "Rows"


def _figure_rows(summary: Summary | None) -> list[tuple[str, ...]]:
    if summary is None:
        return []
    return [
        (render.figure_label(name)[0], render.figure_value(name, value))
        for name, value in summary.figures.items()
    ]


# --------------------------------------------------------------------------------------------


class HistoryScreen(CoachScreen):
    """Stored sessions and a progress plot per exercise."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left_square_bracket", "series(-1)", "Prev exercise"),
        Binding("right_square_bracket", "series(1)", "Next exercise"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._series_index = 0

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        yield ModelPanel(self._draw_progress, id="progress", classes="plot")
        yield Static("", id="history-note", classes="note")
        yield RowsTable(("Started", "Exercise", "Protocol", "Sets", "Reps", "Best", "Status"),
                        id="history")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#history", RowsTable).border_title = "Sessions"

    def _series(self) -> list[Progress]:
        return self.coach.catalogue.progress(self.coach.model.state.athlete)

    def _draw_progress(self, model: CoachModel, width: int, height: int) -> Text:
        series = self._series()
        if not series:
            reason = self.coach.catalogue.unavailable_reason or "No sessions stored yet."
            return Text(reason + " Progress plots appear after the first stored session.",
                        style="dim")
        chosen = series[self._series_index % len(series)]
        points = [(float(i), p.value) for i, p in enumerate(chosen.points)]
        x_range = Range(0.0, max(1.0, len(points) - 1.0))
        y_range = Range.covering([v for _, v in points], minimum_span=1.0).padded(0.15)
        self.query_one("#progress").border_title = (
            f"{chosen.exercise.replace('_', ' ')} · {chosen.figure} ({chosen.unit}) · "
            f"{self._series_index % len(series) + 1}/{len(series)}"
        )
        text = render.plot_text(
            [points], width, max(2, height - 1), x_range, y_range, chosen.unit, "", ("green",),
            x_labels=(chosen.points[0].label, chosen.points[-1].label) if points else None,
            glyphs=self.coach.glyphs,
        )
        text.append("\n" + (chosen.suggestion or ""), style="bold")
        return text

    def show(self, model: CoachModel) -> None:
        super().show(model)
        sessions = self.coach.catalogue.recent_sessions(model.state.athlete, limit=50)
        self.query_one("#history", RowsTable).set_rows(
            [
                (s.started, s.exercise.replace("_", " "), s.protocol.replace("_", " "),
                 str(s.sets), str(s.reps), s.headline, s.status)
                for s in sessions
            ]
        )
        self.query_one("#history-note", Static).update(
            "" if sessions else "No stored sessions to list yet."
        )

    def action_series(self, step: int) -> None:
        self._series_index += step
        self.show(self.coach.model)


# --------------------------------------------------------------------------------------------

CALIBRATION_TEXT: dict[str, tuple[str, str]] = {
    "tare": (
        "1 · Tare the load cell",
        (
            "Unload the rig: nothing pulling on the band or chain. Press Enter to zero the force. "
            "Never tare while loaded."
        ),
    ),
    "known_weight": (
        "2 · Known weight",
        (
            "Hang a known mass from the load cell, type its mass in kg below and press Enter. "
            "Repeat with other masses for a better fit."
        ),
    ),
    "zero_pose": (
        "3 · IMU zero pose",
        (
            "Stand upright and still with the sensor strapped at T12/L1. Press Enter: this pose "
            "becomes 0° of trunk flexion."
        ),
    ),
    "band_profile": (
        "4 · Band profile",
        (
            "With the exercise chosen and no set running, press Enter, then pull the band slowly "
            "through the whole range and back; press Enter again to store its force against "
            "angle. Type a band name below first if you keep several."
        ),
    ),
    "imu_pose": (
        "5 · Accelerometer (box)",
        (
            "Put the sensor in a box and rest it still on one face. Press Enter, then turn the box "
            "onto the next face; six faces calibrate the accelerometer (any order, before or "
            "after the zero pose)."
        ),
    ),
}


class CalibrationScreen(CoachScreen):
    """The calibration wizard: tare, known weight, IMU zero pose, band profile, accelerometer."""

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        with Horizontal(id="wizard"):
            yield OptionList(
                *[Option(title, id=step) for step, (title, _) in CALIBRATION_TEXT.items()],
                id="steps",
            )
            with Vertical(id="step-detail"):
                yield Static("", id="step-text")
                yield Input(placeholder="mass in kg, e.g. 20", id="mass", type="number")
                yield Input(placeholder="band name (optional), e.g. red band", id="band-name",
                            max_length=MAX_BAND_NAME)
                yield ModelPanel(lambda m, w, h: Text(self.coach.ack_line() or ""), id="step-ack")
                yield ModelPanel(
                    lambda m, w, h: render.band_profile_text(
                        newest_profile(self.coach.catalogue.band_profiles(), m.state.exercise),
                        m.state.exercise, w, h, self.coach.glyphs),
                    id="band-stored", classes="plot",
                )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#steps", OptionList).border_title = "Calibration"
        self.query_one("#steps", OptionList).highlighted = 0
        self.query_one("#steps", OptionList).focus()
        self._describe("tare")

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._describe(event.option.id or "tare")

    def _describe(self, step: str) -> None:
        title, body = CALIBRATION_TEXT[step]
        self.query_one("#step-text", Static).update(Text.assemble((title, "bold"), "\n\n", body))
        self.query_one("#mass", Input).display = step == "known_weight"
        self.query_one("#band-name", Input).display = step == "band_profile"
        self.query_one("#band-stored").display = step == "band_profile"

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        step = event.option.id or ""
        if step == "tare":
            self.coach.send(Command("tare"))
        elif step == "known_weight":
            self.query_one("#mass", Input).focus()
        elif step == "band_profile":
            self._band_step()
        elif step in CALIBRATION_STEPS:
            self.coach.send(Command("calibrate", {"step": step}))

    def _band_step(self) -> None:
        """Start a capture, or finish the one running (the daemon knows which). A band name goes
        only to a daemon that announces band profiles: an older one refuses the argument."""
        args: dict[str, object] = {"step": "band_profile"}
        hello = self.coach.model.hello
        name = self.query_one("#band-name", Input).value.strip()
        if name and hello is not None and "band_profile" in hello.features:
            args["name"] = name
        self.coach.send(Command("calibrate", args))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "band-name":
            self._band_step()
            self.query_one("#steps", OptionList).focus()
            return
        try:
            mass_kg = float(event.value)
        except ValueError:
            mass_kg = 0.0
        if mass_kg <= 0:
            self.coach.note("Type the mass in kg (a number above 0), then press Enter.")
            return
        self.coach.send(Command("calibrate", {"step": "known_weight", "mass_kg": mass_kg}))
        event.input.value = ""
        self.query_one("#steps", OptionList).focus()


# --------------------------------------------------------------------------------------------

SIDE_CYCLE = {"none": "left", "left": "right", "right": "none"}


class SettingsScreen(CoachScreen):
    """Mode, side tag and colours; what the coach is attached to."""

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        yield OptionList(id="settings")
        yield Static("", id="about", classes="note")
        yield ModelPanel(lambda m, w, h: Text(self.coach.ack_line() or ""), id="settings-ack")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#settings", OptionList).border_title = "Settings (Enter changes)"

    def show(self, model: CoachModel) -> None:
        super().show(model)
        side = str(model.state.target.get("side", "none"))
        options = [
            Option(f"Mode: {model.state.mode} (training = cues live; tracking = measure only)",
                   id="mode"),
            Option(f"Side tag of this set: {side}", id="side"),
            Option(
                "Look: "
                + ("Linux console (16 colours, no braille)" if self.coach.console_look else "full colour"),
                id="colours",
            ),
        ]
        option_list = self.query_one("#settings", OptionList)
        highlighted = option_list.highlighted
        prompts = [str(option_list.get_option_at_index(i).prompt)
                   for i in range(option_list.option_count)]
        if prompts != [str(o.prompt) for o in options]:
            option_list.clear_options()
            option_list.add_options(options)
            option_list.highlighted = highlighted if highlighted is not None else 0
        hello = model.hello
        about = (
            f"Backend: {render.backend_words(hello.backend)} · daemon {hello.daemon}" if hello
            else "Backend: –"
        ) + f" · hub protocol v{PROTOCOL_VERSION}"
        self.query_one("#about", Static).update(about)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        state = self.coach.model.state
        if event.option.id == "mode":
            mode = "tracking" if state.mode == "training" else "training"
            self.coach.send(Command("set_mode", {"mode": mode}))
        elif event.option.id == "side":
            side = SIDE_CYCLE.get(str(state.target.get("side", "none")), "none")
            self.coach.send(Command("tag_side", {"side": side}))
        elif event.option.id == "colours":
            self.coach.set_console(not self.coach.console_look)
            self.show(self.coach.model)


# --------------------------------------------------------------------------------------------

HELP_KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Everywhere", (
        ("h", "home: athlete, exercise, protocol"),
        ("l", "live set"),
        ("s", "set and session summaries"),
        ("y", "history and progress"),
        ("c", "calibration wizard"),
        ("o", "settings"),
        ("? / F1", "this help"),
        ("q", "quit"),
    )),
    ("Live set", (
        ("Enter", "start / stop the set"),
        ("t", "tare the load cell (rig unloaded)"),
        ("m", "training (cues) / tracking (measure only)"),
    )),
    ("Replay", (
        ("Space", "pause / play"),
        ("← / →", "seek 5 s back / forward"),
        ("+ / −", "speed 0.5× … 8×"),
    )),
    ("Lists", (
        ("↑ / ↓ Enter", "choose"),
        ("Tab", "next list"),
        ("[ / ]", "previous / next exercise (history)"),
    )),
)


class HelpScreen(ModalScreen[None]):
    """The keys, grouped by screen."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("f1", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        text = Text()
        for group, keys in HELP_KEYS:
            text.append(f"{group}\n", style="bold underline")
            for key, meaning in keys:
                text.append(f"  {key:<12}", style="bold cyan")
                text.append(f"{meaning}\n")
        text.append("Esc closes this help.", style="dim")
        with Vertical(id="help"):
            yield Static(text)

    def on_mount(self) -> None:
        self.query_one("#help").border_title = "Keys"

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
