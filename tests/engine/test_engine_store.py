"""The session store: round trip, exact replay, crash recovery, disk full, read-only, memory bound."""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from engine_helpers import FORCE, IMU, scripted, synthetic_blocks
from spinecoach.config import load_config
from spinecoach.core.results import CoreEvent, HoldResult, RepResult, Tempo
from spinecoach.engine.cues import CueEngine
from spinecoach.engine.library import load_library
from spinecoach.engine.protocols import protocol_params
from spinecoach.engine.reader import StoreReader
from spinecoach.engine.runner import SessionPlan, SessionRunner
from spinecoach.engine.session import verify_set
from spinecoach.engine.store import Store, connect, db_path

LIBRARY = load_library()


class RecordingHaptics:
    def __init__(self) -> None:
        self.played: list[str] = []

    def play(self, name: str) -> None:
        self.played.append(name)


def _hold_script(offset: float = 0.0) -> list[CoreEvent]:
    events = []
    for k, (start, dur) in enumerate([(1.0, 4.5), (8.0, 2.0), (14.0, 4.2)]):
        s = offset + start
        events.append(CoreEvent("hold_start", s))
        events.append(CoreEvent("hold_end", s + dur, HoldResult(s, s + dur, dur, 45.0 + k, 300.0)))
    events.append(CoreEvent("limit", offset + 3.0, {"angle_deg": 22.0, "limit_deg": 25.0}))
    events.append(CoreEvent("rep", offset + 6.0, RepResult(offset + 5.0, offset + 6.0, 33.0,
                                                           Tempo(0.4, 0, 0.5, 0.1))))
    return events


def _plan(sets: int = 1) -> SessionPlan:
    exercise = LIBRARY.get("back_extension_hold")
    params = protocol_params("isometric_holds", exercise, {"holds": 3, "rest_s": 2.0})
    return SessionPlan(exercise, "isometric_holds", params, sets=sets, set_rest_s=1.0,
                       sides=("left", "right"))


def _store(state: Path, **kwargs) -> Store:  # type: ignore[no-untyped-def]
    return Store(db_path(state), commit_interval_s=0.05, **kwargs)


def test_session_round_trip_and_exact_replay(tmp_path: Path) -> None:
    store = _store(tmp_path)
    haptics = RecordingHaptics()
    lines: list[str] = []
    script = _hold_script() + _hold_script(offset=22.0)
    runner = SessionRunner(_plan(sets=2), [IMU, FORCE], cues=CueEngine(), haptics=haptics,
                           store=store, athlete="ana", backend="sim:test",
                           pipeline_factory=scripted(script), on_line=lines.append)
    for block in synthetic_blocks(45.0):
        runner.feed(block)
    report = runner.finish()
    assert store.close()
    assert [s.status for s in report.sets] == ["complete", "complete"]
    assert [s.side for s in report.sets] == ["left", "right"]
    assert haptics.played.count("double") >= 6 and "long" in haptics.played
    assert len(runner.latency.samples_ns) == len(haptics.played) > 0
    assert any("Hold lost" in line for line in lines) and any("Rest over - set 2" in line
                                                                 for line in lines)

    with StoreReader(tmp_path) as reader:
        assert reader.integrity_ok()
        session = reader.sessions()[0]
        assert (session.athlete, session.status, session.backend) == ("ana", "complete", "sim:test")
        sets = reader.sets(session_id=session.id)
        assert len(sets) == 2 and sets[0].side == "left" and sets[0].targets_met is False
        first = sets[0]
        assert len(reader.holds(first.id)) == 3 and reader.holds(first.id)[0].mean_angle_deg == 45.0
        assert len(reader.reps(first.id)) == 1
        assert reader.set_metrics(first.id)["holds_completed"] == 2
        assert any(kind == "band_lost" for _t, kind, _p, _m in reader.cues(first.id))
        assert reader.session_metrics(session.id)["cue_latency_count"] == len(haptics.played)
        # The raw recording is what the engine was fed, sample for sample.
        rec = reader.recording(first.id)
        fed = [b for b in synthetic_blocks(45.0) if b.info.name == "force"]
        stored_force = rec.force["force"]
        n = len(stored_force.index)
        assert np.array_equal(np.concatenate([b.force_n for b in fed])[:n], stored_force.force_n)
        assert stored_force.raw is not None and rec.imu["trunk"].raw is not None
        # Replaying each stored set reproduces every stored figure exactly.
        config = load_config([])
        for row in sets:
            assert verify_set(reader, row, config, scripted(script)) == []
    # ... and a figure that no longer matches its recording is found.
    with sqlite3.connect(db_path(tmp_path)) as conn:
        conn.execute("UPDATE metrics SET value = value + 1e-9 WHERE name = 'longest_hold_s'")
    with StoreReader(tmp_path) as reader:
        differ = verify_set(reader, reader.sets()[0], load_config([]), scripted(script))
        assert len(differ) == 1 and differ[0].startswith("longest_hold_s: stored")


def test_storage_failure_is_reported_fast_and_buffered_then_written(tmp_path: Path) -> None:
    problems: list[tuple[float, str]] = []
    store = _store(tmp_path, on_problem=lambda m: problems.append((time.monotonic(), m)))
    session = store.start_session("ana", "sim:x", "training", {})
    set_id = store.start_set(session, 1, "bridge", "free", None, "free", {}, 0.0, [IMU, FORCE])
    assert store.flush()
    failing = True
    original = store._commit

    def flaky(batch, checkpoint):  # type: ignore[no-untyped-def]
        if failing:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(batch, checkpoint)

    store._commit = flaky  # type: ignore[method-assign]
    t_fault = time.monotonic()
    for k, block in enumerate(synthetic_blocks(2.0)):
        store.add_block(set_id, block)
        if k % 10 == 0:
            store.add_result(set_id, RepResult(k, k + 1.0, 20.0, Tempo(1, 0, 1, 0)))
    deadline = time.monotonic() + 2.0
    while not problems and time.monotonic() < deadline:
        time.sleep(0.01)
    assert problems and problems[0][0] - t_fault < 1.0
    assert "No space left on device" in problems[0][1]
    assert not store.status.ok and store.status.buffered_bytes > 0
    failing = False
    assert store.flush(timeout_s=5.0)
    assert store.status.ok and any("recovered" in m for _t, m in problems)
    store.close()
    with StoreReader(tmp_path) as reader:
        assert len(reader.reps(set_id)) == 8
        assert len(reader.recording(set_id).imu["trunk"].index) == 400


def test_real_disk_full_keeps_results_within_a_bounded_buffer(tmp_path: Path) -> None:
    limit = {"pages": 60}

    def small_disk(path: Path) -> sqlite3.Connection:
        conn = connect(path)
        conn.execute(f"PRAGMA max_page_count = {limit['pages']}")
        return conn

    problems: list[str] = []
    store = _store(tmp_path, connector=small_disk, memory_buffer_bytes=200_000,
                   on_problem=problems.append)
    session = store.start_session("ana", "sim:x", "training", {})
    set_id = store.start_set(session, 1, "bridge", "free", None, "free", {}, 0.0, [IMU, FORCE])
    for k, block in enumerate(synthetic_blocks(20.0)):
        store.add_block(set_id, block)
        if k % 50 == 0:
            store.add_result(set_id, RepResult(k, k + 1.0, 20.0, Tempo(1, 0, 1, 0)))
    assert not store.flush(timeout_s=1.0)
    status = store.status
    assert any("disk full" in p for p in problems)
    assert any("memory buffer full" in p for p in problems)
    assert status.buffered_bytes <= 200_000 and status.dropped_samples > 0
    limit["pages"] = 1_000_000  # space freed: the retry reopens and writes what is kept
    assert store.flush(timeout_s=5.0)
    store.close()
    with StoreReader(tmp_path) as reader:
        assert reader.integrity_ok() and len(reader.reps(set_id)) == 16


def test_read_only_storage_is_reported_and_sampling_goes_on(tmp_path: Path) -> None:
    state = tmp_path / "state"
    connect(db_path(state)).close()
    readonly = {"on": True}

    def maybe_readonly(path: Path) -> sqlite3.Connection:
        return connect(path, readonly=True) if readonly["on"] else connect(path)

    problems: list[str] = []
    store = Store(db_path(state), commit_interval_s=0.05, connector=maybe_readonly,
                  on_problem=problems.append)
    runner = SessionRunner(_plan(), [IMU, FORCE], cues=CueEngine(), store=store,
                           pipeline_factory=scripted(_hold_script()))
    for block in synthetic_blocks(20.0):
        runner.feed(block)  # never raises
    assert runner.finish().sets[0].status == "complete"
    assert not store.flush(timeout_s=0.5)
    assert any("read-only" in p or "readonly" in p for p in problems)
    readonly["on"] = False
    assert store.flush(timeout_s=5.0)
    store.close()
    with StoreReader(state) as reader:
        assert reader.sessions()[0].status == "complete"


def test_state_dir_that_cannot_be_created_is_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    problems: list[str] = []
    store = Store(blocker / "state" / "spinecoach.db", commit_interval_s=0.05,
                  on_problem=problems.append)
    store.start_session("ana", "sim:x", "training", {})
    assert not store.flush(timeout_s=0.3)
    assert problems and "storage problem" in problems[0]
    store.close(timeout_s=0.2)


WRITER = textwrap.dedent(
    """
    import sys
    from spinecoach.core.results import RepResult, Tempo
    from spinecoach.engine.store import Store
    from engine_helpers import FORCE, IMU, synthetic_blocks

    store = Store(sys.argv[1], commit_interval_s=0.01)
    session = store.start_session("ana", "sim:x", "training", {})
    set_id = store.start_set(session, 1, "bridge", "free", None, "free", {}, 0.0, [IMU, FORCE])
    store.flush()
    print(f"set {set_id}", flush=True)
    blocks = list(synthetic_blocks(1.0))
    k = 0
    while True:
        k += 1
        store.add_result(set_id, RepResult(k, k + 1.0, 20.0, Tempo(1, 0, 1, 0)))
        for block in blocks[:4]:
            store.add_block(set_id, block)
        if store.flush():  # True once the batch is committed: acknowledged
            sys.stdout.write(f"batch {k}\\n")
            sys.stdout.flush()
    """
)


def _kill_cycles(tmp_path: Path, cycles: int) -> None:
    db = tmp_path / "kill.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    rng = np.random.default_rng(7)
    for cycle in range(cycles):
        proc = subprocess.Popen([sys.executable, str(script), str(db)], stdout=subprocess.PIPE,
                                text=True, env=env)
        assert proc.stdout is not None
        acked_batches = 0
        set_id = None
        wanted = int(rng.integers(1, 40))
        for line in proc.stdout:
            word, value = line.split()
            if word == "set":
                set_id = int(value)
            elif word == "batch":
                acked_batches = int(value)  # flush() returned: the batch is committed
                if acked_batches >= wanted:
                    break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with _reader(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", cycle
            stored = conn.execute("SELECT COUNT(*) FROM reps WHERE set_id = ?",
                                  (set_id,)).fetchone()[0]
            assert stored >= acked_batches, (cycle, stored, acked_batches)
            status = conn.execute(
                "SELECT status FROM sessions WHERE id = (SELECT session_id FROM sets WHERE id = ?)",
                (set_id,)).fetchone()[0]
            assert status == "interrupted"


class _reader:
    """Open the way the product does (marks dead sessions interrupted)."""

    def __init__(self, db: Path) -> None:
        from spinecoach.engine.store import mark_interrupted

        self.conn = connect(db)
        mark_interrupted(self.conn)

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def test_kill_9_while_writing_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    _kill_cycles(tmp_path, 10)


@pytest.mark.soak
def test_kill_9_soak_200_cycles(tmp_path: Path) -> None:
    _kill_cycles(tmp_path, 200)


def test_concurrent_reader_while_writing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    session = store.start_session("ana", "sim:x", "training", {})
    set_id = store.start_set(session, 1, "bridge", "free", None, "free", {}, 0.0, [IMU])
    stop = threading.Event()

    def write() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            store.add_result(set_id, RepResult(k, k + 1.0, 20.0, Tempo(1, 0, 1, 0)))
            time.sleep(0.001)

    thread = threading.Thread(target=write)
    thread.start()
    time.sleep(0.2)
    with StoreReader(tmp_path) as reader:
        assert reader.integrity_ok() and reader.sessions()[0].status == "running"
    stop.set()
    thread.join()
    store.close()


def test_ctrl_c_stops_the_session_and_keeps_what_was_measured(tmp_path: Path) -> None:
    from spinecoach.config import load_config
    from spinecoach.engine.session import run_session

    def interrupted():  # type: ignore[no-untyped-def]
        for block in synthetic_blocks(20.0):
            if block.t_s[0] > 9.0:
                raise KeyboardInterrupt
            yield block

    store = _store(tmp_path)
    lines: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        run_session(_plan(), [IMU, FORCE], interrupted(), load_config([]), store=store,
                    haptics=None, athlete="ana", backend="sim:x", mode="training",
                    say=lines.append, pipeline_factory=scripted(_hold_script()))
    store.close()
    with StoreReader(tmp_path) as reader:
        session = reader.sessions()[0]
        assert session.status == "stopped"
        (row,) = reader.sets(session_id=session.id)
        assert row.status == "stopped" and len(reader.holds(row.id)) == 1
    assert any("set 1 stopped" in line for line in lines)


def test_results_closed_only_at_finish_reach_the_protocol_and_the_store(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from engine_helpers import ScriptedPipeline

    script = _hold_script()[:5]  # two holds reported live, the third started
    pipelines: list[ScriptedPipeline] = []

    def factory(streams, exercise):  # type: ignore[no-untyped-def]
        pipeline = ScriptedPipeline(script)
        live = [e.data for e in script if e.kind == "hold_end"]
        last = HoldResult(14.0, 18.2, 4.2)  # still open when the data ended
        pipeline.at_finish = SimpleNamespace(reps=[], holds=[*live, last], contractions=[])
        pipelines.append(pipeline)
        return pipeline

    store = _store(tmp_path)
    runner = SessionRunner(_plan(), [IMU, FORCE], cues=CueEngine(), store=store,
                           pipeline_factory=factory)
    for block in synthetic_blocks(16.0):
        runner.feed(block)
    report = runner.finish()
    store.close()
    assert pipelines[0].finished
    assert report.sets[0].figures()["holds_attempted"] == 3
    with StoreReader(tmp_path) as reader:
        assert [h.start_s for h in reader.holds(report.sets[0].set_id)] == [1.0, 8.0, 14.0]
