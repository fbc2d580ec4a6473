"""Reading the session store: sessions, sets, results, figures and a set's raw recording.

Used by ``spinecoach history``, ``spinecoach export``, progression and the replay check.
Opening marks sessions whose process died as interrupted (as the writer does); a store that is
read-only is still read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from spinecoach.core.results import ContractionResult, HoldResult, RepResult, Tempo
from spinecoach.drivers.blocks import Block, ForceBlock, Gap, ImuBlock, StreamInfo
from spinecoach.engine.protocols import Metric
from spinecoach.engine.store import SET_LEVEL, connect, db_path, mark_interrupted, unreal
from spinecoach.errors import StorageError, UsageError
from spinecoach.recording.model import ForceStream, ImuStream, Recording


@dataclass(frozen=True)
class SessionRow:
    id: int
    athlete: str
    started_utc: str
    ended_utc: str | None
    status: str
    backend: str
    mode: str
    info: dict[str, Any]


@dataclass(frozen=True)
class SetRow:
    id: int
    session_id: int
    number: int
    exercise: str
    protocol: str
    side: str | None
    prescription: str
    params: dict[str, Any]
    start_s: float
    end_s: float | None
    status: str
    targets_met: bool | None
    started_utc: str
    athlete: str = ""


_SET_SELECT = (
    "SELECT sets.id, session_id, number, exercise, protocol, side, prescription, params_json, "
    "start_s, end_s, sets.status, targets_met, sets.started_utc, sessions.athlete "
    "FROM sets JOIN sessions ON sessions.id = sets.session_id"
)


class StoreReader:
    """Read access to the database in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = db_path(state_dir)
        if not self.path.exists():
            raise StorageError(
                f"no sessions stored yet in {state_dir}; run `spinecoach session` first "
                "(or set SPINECOACH_STATE_DIR)"
            )
        try:
            self._conn = connect(self.path)
            mark_interrupted(self._conn)
        except sqlite3.Error:
            try:
                self._conn = connect(self.path, readonly=True)
            except sqlite3.Error as error:
                raise StorageError(f"cannot read {self.path}: {error}") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise StorageError(f"cannot read {self.path}: {error}") from None

    # Sessions and sets ------------------------------------------------------------------------

    def athletes(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT name FROM athletes ORDER BY name")]

    def sessions(self, athlete: str | None = None, limit: int | None = None) -> list[SessionRow]:
        sql = "SELECT * FROM sessions"
        params: tuple[Any, ...] = ()
        if athlete is not None:
            sql += " WHERE athlete = ?"
            params = (athlete,)
        sql += " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_session(r) for r in self._rows(sql, params)]

    def session(self, session_id: int) -> SessionRow:
        rows = self._rows("SELECT * FROM sessions WHERE id = ?", (session_id,))
        if not rows:
            raise UsageError(f"no session {session_id}; `spinecoach history` lists them")
        return _session(rows[0])

    def sets(
        self, session_id: int | None = None, exercise: str | None = None,
        athlete: str | None = None,
    ) -> list[SetRow]:
        sql = _SET_SELECT
        where, params = [], []
        for column, value in (("session_id", session_id), ("exercise", exercise),
                              ("sessions.athlete", athlete)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY sets.id"
        return [_set(r) for r in self._rows(sql, tuple(params))]

    def set(self, set_id: int) -> SetRow:
        rows = self._rows(_SET_SELECT + " WHERE sets.id = ?", (set_id,))
        if not rows:
            raise UsageError(f"no set {set_id}; `spinecoach history --session ID` lists them")
        return _set(rows[0])

    # Results ----------------------------------------------------------------------------------

    def metrics(self, set_id: int) -> list[Metric]:
        """Every figure of a set; whole-set ones have ``index`` None."""
        return [
            Metric(name, unreal(value), unit, None if idx == SET_LEVEL else idx)
            for name, idx, value, unit in self._rows(
                "SELECT name, idx, value, unit FROM metrics WHERE set_id = ? ORDER BY name, idx",
                (set_id,))
        ]

    def set_metrics(self, set_id: int) -> dict[str, float]:
        return {m.name: m.value for m in self.metrics(set_id) if m.index is None}

    def session_metrics(self, session_id: int) -> dict[str, float]:
        return {name: unreal(value) for name, value in self._rows(
            "SELECT name, value FROM session_metrics WHERE session_id = ?", (session_id,))}

    def reps(self, set_id: int) -> list[RepResult]:
        out = []
        for (text,) in self._rows("SELECT data_json FROM reps WHERE set_id = ? ORDER BY number",
                                  (set_id,)):
            data = json.loads(text)
            data["tempo"] = Tempo(**data["tempo"])
            out.append(RepResult(**data))
        return out

    def holds(self, set_id: int) -> list[HoldResult]:
        return [HoldResult(**json.loads(t)) for (t,) in self._rows(
            "SELECT data_json FROM holds WHERE set_id = ? ORDER BY number", (set_id,))]

    def contractions(self, set_id: int) -> list[ContractionResult]:
        return [ContractionResult(**json.loads(t)) for (t,) in self._rows(
            "SELECT data_json FROM contractions WHERE set_id = ? ORDER BY number", (set_id,))]

    def cues(self, set_id: int) -> list[tuple[float, str, str | None, str]]:
        return [tuple(r) for r in self._rows(  # type: ignore[misc]
            "SELECT t_s, kind, pattern, message FROM cues WHERE set_id = ? ORDER BY rowid",
            (set_id,))]

    def recording(self, set_id: int) -> Recording:
        """The raw samples of a set as one recording (streams keyed by name)."""
        if not self._rows("SELECT 1 FROM streams WHERE set_id = ?", (set_id,)):
            raise UsageError(f"set {set_id} has no raw recording (store.keep_raw was off)")
        by_stream: dict[str, list[Block]] = {}
        for block in self.blocks(set_id):
            by_stream.setdefault(block.info.name, []).append(block)
        rec = Recording(meta={"set_id": set_id})
        for name, blocks in by_stream.items():
            info = blocks[0].info
            index = np.concatenate([b.index for b in blocks])
            valid = np.concatenate([b.valid for b in blocks])
            gaps = [g for b in blocks for g in b.gaps]
            raws = [b.raw for b in blocks]
            raw = None if any(r is None for r in raws) else np.concatenate(raws)  # type: ignore[arg-type]
            if info.kind == "imu":
                rec.imu[name] = ImuStream(
                    info, index, np.concatenate([b.gyro_dps for b in blocks]),  # type: ignore[union-attr]
                    np.concatenate([b.accel_g for b in blocks]), valid, raw, gaps)  # type: ignore[union-attr]
            else:
                rec.force[name] = ForceStream(
                    info, index, np.concatenate([b.force_n for b in blocks]), valid, raw, gaps)  # type: ignore[union-attr]
        return rec

    def blocks(self, set_id: int) -> Iterator[Block]:
        """The set's raw samples as the blocks the engine was fed, in the order it got them."""
        infos = {
            name: StreamInfo(**json.loads(info_json))
            for name, info_json in self._rows(
                "SELECT name, info_json FROM streams WHERE set_id = ?", (set_id,))
        }
        rows = self._rows(
            "SELECT stream, index_blob, data_blob, valid_blob, raw_blob, gaps_json FROM chunks "
            "WHERE set_id = ? ORDER BY ord", (set_id,))
        for stream, index_b, data_b, valid_b, raw_b, gaps_json in rows:
            info = infos[stream]
            index = np.frombuffer(index_b, np.int64).copy()
            valid = np.frombuffer(valid_b, np.bool_).copy()
            gaps = tuple(Gap(**g) for g in json.loads(gaps_json))
            data = np.frombuffer(data_b, np.float64).copy()
            if info.kind == "imu":
                data = data.reshape(-1, 6)
                codes = None if raw_b is None else np.frombuffer(raw_b, np.int16).reshape(-1, 6)
                yield ImuBlock(info, index, data[:, :3].copy(), data[:, 3:].copy(), valid,
                               None if codes is None else codes.copy(), gaps)
            else:
                counts = None if raw_b is None else np.frombuffer(raw_b, np.int32).copy()
                yield ForceBlock(info, index, data, valid, counts, gaps)

    def integrity_ok(self) -> bool:
        return self._rows("PRAGMA integrity_check")[0][0] == "ok"


def _session(r: tuple[Any, ...]) -> SessionRow:
    sid, athlete, started, ended, status, backend, mode, _pid, info = r
    return SessionRow(sid, athlete, started, ended, status, backend, mode, json.loads(info))


def _set(r: tuple[Any, ...]) -> SetRow:
    (sid, session_id, number, exercise, protocol, side, prescription, params, start_s, end_s,
     status, targets_met, started, athlete) = r
    return SetRow(sid, session_id, number, exercise, protocol, side, prescription,
                  json.loads(params), start_s, end_s, status,
                  None if targets_met is None else bool(targets_met), started, athlete)
