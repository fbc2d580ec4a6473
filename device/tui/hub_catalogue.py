"""The catalogue of a coach attached to a daemon: the daemon's sessions, progress and band
profiles, asked for over the hub (no Textual).

A coach over SSH runs as its login user, whose own store is empty; the daemon's store is the
one that matters. :class:`HubCatalogue` asks the daemon with ``request`` lines and keeps the
replies, answering the screens at once from what it has (the screens redraw up to 15 times a
second and must never wait on the socket). An answer is asked for again after :data:`CACHE_S`
seconds of wall clock (display freshness only; nothing measured depends on it).

A daemon whose ``hello`` does not announce ``queries`` is an older version: the catalogue then
lists this user's own store (``fallback``) and says so in :attr:`HubCatalogue.unavailable_reason`.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import Any

from spinecoach.band_profile import BandProfile
from spinecoach.hub.messages import Ack, Hello, Reply, Request
from spinecoach.hub.queries import (
    Progress,
    SessionRow,
    profiles_from_json,
    rows_from_json,
    series_from_json,
)
from spinecoach.tui.catalogue import Catalogue
from spinecoach.tui.model import FeedReset

#: How long a reply is used before it is asked for again (s of wall clock).
CACHE_S = 5.0
#: Band profiles change only by a capture, whose answer drops them at once.
BANDS_CACHE_S = 60.0
#: A request not answered within this long is asked again (the daemon may have restarted).
REQUEST_TIMEOUT_S = 10.0


class HubCatalogue:
    """A :class:`~spinecoach.tui.catalogue.Catalogue` answered by the daemon.

    ``request``: sends one request line (the socket feed's :meth:`request`); the replies come
    back through the feed and are handed to :meth:`observe` by the app, with everything else it
    polls. ``fallback``: this user's own catalogue, for a daemon too old to answer.
    """

    def __init__(self, request: Callable[[Request], None], fallback: Catalogue,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._send = request
        self._fallback = fallback
        self._clock = clock
        self._ids = itertools.count(1)
        self._features: tuple[str, ...] | None = None
        self._daemon = ""
        self._answers: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._asked: dict[int, tuple[tuple[Any, ...], float]] = {}
        #: Why a kind of answer is missing or empty, by kind ("sessions", "progress", ...).
        self._reasons: dict[str, str] = {}

    # --- what the app hands over -------------------------------------------------------------

    def observe(self, item: object) -> bool:
        """Take what the feed posted; True when the screens should redraw (new answers)."""
        if isinstance(item, Hello):
            self._features, self._daemon = item.features, item.daemon
            self._forget()
            return True
        if isinstance(item, FeedReset):
            self._features = None
            self._forget()
            return True
        if isinstance(item, Ack) and item.cmd == "calibrate" and item.ok:
            held = self._answers.get(("bands",))
            if held is not None:
                # A capture may have stored a profile: ask again, showing the old ones meanwhile.
                self._answers[("bands",)] = (-math.inf, held[1])
            return True
        if isinstance(item, Reply):
            return self._take(item)
        return False

    def _forget(self) -> None:
        self._answers.clear()
        self._asked.clear()
        self._reasons.clear()

    def _take(self, reply: Reply) -> bool:
        asked = self._asked.pop(reply.id, None)
        if asked is None:
            return False  # not ours, or from before a reconnect
        key = asked[0]
        value: Any = None
        if reply.ok:
            try:
                value = _PARSERS[key[0]](reply.data)
            except (TypeError, KeyError, ValueError) as error:
                what = reply.query.replace("_", " ")
                reason = f"The daemon's answer to {what} was unreadable ({error})."
            else:
                reason = reply.message
        else:
            reason = f"The daemon could not list {reply.query.replace('_', ' ')}: {reply.message}"
        self._reasons[key[0]] = reason
        if value is not None:
            self._answers[key] = (self._clock(), value)
        return True

    # --- asking ------------------------------------------------------------------------------

    @property
    def answers_queries(self) -> bool | None:
        """True when the daemon answers requests, False when it is older, None before hello."""
        return None if self._features is None else "queries" in self._features

    def _ask(self, key: tuple[Any, ...], query: str, args: dict[str, Any], empty: Any,
             fresh_s: float = CACHE_S) -> Any:
        now = self._clock()
        held = self._answers.get(key)
        if held is not None and now - held[0] < fresh_s:
            return held[1]
        waiting = any(k == key and now - t < REQUEST_TIMEOUT_S for k, t in self._asked.values())
        if not waiting:
            request_id = next(self._ids)
            self._asked[request_id] = (key, now)
            self._send(Request(request_id, query, args))
        return held[1] if held is not None else empty

    def _catalogue(self) -> dict[str, list[str]]:
        return self._ask(("catalogue",), "catalogue", {},  # type: ignore[no-any-return]
                         {"exercises": [], "protocols": [], "athletes": []})

    # --- Catalogue ---------------------------------------------------------------------------

    def _listed(self, key: str, fallback: Callable[[], list[str]]) -> list[str]:
        """The daemon's catalogue list ``key``; the coach's own (``fallback``) from a daemon
        that answers no queries; nothing before the daemon said which."""
        if self.answers_queries is None:
            return []
        if not self.answers_queries:
            return fallback()
        return list(self._catalogue()[key])

    def exercises(self) -> list[str]:
        return self._listed("exercises", self._fallback.exercises)

    def protocols(self) -> list[str]:
        return self._listed("protocols", self._fallback.protocols)

    def athletes(self) -> list[str]:
        return self._listed("athletes", self._fallback.athletes)

    def recent_sessions(self, athlete: str, limit: int = 10) -> list[SessionRow]:
        if self.answers_queries is None:
            return []
        if not self.answers_queries:
            return self._fallback.recent_sessions(athlete, limit)
        return list(self._ask(("sessions", athlete, limit), "recent_sessions",
                              {"athlete": athlete, "limit": limit}, []))

    def progress(self, athlete: str) -> list[Progress]:
        if self.answers_queries is None:
            return []
        if not self.answers_queries:
            return self._fallback.progress(athlete)
        return list(self._ask(("progress", athlete), "progress", {"athlete": athlete}, []))

    def band_profiles(self) -> list[BandProfile]:
        if not self.answers_queries:
            return []  # an older daemon captures none
        return list(self._ask(("bands",), "band_profiles", {}, [], BANDS_CACHE_S))

    @property
    def unavailable_reason(self) -> str:
        if self._features is None:
            return "Waiting for the daemon to list its sessions."
        if "queries" not in self._features:
            own = self._fallback.unavailable_reason
            return (f"The daemon (spinecoach {self._daemon}) is older and cannot send its "
                    "sessions: listing this user's own store instead." + (f" {own}" if own else ""))
        return next((self._reasons[k] for k in ("sessions", "progress", "catalogue")
                     if self._reasons.get(k)), "")


def _catalogue_lists(data: dict[str, Any]) -> dict[str, list[str]]:
    lists = {name: data.get(name, []) for name in ("exercises", "protocols", "athletes")}
    if not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in lists.values()):
        raise TypeError("exercises, protocols and athletes must be lists of names")
    return lists


_PARSERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "catalogue": _catalogue_lists,
    "sessions": lambda data: rows_from_json(data.get("sessions", [])),
    "progress": lambda data: series_from_json(data.get("series", [])),
    "bands": lambda data: profiles_from_json(data.get("profiles", [])),
}
