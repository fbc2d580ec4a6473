"""The one backend switch: ``hardware``, ``sim:SCENARIO`` or ``replay:FILE``.

Chosen once (command-line flag or configuration) and passed down explicitly; never global state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from spinecoach.errors import UsageError

BackendKind = Literal["hardware", "sim", "replay"]


@dataclass(frozen=True)
class Backend:
    """A parsed backend choice. ``target`` is the scenario name or the recording path."""

    kind: BackendKind
    target: str = ""

    @classmethod
    def parse(cls, text: str) -> Backend:
        """Parse ``hardware``, ``sim:SCENARIO`` or ``replay:FILE``; raise UsageError otherwise."""
        kind, _, target = text.partition(":")
        if kind == "hardware" and not target:
            return cls("hardware")
        if kind in ("sim", "replay") and target:
            return cls(kind, target)  # type: ignore[arg-type]
        raise UsageError(
            f"backend {text!r} not understood: use hardware, sim:SCENARIO "
            "(see `spinecoach scenarios`) or replay:FILE"
        )

    @property
    def path(self) -> Path:
        """The recording path of a replay backend."""
        return Path(self.target)

    def __str__(self) -> str:
        return self.kind if self.kind == "hardware" else f"{self.kind}:{self.target}"
