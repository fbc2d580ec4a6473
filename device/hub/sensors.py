"""Sensor health for the ``state`` message: measured rate, gaps and status per stream.

Everything is judged in sample time, from the blocks themselves: a stream is ``stale`` when the
other streams have moved on by :data:`STALE_AFTER_S` without it, ``degraded`` while it has lost
samples within the last :data:`DEGRADED_WINDOW_S`, ``missing`` when it was expected but never
delivered. No wall clock, so a replay shows the health the live session had.
"""

from __future__ import annotations

from dataclasses import dataclass

from spinecoach.drivers.blocks import Block, StreamInfo
from spinecoach.hub.messages import SensorStatus

#: A stream silent for this long of other streams' sample time is stale (s).
STALE_AFTER_S = 1.0
#: A stream that lost samples within this much sample time is degraded (s).
DEGRADED_WINDOW_S = 5.0
#: Sample time over which the delivered rate is measured (s).
RATE_WINDOW_S = 2.0


@dataclass
class _Stream:
    info: StreamInfo
    delivered: int = 0
    gaps: int = 0
    last_t_s: float | None = None
    last_gap_t_s: float | None = None
    # (sample time, delivered count) at the start of the current rate window
    window_t_s: float | None = None
    window_count: int = 0
    rate_hz: float = 0.0


class SensorMonitor:
    """Fold blocks in with :meth:`add`; read the health with :meth:`statuses`."""

    def __init__(self, expected: list[StreamInfo] | None = None) -> None:
        self._streams: dict[str, _Stream] = {
            info.name: _Stream(info) for info in (expected or [])
        }
        self._now_s = 0.0

    def add(self, block: Block) -> bool:
        """Count the block's samples and gaps; time advances to its last sample. True when the
        block may have changed a status at once (a stream's first samples, lost samples);
        otherwise statuses change only as sample time passes."""
        stream = self._streams.get(block.info.name)
        if stream is None:
            stream = self._streams[block.info.name] = _Stream(block.info)
        n = len(block)
        if n == 0:
            return False
        news = stream.last_t_s is None
        t = block.t_s
        end_s = float(t[-1])
        lost = sum(g.count for g in block.gaps) if block.gaps else 0
        if lost:
            stream.gaps += lost
            stream.last_gap_t_s = float(t[0])
            news = True
        if stream.window_t_s is None:
            # The window opens one period before the first sample, so n samples span n periods.
            stream.window_t_s, stream.window_count = float(t[0]) - block.info.period_s, 0
        stream.delivered += n
        stream.window_count += n
        span = end_s - stream.window_t_s
        if span >= RATE_WINDOW_S:
            stream.rate_hz = stream.window_count / span
            stream.window_t_s, stream.window_count = end_s, 0
        elif stream.rate_hz == 0.0 and span > 0:
            stream.rate_hz = stream.window_count / span
        stream.last_t_s = end_s
        self._now_s = max(self._now_s, end_s)
        return news

    def statuses(self) -> dict[str, SensorStatus]:
        """Health of every stream seen or expected, keyed by stream name."""
        out: dict[str, SensorStatus] = {}
        for name, stream in self._streams.items():
            if stream.last_t_s is None:
                status = "missing"
            elif self._now_s - stream.last_t_s > STALE_AFTER_S:
                status = "stale"
            elif (
                stream.last_gap_t_s is not None
                and self._now_s - stream.last_gap_t_s <= DEGRADED_WINDOW_S
            ):
                status = "degraded"
            else:
                status = "ok"
            out[name] = SensorStatus(status, round(stream.rate_hz, 1), stream.gaps)  # type: ignore[arg-type]
        return out
