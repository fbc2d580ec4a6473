"""A whole recording in memory: every stream's samples plus metadata.

Both file formats (the native ``.screc`` and the interchange CSV) load into a :class:`Recording`;
replay and ``analyze`` consume it through :meth:`Recording.blocks`, which yields the same
:class:`~spinecoach.drivers.blocks.ImuBlock` / :class:`~spinecoach.drivers.blocks.ForceBlock`
objects a live sampler yields.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.blocks import Block, ForceBlock, Gap, ImuBlock, StreamInfo


@dataclass
class ImuStream:
    """All samples of one IMU stream; arrays as in :class:`ImuBlock`."""

    info: StreamInfo
    index: npt.NDArray[np.int64]
    gyro_dps: npt.NDArray[np.float64]
    accel_g: npt.NDArray[np.float64]
    valid: npt.NDArray[np.bool_]
    raw: npt.NDArray[np.int16] | None = None
    gaps: list[Gap] = field(default_factory=list)


@dataclass
class ForceStream:
    """All samples of one load-cell stream; arrays as in :class:`ForceBlock`."""

    info: StreamInfo
    index: npt.NDArray[np.int64]
    force_n: npt.NDArray[np.float64]
    valid: npt.NDArray[np.bool_]
    raw: npt.NDArray[np.int32] | None = None
    gaps: list[Gap] = field(default_factory=list)


@dataclass
class Recording:
    """Streams keyed by name plus free metadata (exercise, placement, side, notes, scenario)."""

    imu: dict[str, ImuStream] = field(default_factory=dict)
    force: dict[str, ForceStream] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def streams(self) -> list[StreamInfo]:
        """Infos of all streams, IMUs first."""
        return [s.info for s in self.imu.values()] + [s.info for s in self.force.values()]

    @property
    def duration_s(self) -> float:
        """Time of the last sample of any stream (s), 0 for an empty recording."""
        every: list[ImuStream | ForceStream] = [*self.imu.values(), *self.force.values()]
        ends = [s.info.t0_s + float(s.index[-1]) / s.info.rate_hz for s in every if len(s.index)]
        return max(ends, default=0.0)

    def blocks(self, block_s: float = 0.05) -> Iterator[Block]:
        """Yield blocks covering ``block_s`` seconds each, streams interleaved in time order.

        Gaps are attached to the first block whose samples follow them, as a live sampler does.
        """
        if block_s <= 0:
            raise ValueError("block_s must be > 0")
        n_windows = int(np.floor(self.duration_s / block_s)) + 1
        all_streams: list[ImuStream | ForceStream] = [*self.imu.values(), *self.force.values()]
        times = [s.info.t0_s + s.index / s.info.rate_hz for s in all_streams]
        sample_pos = [0] * len(all_streams)
        gap_pos = [0] * len(all_streams)
        for w in range(n_windows):
            for k, stream in enumerate(all_streams):
                start = sample_pos[k]
                if w + 1 == n_windows:
                    stop = len(stream.index)
                else:
                    stop = int(np.searchsorted(times[k], (w + 1) * block_s, side="left"))
                if stop <= start:
                    continue
                last = int(stream.index[stop - 1])
                gaps: list[Gap] = []
                while gap_pos[k] < len(stream.gaps) and stream.gaps[gap_pos[k]].start_index <= last:
                    gaps.append(stream.gaps[gap_pos[k]])
                    gap_pos[k] += 1
                sample_pos[k] = stop
                yield _block(stream, slice(start, stop), tuple(gaps))


def _block(stream: ImuStream | ForceStream, sl: slice, gaps: tuple[Gap, ...]) -> Block:
    """The samples ``sl`` of ``stream`` as a block carrying ``gaps``."""
    if isinstance(stream, ImuStream):
        return ImuBlock(
            info=stream.info,
            index=stream.index[sl],
            gyro_dps=stream.gyro_dps[sl],
            accel_g=stream.accel_g[sl],
            valid=stream.valid[sl],
            raw=None if stream.raw is None else stream.raw[sl],
            gaps=gaps,
        )
    return ForceBlock(
        info=stream.info,
        index=stream.index[sl],
        force_n=stream.force_n[sl],
        valid=stream.valid[sl],
        raw=None if stream.raw is None else stream.raw[sl],
        gaps=gaps,
    )
