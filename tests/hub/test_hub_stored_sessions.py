"""Sessions run through HubSession with a store, read back by the coach's store catalogue."""

from __future__ import annotations

from pathlib import Path

from spinecoach.core.results import CoreEvent
from spinecoach.engine.store import Store, db_path
from spinecoach.hub.messages import Command
from spinecoach.hub.session import HubSession, SessionChoice
from spinecoach.tui.store_catalogue import StoreCatalogue
from test_hub_session import INFO, LIBRARY, factories, rep, run


def stored_session(state_dir: Path, eccentric_s: float) -> None:
    problems: list[str] = []
    store = Store(db_path(state_dir), on_problem=problems.append)
    events = [CoreEvent("rep", 2.0 + 3.0 * k, rep(3.0 * k, 2.0 + 3.0 * k, eccentric_s))
              for k in range(3)]
    session = HubSession([INFO], "hardware", SessionChoice("Sam", "banded_good_morning"),
                         library=LIBRARY, **factories(events), store=store,
                         problems=problems)
    session.start()

    assert session.handle(Command("start_set"))[0].ok
    run(session, 0.0, 9.5)
    session.finish()
    assert store.close()
    assert problems == []


def test_the_catalogue_lists_stored_sessions_and_progress(tmp_path: Path) -> None:
    now = [0.0]
    catalogue = StoreCatalogue(LIBRARY, tmp_path, clock=lambda: now[0])
    assert catalogue.recent_sessions("Sam") == []
    assert "No sessions stored yet" in catalogue.unavailable_reason
    assert "banded_good_morning" in catalogue.exercises() and "tempo_set" in catalogue.protocols()

    stored_session(tmp_path, eccentric_s=2.5)
    assert catalogue.recent_sessions("Sam") == []  # cached for a few seconds
    now[0] += 10.0
    stored_session(tmp_path, eccentric_s=3.0)
    rows = catalogue.recent_sessions("Sam")
    assert len(rows) == 2 and catalogue.unavailable_reason == ""
    newest = rows[0]
    assert newest.exercise == "banded_good_morning" and newest.protocol == "tempo_set"
    assert newest.sets == 1 and newest.reps == 3 and newest.status == "complete"
    assert newest.headline == "300 N"
    assert catalogue.athletes() == ["Sam"]
    progress = catalogue.progress("Sam")
    assert len(progress) == 1
    series = progress[0]
    assert series.figure == "mean eccentric" and series.unit == "s"
    assert [p.value for p in series.points] == [2.5, 3.0]
    assert series.suggestion
