"""Sessions in SQLite: athletes, sessions, sets, reps, holds, contractions, metrics, cues and the
raw recording of every set.

Writing never blocks sampling. The engine queues rows; one writer thread commits them in batches
(at most every ``commit_interval_s``, at once on :meth:`Store.flush`), in WAL mode with
``synchronous=NORMAL``: a committed batch survives the process being killed (it is in the WAL),
and a crash leaves the database consistent. A batch is *acknowledged* when its COMMIT has
returned (:attr:`StoreStatus.acked_batches`, the ``on_commit`` callback). The WAL is
checkpointed (PASSIVE, so readers are never blocked) at the end of every set.

When storage fails (disk full, read-only file system, the directory vanished) the problem is
reported through ``on_problem`` at the first failed commit (within ``commit_interval_s`` of the
write), nothing raises into the engine, and the rows stay queued in memory and are retried every
``retry_interval_s``. The queue is bounded (``memory_buffer_bytes``): beyond it the oldest raw
sample chunks are dropped first (counted in :attr:`StoreStatus.dropped_samples`); results
(reps, holds, metrics) are kept.

A session still marked ``running`` whose process is gone (killed, power cut) is marked
``interrupted`` — with its running sets — the next time the store is opened; everything it had
committed stays as it was.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from spinecoach.core.results import ContractionResult, HoldResult, RepResult
from spinecoach.drivers.blocks import Block, ImuBlock, StreamInfo
from spinecoach.engine.protocols import Metric
from spinecoach.errors import StorageError

DB_NAME = "spinecoach.db"
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS athletes (
    name TEXT PRIMARY KEY, created_utc TEXT NOT NULL, profile_json TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY, athlete TEXT NOT NULL, started_utc TEXT NOT NULL, ended_utc TEXT,
    status TEXT NOT NULL, backend TEXT NOT NULL DEFAULT '', mode TEXT NOT NULL DEFAULT '',
    pid INTEGER, info_json TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS session_metrics (
    session_id INTEGER NOT NULL, name TEXT NOT NULL, value REAL, unit TEXT NOT NULL,
    PRIMARY KEY (session_id, name));
CREATE TABLE IF NOT EXISTS sets (
    id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL, number INTEGER NOT NULL,
    exercise TEXT NOT NULL, protocol TEXT NOT NULL, side TEXT, prescription TEXT NOT NULL,
    params_json TEXT NOT NULL, start_s REAL NOT NULL, end_s REAL, status TEXT NOT NULL,
    targets_met INTEGER, started_utc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sets_by_session ON sets (session_id);
CREATE INDEX IF NOT EXISTS sets_by_exercise ON sets (exercise);
CREATE TABLE IF NOT EXISTS reps (
    set_id INTEGER NOT NULL, number INTEGER NOT NULL, start_s REAL, end_s REAL, rom_deg REAL,
    eccentric_s REAL, concentric_s REAL, data_json TEXT NOT NULL, PRIMARY KEY (set_id, number));
CREATE TABLE IF NOT EXISTS holds (
    set_id INTEGER NOT NULL, number INTEGER NOT NULL, start_s REAL, end_s REAL, duration_s REAL,
    end_reason TEXT, data_json TEXT NOT NULL, PRIMARY KEY (set_id, number));
CREATE TABLE IF NOT EXISTS contractions (
    set_id INTEGER NOT NULL, number INTEGER NOT NULL, onset_s REAL, end_s REAL,
    peak_force_n REAL, peak_rfd_n_per_s REAL, data_json TEXT NOT NULL,
    PRIMARY KEY (set_id, number));
CREATE TABLE IF NOT EXISTS metrics (
    set_id INTEGER NOT NULL, name TEXT NOT NULL, idx INTEGER NOT NULL, value REAL,
    unit TEXT NOT NULL, PRIMARY KEY (set_id, name, idx));
CREATE TABLE IF NOT EXISTS cues (
    set_id INTEGER NOT NULL, t_s REAL NOT NULL, kind TEXT NOT NULL, pattern TEXT,
    message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS cues_by_set ON cues (set_id);
CREATE TABLE IF NOT EXISTS streams (
    set_id INTEGER NOT NULL, name TEXT NOT NULL, info_json TEXT NOT NULL,
    PRIMARY KEY (set_id, name));
CREATE TABLE IF NOT EXISTS chunks (
    set_id INTEGER NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL, ord INTEGER NOT NULL,
    count INTEGER NOT NULL,
    index_blob BLOB NOT NULL, data_blob BLOB NOT NULL, valid_blob BLOB NOT NULL, raw_blob BLOB,
    gaps_json TEXT NOT NULL, PRIMARY KEY (set_id, stream, seq));
"""

#: Whole-set metrics are stored with this index (SQLite treats NULLs in a key as distinct).
SET_LEVEL = 0

def utc_now() -> str:
    """Wall-clock UTC timestamp for people (never used by detection)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def db_path(state_dir: Path) -> Path:
    return state_dir / DB_NAME


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the database with the store's pragmas (creating folder and schema when writing)."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0, isolation_level=None)
        return conn
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def ensure_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_interrupted(conn: sqlite3.Connection) -> int:
    """Mark running sessions whose process is gone (and their running sets) as interrupted."""
    rows = conn.execute("SELECT id, pid FROM sessions WHERE status = 'running'").fetchall()
    dead = [sid for sid, pid in rows if not pid_alive(pid)]
    if dead:
        conn.execute("BEGIN IMMEDIATE")
        for sid in dead:
            conn.execute("UPDATE sessions SET status = 'interrupted' WHERE id = ?", (sid,))
            conn.execute(
                "UPDATE sets SET status = 'interrupted' WHERE session_id = ? AND status = 'running'",
                (sid,),
            )
        conn.execute("COMMIT")
    return len(dead)


def real(value: float | None) -> float | None:
    """SQLite stores NaN as NULL; keep that explicit (read back with :func:`unreal`)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def unreal(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def result_json(result: Any) -> str:
    return json.dumps(asdict(result), allow_nan=True, separators=(",", ":"))


@dataclass(frozen=True)
class StoreStatus:
    """What the store can tell the coach screen about itself."""

    ok: bool
    problem: str | None
    buffered_bytes: int
    dropped_samples: int
    acked_batches: int


@dataclass
class _Op:
    sql: str
    params: Sequence[Any]
    size: int = 64
    #: Raw-sample chunk: may be dropped when the memory buffer is full.
    samples: int = 0
    #: Queue order, set by the store.
    seq: int = 0


class Store:
    """The writer side of the session database (one per process)."""

    def __init__(
        self,
        path: Path,
        *,
        commit_interval_s: float = 0.5,
        memory_buffer_bytes: int = 64 * 1024 * 1024,
        retry_interval_s: float = 1.0,
        keep_raw: bool = True,
        on_problem: Callable[[str], None] | None = None,
        on_commit: Callable[[int], None] | None = None,
        connector: Callable[[Path], sqlite3.Connection] = connect,
    ) -> None:
        self.path = Path(path)
        self.commit_interval_s = commit_interval_s
        self.memory_buffer_bytes = memory_buffer_bytes
        self.retry_interval_s = retry_interval_s
        self.keep_raw = keep_raw
        self._on_problem = on_problem
        self._on_commit = on_commit
        self._connector = connector
        self._conn: sqlite3.Connection | None = None
        self._cond = threading.Condition()
        self._queue: deque[_Op] = deque()
        self._queued_bytes = 0
        self._flush_wanted = False
        self._checkpoint_wanted = False
        self._closing = False
        self._problem: str | None = None
        self._dropped_samples = 0
        self._overflow_reported = False
        self._acked = 0
        self._last_seq = 0
        self._done_seq = 0
        self._chunk_seq: dict[tuple[int, str], int] = {}
        self._counts: dict[tuple[int, str], int] = {}
        self._next_session, self._next_set = self._first_ids()
        self._thread = threading.Thread(target=self._run, name="spinecoach-store", daemon=True)
        self._thread.start()

    # Ids are allocated here so the engine never waits for the disk. ---------------------------

    def _first_ids(self) -> tuple[int, int]:
        try:
            conn = self._open()
        except (sqlite3.Error, OSError) as error:
            self._report(describe_error(error, self.path))
            return 1, 1
        sessions = conn.execute("SELECT COALESCE(MAX(id), 0) FROM sessions").fetchone()[0]
        sets = conn.execute("SELECT COALESCE(MAX(id), 0) FROM sets").fetchone()[0]
        return sessions + 1, sets + 1

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = self._connector(self.path)
            try:
                ensure_schema(conn)
                mark_interrupted(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    # Engine side: queue rows (never blocks on storage) ----------------------------------------

    def start_session(self, athlete: str, backend: str, mode: str, info: dict[str, Any]) -> int:
        session_id = self._next_session
        self._next_session += 1
        now = utc_now()
        self._put(
            _Op("INSERT OR IGNORE INTO athletes (name, created_utc) VALUES (?, ?)", (athlete, now)),
            _Op("INSERT INTO sessions (id, athlete, started_utc, status, backend, mode, pid, "
                "info_json) VALUES (?, ?, ?, 'running', ?, ?, ?, ?)",
                (session_id, athlete, now, backend, mode, os.getpid(), json.dumps(info))),
        )
        return session_id

    def start_set(
        self, session_id: int, number: int, exercise: str, protocol: str, side: str | None,
        prescription: str, params: dict[str, Any], start_s: float, streams: Iterable[StreamInfo],
    ) -> int:
        set_id = self._next_set
        self._next_set += 1
        ops = [_Op(
            "INSERT INTO sets (id, session_id, number, exercise, protocol, side, prescription, "
            "params_json, start_s, status, started_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "'running', ?)",
            (set_id, session_id, number, exercise, protocol, side, prescription,
             json.dumps(params), start_s, utc_now()),
        )]
        if self.keep_raw:
            ops += [
                _Op("INSERT INTO streams (set_id, name, info_json) VALUES (?, ?, ?)",
                    (set_id, info.name, json.dumps(asdict(info))))
                for info in streams
            ]
        self._put(*ops)
        return set_id

    def add_block(self, set_id: int, block: Block) -> None:
        """Queue one block of raw samples of a set (droppable under memory pressure)."""
        if not self.keep_raw or not len(block):
            return
        key = (set_id, block.info.name)
        seq = self._chunk_seq.get(key, 0)
        self._chunk_seq[key] = seq + 1
        # Global order of blocks in the set, so a replay feeds them exactly as they came.
        order = self._chunk_seq.get((set_id, ""), 0)
        self._chunk_seq[(set_id, "")] = order + 1
        # tobytes() writes C order whatever the layout: only the dtype needs making sure of.
        if isinstance(block, ImuBlock):
            data = np.concatenate((block.gyro_dps, block.accel_g), axis=1,
                                  dtype=np.float64).tobytes()
        else:
            data = block.force_n.astype(np.float64, copy=False).tobytes()
        index = block.index.astype(np.int64, copy=False).tobytes()
        valid = block.valid.astype(np.bool_, copy=False).tobytes()
        raw = None if block.raw is None else block.raw.tobytes()
        gaps = json.dumps([asdict(g) for g in block.gaps]) if block.gaps else "[]"
        size = len(index) + len(data) + len(valid) + (len(raw) if raw else 0) + len(gaps) + 64
        self._put(_Op(
            "INSERT INTO chunks (set_id, stream, seq, ord, count, index_blob, data_blob, "
            "valid_blob, raw_blob, gaps_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (set_id, block.info.name, seq, order, len(block), index, data, valid, raw, gaps),
            size=size, samples=len(block),
        ))

    def add_result(self, set_id: int, result: RepResult | HoldResult | ContractionResult) -> int:
        """Queue a rep, hold or contraction; returns its number within the set (1-based)."""
        if isinstance(result, RepResult):
            number = self._count(set_id, "reps")
            op = _Op("INSERT INTO reps VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (
                set_id, number, result.start_s, result.end_s, real(result.rom_deg),
                result.tempo.eccentric_s, result.tempo.concentric_s, result_json(result)))
        elif isinstance(result, HoldResult):
            number = self._count(set_id, "holds")
            op = _Op("INSERT INTO holds VALUES (?, ?, ?, ?, ?, ?, ?)", (
                set_id, number, result.start_s, result.end_s, result.duration_s,
                result.end_reason, result_json(result)))
        else:
            number = self._count(set_id, "contractions")
            op = _Op("INSERT INTO contractions VALUES (?, ?, ?, ?, ?, ?, ?)", (
                set_id, number, result.onset_s, result.end_s, real(result.peak_force_n),
                real(result.peak_rfd_n_per_s), result_json(result)))
        self._put(op)
        return number

    def _count(self, set_id: int, table: str) -> int:
        key = (set_id, table)
        self._counts[key] = self._counts.get(key, 0) + 1
        return self._counts[key]

    def add_cue(self, set_id: int, t_s: float, kind: str, pattern: str | None, message: str) -> None:
        self._put(_Op("INSERT INTO cues VALUES (?, ?, ?, ?, ?)",
                      (set_id, t_s, kind, pattern, message)))

    def end_set(
        self, set_id: int, end_s: float, status: str, targets_met: bool | None,
        metrics: Iterable[Metric],
    ) -> None:
        """Finish a set: its figures, its status; commit now and checkpoint the WAL."""
        ops = [
            _Op("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?)",
                (set_id, m.name, SET_LEVEL if m.index is None else m.index, real(m.value), m.unit))
            for m in metrics
        ]
        ops.append(_Op("UPDATE sets SET end_s = ?, status = ?, targets_met = ? WHERE id = ?",
                       (end_s, status, None if targets_met is None else int(targets_met), set_id)))
        self._put(*ops)
        with self._cond:
            self._checkpoint_wanted = True
        self.flush(wait=False)

    def end_session(self, session_id: int, status: str, metrics: Iterable[Metric] = ()) -> None:
        ops = [
            _Op("INSERT OR REPLACE INTO session_metrics VALUES (?, ?, ?, ?)",
                (session_id, m.name, real(m.value), m.unit))
            for m in metrics
        ]
        ops.append(_Op("UPDATE sessions SET status = ?, ended_utc = ? WHERE id = ?",
                       (status, utc_now(), session_id)))
        self._put(*ops)
        self.flush(wait=False)

    def _put(self, *ops: _Op) -> None:
        with self._cond:
            for op in ops:
                self._last_seq += 1
                op.seq = self._last_seq
                self._queue.append(op)
                self._queued_bytes += op.size
            # No notify: the writer commits what has gathered every commit interval (a batch),
            # and at once only when asked to flush.
            self._bound_memory()

    def _bound_memory(self) -> None:
        """Drop the oldest raw chunks while the queue is over its bound (results are kept)."""
        if self._queued_bytes <= self.memory_buffer_bytes:
            return
        kept: deque[_Op] = deque()
        for op in self._queue:
            if op.samples and self._queued_bytes > self.memory_buffer_bytes:
                self._queued_bytes -= op.size
                self._dropped_samples += op.samples
                continue
            kept.append(op)
        self._queue = kept
        if not self._overflow_reported:
            self._overflow_reported = True
            self._report(f"memory buffer full ({self.memory_buffer_bytes // 1_000_000} MB): "
                         "dropping the oldest raw samples, results are kept")

    # Control ----------------------------------------------------------------------------------

    def flush(self, wait: bool = True, timeout_s: float = 5.0) -> bool:
        """Commit what is queued now; with ``wait``, True once all of it is acknowledged."""
        with self._cond:
            target = self._queue[-1].seq if self._queue else 0
            self._flush_wanted = True
            self._cond.notify_all()
            if not wait:
                return True
            deadline = time.monotonic() + timeout_s
            while self._done_seq < target and any(op.seq <= target for op in self._queue):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    @property
    def status(self) -> StoreStatus:
        with self._cond:
            return StoreStatus(self._problem is None, self._problem, self._queued_bytes,
                               self._dropped_samples, self._acked)

    def close(self, timeout_s: float = 5.0) -> bool:
        """Commit what can be committed and stop the writer; False if rows had to be left."""
        flushed = self.flush(wait=True, timeout_s=timeout_s)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        self._drop_connection()
        return flushed

    # Writer thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._closing and not self._flush_wanted:
                    self._cond.wait(self.commit_interval_s)
                if self._closing:
                    return
                self._flush_wanted = False
                batch = list(self._queue)
                checkpoint = self._checkpoint_wanted
            if not batch:
                continue
            try:
                self._commit(batch, checkpoint)
            except (sqlite3.Error, OSError) as error:
                self._failed(error)
                with self._cond:
                    self._cond.wait(self.retry_interval_s)
                continue
            with self._cond:
                committed = {id(op) for op in batch}
                remaining: deque[_Op] = deque()
                for op in self._queue:
                    if id(op) in committed:
                        self._queued_bytes -= op.size
                    else:
                        remaining.append(op)
                self._queue = remaining
                self._done_seq = max(self._done_seq, batch[-1].seq)
                self._acked += 1
                acked = self._acked
                if checkpoint:
                    self._checkpoint_wanted = False
                recovered = self._problem is not None
                self._problem = None
                self._overflow_reported = False
                self._cond.notify_all()
            if recovered and self._on_problem is not None:
                self._on_problem(f"storage recovered: writing to {self.path} again")
            if self._on_commit is not None:
                self._on_commit(acked)

    def _commit(self, batch: list[_Op], checkpoint: bool) -> None:
        conn = self._open()
        conflicts = 0
        try:
            conn.execute("BEGIN")
            # One executemany per run of the same statement: less Python (and GIL) per row, so
            # the sampling thread is not kept waiting.
            for sql, group in itertools.groupby(batch, key=lambda op: op.sql):
                rows = [op.params for op in group]
                try:
                    conn.executemany(sql, rows)
                except sqlite3.IntegrityError:
                    # Only possible when ids were allocated while the database was unreadable
                    # and it later turned out to hold rows: keep every row that fits.
                    for params in rows:
                        try:
                            conn.execute(sql, params)
                        except sqlite3.IntegrityError:
                            conflicts += 1
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        if conflicts:
            self._report(f"{conflicts} rows conflicted with stored ones and were left out")
        if checkpoint:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    def _failed(self, error: BaseException) -> None:
        # Reopen on the next attempt: the file may have been remounted or replaced.
        self._drop_connection()
        message = describe_error(error, self.path)
        with self._cond:
            first = self._problem is None
            self._problem = message
        if first:
            self._report(message)

    def _report(self, message: str) -> None:
        if self._on_problem is not None:
            self._on_problem(message)


def describe_error(error: BaseException, path: Path) -> str:
    """One line saying what is wrong with the storage and what happens meanwhile."""
    name = getattr(error, "sqlite_errorname", "")
    if isinstance(error, OSError):
        reason = error.strerror or str(error)
    elif name.startswith("SQLITE_FULL"):
        reason = "disk full"
    elif name.startswith(("SQLITE_READONLY", "SQLITE_PERM")):
        reason = "storage is read-only"
    else:
        reason = str(error)
    return (f"storage problem at {path}: {reason}; results are kept in memory and retried - "
            "free space or fix the state directory")


def storage_error(error: BaseException, path: Path) -> StorageError:
    """A StorageError for a failed read (history, export)."""
    return StorageError(f"cannot read {path}: {error}; check SPINECOACH_STATE_DIR and permissions")
