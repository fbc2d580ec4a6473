"""Pilot tests: every screen opens by its key, shows the fixed session, and its keys act."""

from __future__ import annotations

import asyncio

import pytest
from spinecoach.hub.messages import Ack, Command, Frame, State
from spinecoach.tui.app import MAX_REDRAW_HZ, CoachApp, wants_console
from spinecoach.tui.catalogue import EmptyCatalogue
from spinecoach.tui.feed import ScriptedFeed
from spinecoach.tui.screens import (
    CalibrationScreen,
    HelpScreen,
    HistoryScreen,
    HomeScreen,
    LiveScreen,
    SettingsScreen,
    SummaryScreen,
)
from spinecoach.tui.widgets import ModelPanel, RowsTable
from textual.widgets import Input, OptionList
from tui_fixture_session import catalogue, session_messages, wait_drawn

SIZE = (80, 24)


def make_app(demo: bool = False, empty: bool = False) -> tuple[CoachApp, ScriptedFeed]:
    feed = ScriptedFeed(session_messages(demo=demo))
    app = CoachApp(feed, EmptyCatalogue() if empty else catalogue())
    return app, feed


def panel_text(app: CoachApp, selector: str) -> str:
    panel = app.screen.query_one(selector, ModelPanel)
    return str(panel.render())


async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
    """Wait until the pull timer has drawn the current screen from the current model."""
    await wait_drawn(pilot)


def test_screen_keys_switch_between_all_screens() -> None:
    async def run() -> None:
        app, _ = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, LiveScreen)
            for key, screen_type in [
                ("h", HomeScreen), ("s", SummaryScreen), ("y", HistoryScreen),
                ("c", CalibrationScreen), ("o", SettingsScreen), ("l", LiveScreen),
            ]:
                await pilot.press(key)
                await settle(pilot)
                assert isinstance(app.screen, screen_type), key
            await pilot.press("question_mark")
            await settle(pilot)
            assert isinstance(app.screen, HelpScreen)
            assert "start / stop the set" in str(app.screen.query_one("Static").render())
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(app.screen, LiveScreen)
            await pilot.press("f1")
            await settle(pilot)
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("q")  # q closes the help rather than quitting
            await settle(pilot)
            assert isinstance(app.screen, LiveScreen)
            await pilot.press("q")
            await pilot.pause()
        assert app.return_code == 0

    asyncio.run(run())


def test_live_screen_shows_the_set_and_its_keys_send_commands() -> None:
    async def run() -> None:
        app, feed = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            status = panel_text(app, ".status")
            assert "Sam" in status and "hip hinge" in status and "set 2 rep 3/8" in status
            assert "RUNNING" in status
            assert "Tempo 3-1-1-1" in panel_text(app, "#tempo")
            assert "▶Lower" in panel_text(app, "#tempo")
            assert "Lower slower: 2.0 s" in panel_text(app, "#cues")
            assert "last 4.2 s" in panel_text(app, "#hold")
            sensors = panel_text(app, "#sensors")
            assert "force 318 Hz degraded gaps 12" in sensors and "trunk 1000 Hz" in sensors
            assert "⣀" in panel_text(app, "#force-time") or "⠉" in panel_text(app, "#force-time")
            assert "60°" in panel_text(app, "#force-angle")
            table = app.screen.query_one("#reps", RowsTable)
            assert table.row_count == 3
            assert table.get_row_at(1)[2] == "2.0"  # the fast lowering of rep 2
            assert not app.screen.has_class("demo")

            await pilot.press("enter", "t", "m")
            await settle(pilot)
            assert feed.sent == [
                Command("stop_set"), Command("tare"), Command("set_mode", {"mode": "tracking"})
            ]
            assert "set mode sent" in panel_text(app, "#sensors")

    asyncio.run(run())


def test_demo_banner_shows_only_for_the_demo() -> None:
    async def run() -> None:
        app, _ = make_app(demo=True)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.screen.has_class("demo")
            banner = app.screen.query_one(".banner")
            assert banner.display and "no sensors found" in str(banner.render())

    asyncio.run(run())


def test_home_screen_selects_athlete_exercise_and_protocol() -> None:
    async def run() -> None:
        app, feed = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("h")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, HomeScreen)
            assert screen.query_one("#recent", RowsTable).row_count == 3
            assert screen.query_one("#exercises", OptionList).option_count == 4
            screen.query_one("#athletes", OptionList).focus()
            await pilot.press("down", "enter", "tab", "down", "enter", "tab", "enter")
            await settle(pilot)
            assert feed.sent == [
                Command("select_athlete", {"name": "Alex"}),
                Command("select_exercise", {"name": "back_extension_hold"}),
                Command("select_protocol", {"name": "tempo_set"}),
            ]
            await pilot.press("g")
            await settle(pilot)
            assert isinstance(app.screen, LiveScreen)

    asyncio.run(run())


def test_screens_without_a_store_say_why_they_are_empty() -> None:
    async def run() -> None:
        app, _ = make_app(empty=True)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("h")
            await settle(pilot)
            note = str(app.screen.query_one("#home-note").render())
            assert "No session store" in note
            await pilot.press("y")
            await settle(pilot)
            assert "Progress plots appear after the first stored session" in panel_text(
                app, "#progress"
            )
            assert "No stored sessions" in str(app.screen.query_one("#history-note").render())

    asyncio.run(run())


def test_summary_screen_shows_set_and_session_figures() -> None:
    async def run() -> None:
        app, _ = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("s")
            await settle(pilot)
            figures = app.screen.query_one("#set-figures", RowsTable)
            assert figures.border_title == "Set 1 · hip hinge"
            labels = {figures.get_row_at(i)[0]: figures.get_row_at(i)[1]
                      for i in range(figures.row_count)}
            assert labels["Peak force"] == "372 N"
            assert labels["Mean eccentric"] == "2.9 s"
            assert labels["Velocity loss"] == "12 %"
            assert labels["Band stiffness"] == "4.1 N/°"
            assert app.screen.query_one("#summary-rows", RowsTable).row_count == 8
            session = app.screen.query_one("#session-figures", RowsTable)
            assert session.row_count == 4

    asyncio.run(run())


def test_history_screen_pages_through_progress_series() -> None:
    async def run() -> None:
        app, _ = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("y")
            await settle(pilot)
            assert "hip hinge · peak force (N) · 1/2" in str(
                app.screen.query_one("#progress").border_title
            )
            assert "slow the lowering to 4 s" in panel_text(app, "#progress")
            await pilot.press("right_square_bracket")
            await settle(pilot)
            assert "back extension hold" in str(app.screen.query_one("#progress").border_title)
            await pilot.press("left_square_bracket")
            await settle(pilot)
            assert "1/2" in str(app.screen.query_one("#progress").border_title)
            assert app.screen.query_one("#history", RowsTable).row_count == 3

    asyncio.run(run())


def test_calibration_wizard_runs_every_step() -> None:
    async def run() -> None:
        app, feed = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("c")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, CalibrationScreen)
            screen.query_one("#steps", OptionList).focus()
            assert "Never tare while loaded" in str(screen.query_one("#step-text").render())
            assert not screen.query_one("#mass", Input).display
            await pilot.press("enter")  # tare
            await pilot.press("down", "enter")  # known weight: focuses the mass input
            await settle(pilot)
            mass = screen.query_one("#mass", Input)
            assert mass.display and mass.has_focus
            await pilot.press("enter")  # nothing typed: a hint, no command
            await settle(pilot)
            assert "Type the mass in kg" in panel_text(app, "#step-ack")
            await pilot.press("2", "0", "enter")
            await pilot.press("down", "enter", "down", "enter")
            await settle(pilot)
            assert feed.sent == [
                Command("tare"),
                Command("calibrate", {"step": "known_weight", "mass_kg": 20.0}),
                Command("calibrate", {"step": "zero_pose"}),
                Command("calibrate", {"step": "band_profile"}),
            ]
            assert "calibrate sent" in panel_text(app, "#step-ack")

    asyncio.run(run())


def test_settings_toggle_mode_side_and_colours() -> None:
    async def run() -> None:
        app, feed = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("o")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, SettingsScreen)
            assert "Backend: hardware · daemon 0.1.0 · hub protocol v1" in str(
                screen.query_one("#about").render()
            )
            screen.query_one("#settings", OptionList).focus()
            await pilot.press("enter", "down", "enter", "down", "enter")
            await settle(pilot)
            assert feed.sent == [
                Command("set_mode", {"mode": "tracking"}),
                Command("tag_side", {"side": "right"}),
            ]
            assert app.console_look and app.theme == "ansi-dark"
            options = screen.query_one("#settings", OptionList)
            assert "Linux console" in str(options.get_option_at_index(2).prompt)

    asyncio.run(run())


def test_replay_keys_are_inactive_without_a_replay() -> None:
    async def run() -> None:
        app, _ = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.check_action("pause", ()) is False
            await pilot.press("space", "left", "plus")  # nothing to control: no error
            await settle(pilot)
            assert app.replay_label() == ""

    asyncio.run(run())


def test_one_pull_folds_many_messages_into_one_redraw() -> None:
    async def run() -> None:
        app, _ = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            before = app.redraws
            assert before >= 1
            extra = [Frame(t_s=100 + i / 30, angle_deg=1.0, speed_dps=0.0, force_n=5.0)
                     for i in range(90)]
            app.feed.messages = extra  # type: ignore[attr-defined]
            app.feed._delivered = False  # type: ignore[attr-defined]
            app.pull()
            assert app.redraws == before + 1
            app.pull()  # nothing new: no redraw
            assert app.redraws == before + 1
            assert app.model.latest is not None and app.model.latest.t_s == pytest.approx(103 - 1 / 30)

    asyncio.run(run())
    assert MAX_REDRAW_HZ <= 30


def test_refused_commands_show_why() -> None:
    async def run() -> None:
        feed = ScriptedFeed([State(athlete="Sam"), Ack("start_set", False, "no exercise chosen")])
        app = CoachApp(feed)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert "✗ no exercise chosen" in panel_text(app, "#sensors")
            assert "waiting for the first samples" in panel_text(app, "#readout")
            assert "waiting for data" in panel_text(app, "#force-time")

    asyncio.run(run())


def test_the_console_look_is_chosen_on_the_linux_console() -> None:
    assert wants_console({"TERM": "linux"})
    assert not wants_console({"TERM": "xterm-256color"})
    assert wants_console({"TERM": "xterm", "SPINECOACH_CONSOLE": "1"})
