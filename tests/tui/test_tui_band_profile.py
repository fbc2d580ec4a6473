"""The stored band profile in the coach: the reference curve under the live set's reps, the
wizard's band step (stored profile, name, start/finish), and a coach attached to a daemon whose
lists (athletes, sessions, band profiles) come from the daemon's replies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from spinecoach.hub.messages import FEATURES, Ack, Command, Hello, Reply, Request
from spinecoach.hub.queries import rows_json
from spinecoach.tui import render
from spinecoach.tui.app import CoachApp
from spinecoach.tui.catalogue import EmptyCatalogue, SessionRow
from spinecoach.tui.feed import Posted, ScriptedFeed
from spinecoach.tui.hub_catalogue import HubCatalogue
from spinecoach.tui.model import CoachModel
from spinecoach.tui.screens import CalibrationScreen, HomeScreen
from spinecoach.tui.widgets import ModelPanel, RowsTable
from textual.widgets import Input, OptionList
from tui_fixture_session import band_profile, catalogue, session_messages, wait_drawn

SIZE = (80, 24)


def band_catalogue():  # type: ignore[no-untyped-def]
    fixed = catalogue()
    fixed.bands = [band_profile(), band_profile("bridge", "hip band")]
    return fixed


def panel_text(app: CoachApp, selector: str) -> str:
    return str(app.screen.query_one(selector, ModelPanel).render())


def test_the_reference_curve_is_drawn_under_the_reps_in_its_own_colour() -> None:
    model = CoachModel()
    for message in session_messages():
        model.apply(message)
    without = render.force_angle_text(model, 40, 10)
    with_band = render.force_angle_text(model, 40, 10, band=band_profile())
    styles = {str(span.style) for span in with_band.spans}
    assert render.BAND_STYLE in styles and render.BAND_STYLE not in {
        str(span.style) for span in without.spans}
    # The reps stay on top: their newest colour is still drawn.
    assert render.SERIES_STYLES[-1] in styles
    alone = render.force_angle_text(CoachModel(), 40, 10, band=band_profile())
    assert render.BAND_STYLE in {str(span.style) for span in alone.spans}


def test_live_screen_names_the_band_of_the_exercise_trained() -> None:
    async def run() -> None:
        app = CoachApp(ScriptedFeed(session_messages()), band_catalogue())
        async with app.run_test(size=SIZE) as pilot:
            await wait_drawn(pilot)
            assert app.screen.query_one("#force-angle").border_title == (
                "Force · angle · white: red band")
        # Another exercise's band is never drawn under this one's reps.
        plain = CoachApp(ScriptedFeed(session_messages()), catalogue())
        async with plain.run_test(size=SIZE) as pilot:
            await wait_drawn(pilot)
            assert plain.screen.query_one("#force-angle").border_title == (
                "Force · angle (last reps)")

    asyncio.run(run())


def test_wizard_band_step_shows_the_stored_profile_and_sends_start_and_name() -> None:
    async def run() -> None:
        messages: list[Posted] = [*session_messages(),
                                  Hello("0.2.0", "hardware", features=FEATURES)]
        feed = ScriptedFeed(messages)
        app = CoachApp(feed, band_catalogue())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("c")
            await wait_drawn(pilot)
            screen = app.screen
            assert isinstance(screen, CalibrationScreen)
            assert not screen.query_one("#band-name", Input).display
            await pilot.press("down", "down", "down")
            await wait_drawn(pilot)
            assert screen.query_one("#band-name", Input).display
            stored = panel_text(app, "#band-stored")
            assert "Stored band: red band" in stored
            assert "0–61° · 31 bins of 2° · stiffness 3.50 N/°" in stored
            assert "Captured 2026-11-21 17:40 UTC" in stored
            assert "pull the band slowly" in str(screen.query_one("#step-text").render())
            await pilot.press("enter")  # starts (or finishes: the daemon knows which)
            screen.query_one("#band-name", Input).focus()
            await pilot.press(*"red band", "enter")
            await wait_drawn(pilot)
            assert feed.sent == [
                Command("calibrate", {"step": "band_profile"}),
                Command("calibrate", {"step": "band_profile", "name": "red band"}),
            ]
            assert screen.query_one("#steps", OptionList).has_focus

    asyncio.run(run())


def test_wizard_sends_no_band_name_to_an_older_daemon() -> None:
    async def run() -> None:
        feed = ScriptedFeed(session_messages())  # its hello announces no features
        app = CoachApp(feed, EmptyCatalogue())
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("c")
            await wait_drawn(pilot)
            app.screen.query_one("#band-name", Input).value = "red band"
            app.screen.query_one("#steps", OptionList).highlighted = 3
            await wait_drawn(pilot)
            assert "No band profile stored for hip hinge yet." in panel_text(app, "#band-stored")
            app.screen.query_one("#steps", OptionList).focus()
            await pilot.press("enter")
            assert feed.sent == [Command("calibrate", {"step": "band_profile"})]

    asyncio.run(run())


@dataclass
class DaemonFeed(ScriptedFeed):
    """A scripted daemon that also answers requests, like one with the ``queries`` feature."""

    answers: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.requests: list[Request] = []

    def request(self, request: Request) -> None:
        self.requests.append(request)
        self._answers.append(Reply(request.id, request.query, True, "",
                                   self.answers.get(request.query, {})))


def test_a_coach_attached_to_a_daemon_lists_the_daemons_store() -> None:
    rows = [SessionRow("2026-11-21 18:05", "hip_hinge", "tempo_set", 2, 16, "380 N")]
    feed = DaemonFeed([*session_messages(), Hello("0.2.0", "hardware", features=FEATURES)],
                      answers={
                          "catalogue": {"exercises": ["hip_hinge", "bridge"],
                                        "protocols": ["tempo_set"], "athletes": ["Sam", "Kim"]},
                          "recent_sessions": {"sessions": rows_json(rows)},
                          "band_profiles": {"profiles": [band_profile().to_json()]},
                      })

    async def run() -> None:
        app = CoachApp(feed, HubCatalogue(feed.request, EmptyCatalogue("own store empty")))
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(3):  # the band profiles come a pull after the asking
                await pilot.pause(0.1)
                await wait_drawn(pilot)
            assert app.screen.query_one("#force-angle").border_title.endswith("red band")
            await pilot.press("h")
            for _ in range(3):  # the answers come a pull after the asking
                await pilot.pause(0.1)
                await wait_drawn(pilot)
            screen = app.screen
            assert isinstance(screen, HomeScreen)
            athletes = screen.query_one("#athletes", OptionList)
            assert [athletes.get_option_at_index(i).id for i in range(athletes.option_count)] == [
                "Sam", "Kim"]
            table = screen.query_one("#recent", RowsTable)
            assert table.row_count == 1
            assert "380 N" in [str(c) for c in table.get_row_at(0)]
        queries = {r.query for r in feed.requests}
        assert {"catalogue", "recent_sessions", "band_profiles"} <= queries

    asyncio.run(run())


def test_a_stored_capture_refreshes_the_band_profiles() -> None:
    sent: list[Request] = []
    hub = HubCatalogue(sent.append, EmptyCatalogue())
    hub.observe(Hello("0.2.0", "hardware", features=FEATURES))
    assert hub.band_profiles() == []
    hub.observe(Reply(sent[-1].id, "band_profiles", True, "",
                      {"profiles": [band_profile().to_json()]}))
    assert hub.band_profiles() == [band_profile()]
    asked = len(sent)
    assert hub.band_profiles() == [band_profile()] and len(sent) == asked  # held
    hub.observe(Ack("calibrate", True, "band profile stored: ..."))
    assert hub.band_profiles() == [band_profile()]  # still shown while asked again
    assert len(sent) == asked + 1 and sent[-1].query == "band_profiles"
    # A garbled answer is said, not raised.
    hub.observe(Reply(sent[-1].id, "band_profiles", True, "", {"profiles": [{"name": 1}]}))
    hub.recent_sessions("Sam")
    hub.observe(Reply(sent[-1].id, "recent_sessions", False, "cannot read the store"))
    assert "could not list recent sessions: cannot read the store" in hub.unavailable_reason


def test_backends_are_named_in_words() -> None:
    assert render.backend_words("sim:good_morning_tempo") == "simulated rig: good morning tempo"
    assert render.backend_words("replay:tests/fixtures/sorensen_hold.screc") == (
        "recording sorensen_hold.screc")
    assert render.backend_words("hardware") == "hardware"


def test_attached_to_an_older_daemon_the_home_screen_says_whose_sessions_it_lists() -> None:
    async def run() -> None:
        feed = DaemonFeed(session_messages())  # hello without features: an older daemon
        app = CoachApp(feed, HubCatalogue(feed.request, catalogue()))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("h")
            await wait_drawn(pilot)
            note = str(app.screen.query_one("#home-note").render())
            assert note.startswith("The daemon (spinecoach 0.1.0) is older and cannot send its "
                                   "sessions: listing this user's own store instead.")
            assert "once a set is stored" not in note  # sessions are listed: no such hint
            assert app.screen.query_one("#recent", RowsTable).row_count == 3
        assert feed.requests == []

    asyncio.run(run())
