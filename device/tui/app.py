"""The Textual coach: one app, a feed it pulls at a bounded rate, screens drawn from one model."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar

from spinecoach.hub.messages import Ack, Command
from spinecoach.tui.catalogue import Catalogue, EmptyCatalogue
from spinecoach.tui.feed import CoachFeed
from spinecoach.tui.model import CoachModel
from spinecoach.tui.render import CONSOLE_GLYPHS, UNICODE_GLYPHS, Glyphs
from spinecoach.tui.screens import (
    CalibrationScreen,
    CoachScreen,
    HelpScreen,
    HistoryScreen,
    HomeScreen,
    LiveScreen,
    SettingsScreen,
    SummaryScreen,
)
from textual.app import App, ScreenStackError
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen

#: Most redraws per second: the pull timer's rate. The daemon sends 30 frames a second; 15 Hz
#: shows every second one, so the force-time plot advances by an even 67 ms of sample time per
#: redraw (at 20 Hz it would alternate one and two frames) and the hold timer's tenths run on
#: visibly; half the redraws of 30 Hz (frames in between are folded into the next redraw, none
#: is lost). On a Pi the coach shares two cores with the daemon.
MAX_REDRAW_HZ = 15.0
#: Theme of the Linux-console look: the 16 ANSI colours only.
ANSI_THEME = "ansi-dark"
FULL_THEME = "textual-dark"


def wants_console(environ: dict[str, str] | None = None) -> bool:
    """True on the Linux console (TERM=linux: 16 colours, a 512-glyph font), or when asked for
    with SPINECOACH_CONSOLE=1."""
    env = os.environ if environ is None else environ
    return env.get("TERM", "") == "linux" or env.get("SPINECOACH_CONSOLE", "") == "1"


class CoachApp(App[int]):
    """The coach. ``feed`` supplies hub messages; ``catalogue`` the library and stored sessions."""

    CSS_PATH = "coach.tcss"
    # Everything has a key of its own (see the help screen); the palette would only add noise.
    ENABLE_COMMAND_PALETTE = False
    TITLE = "spinecoach"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "live": LiveScreen,
        "home": HomeScreen,
        "summary": SummaryScreen,
        "history": HistoryScreen,
        "calibrate": CalibrationScreen,
        "settings": SettingsScreen,
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("f1", "help", "Help", show=False),
        Binding("h", "switch_mode('home')", "Home"),
        Binding("l", "switch_mode('live')", "Live"),
        Binding("s", "switch_mode('summary')", "Summary"),
        Binding("y", "switch_mode('history')", "History"),
        Binding("c", "switch_mode('calibrate')", "Calibrate"),
        Binding("o", "switch_mode('settings')", "Settings"),
        Binding("q", "quit", "Quit"),
        Binding("space", "pause", "Pause", show=False),
        Binding("left", "seek(-5)", "−5 s", show=False),
        Binding("right", "seek(5)", "+5 s", show=False),
        Binding("plus,equals_sign", "speed(1)", "Faster", show=False),
        Binding("minus,underscore", "speed(-1)", "Slower", show=False),
    ]

    def __init__(
        self,
        feed: CoachFeed,
        catalogue: Catalogue | None = None,
        *,
        console: bool = False,
        start_mode: str = "live",
    ) -> None:
        super().__init__()
        self.feed = feed
        self.catalogue: Catalogue = catalogue or EmptyCatalogue()
        self.model = CoachModel()
        self.console_look = console
        self.redraws = 0
        self._start_mode = start_mode
        self._drawn: tuple[int, str] | None = None
        self._note = ""

    # --- lifecycle ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.theme = ANSI_THEME if self.console_look else FULL_THEME
        self.switch_mode(self._start_mode)
        self.feed.start()
        self.set_interval(1.0 / MAX_REDRAW_HZ, self.pull)

    def on_unmount(self) -> None:
        self.feed.close()

    def pull(self) -> None:
        """Fold everything the feed posted into the model; redraw the screen once if it changed.

        A feed whose session failed (``feed.error``) ends the app; the launcher raises the error.
        """
        if getattr(self.feed, "error", None) is not None:
            self.exit(1)
            return
        observe = getattr(self.catalogue, "observe", None)
        for item in self.feed.poll():
            self.model.apply(item)
            if isinstance(item, Ack):
                self._note = ""
            if observe is not None and observe(item):
                self._drawn = None  # the daemon's lists changed: redraw
        drawn = (self.model.revision, self.replay_label())
        try:
            screen = self.screen
        except ScreenStackError:
            return  # the app is closing: its last screen is gone
        if drawn == self._drawn or not isinstance(screen, CoachScreen) or not screen.ready:
            return
        self._drawn = drawn
        self.redraws += 1
        try:
            screen.show(self.model)
        except NoMatches:
            # Mid-compose or mid-teardown (Textual mounts and removes children in steps): the
            # next pull draws it whole.
            self.invalidate()

    # --- what screens ask of the app ---------------------------------------------------------

    def send(self, command: Command) -> None:
        self.feed.send(command)

    @property
    def up_to_date(self) -> bool:
        """The screen shows the model as it is now (tests wait for this instead of sleeping).

        True for screens that do not draw the model (help) and once the app has closed."""
        try:
            screen = self.screen
        except ScreenStackError:
            return True
        if not isinstance(screen, CoachScreen):
            return True
        return screen.ready and self._drawn == (self.model.revision, self.replay_label())

    def invalidate(self) -> None:
        """Redraw at the next pull even if nothing changed (a screen appeared)."""
        self._drawn = None

    def note(self, text: str) -> None:
        """Show a one-line hint in the command-answer slot."""
        self._note = text
        self.invalidate()

    def ack_line(self) -> str:
        """The last command answer (or hint) as one line."""
        if self._note:
            return self._note
        ack = self.model.last_ack
        if ack is None:
            return ""
        mark = self.glyphs.ok if ack.ok else self.glyphs.fail
        return f"{mark} " + (ack.message or ack.cmd.replace("_", " "))

    @property
    def glyphs(self) -> Glyphs:
        """Symbols for this terminal: console-font-safe ones in the console look."""
        return CONSOLE_GLYPHS if self.console_look else UNICODE_GLYPHS

    def replay_label(self) -> str:
        """Position, speed and pause state of a replay ("" when live)."""
        replay = self.feed.replay
        if replay is None:
            return ""
        glyphs = self.glyphs
        if replay.finished:
            state = f"{glyphs.end} end"
        else:
            state = f"{glyphs.pause} paused" if replay.paused else glyphs.play
        return (
            f"{state} {replay.position_s:.0f}/{replay.duration_s:.0f} s {replay.speed:g}×"
        )

    def set_console(self, console: bool) -> None:
        """Switch the Linux-console look (16 ANSI colours, console-font glyphs) on or off."""
        self.console_look = console
        self.theme = ANSI_THEME if console else FULL_THEME
        self.invalidate()

    # --- actions -----------------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("pause", "seek", "speed"):
            return self.feed.replay is not None
        return True

    def action_pause(self) -> None:
        if self.feed.replay is not None:
            self.feed.replay.toggle_pause()
            self.pull()

    def action_seek(self, delta_s: float) -> None:
        if self.feed.replay is not None:
            self.feed.replay.seek(float(delta_s))
            self.pull()

    def action_speed(self, steps: int) -> None:
        if self.feed.replay is not None:
            self.feed.replay.change_speed(int(steps))
            self.pull()

    # --- attached to a daemon ----------------------------------------------------------------

    def link_label(self) -> str:
        """The daemon connection's trouble for the banner ("" when attached or in-process).

        A socket feed clears the model when the link drops or comes back, so the screen is
        redrawn with the new label without a clock of its own."""
        return str(getattr(self.feed, "link", "") or "")
