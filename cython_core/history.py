"""Growable, trimmable per-sample history for the streaming pipeline.

Reps, holds and contractions are measured after the samples that decide them have arrived, from
the recent samples kept here. Sample numbers are absolute (0 = first sample of the stream); the
oldest samples are dropped with :meth:`SampleHistory.trim` once nothing can refer to them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class SampleHistory:
    """Channels of equal length (each an array whose first axis is the sample)."""

    def __init__(self, channels: dict[str, tuple[int, ...]], capacity: int = 4096) -> None:
        self._cap = max(16, capacity)
        self._data = {
            name: np.zeros((self._cap, *shape), dtype=np.float64) for name, shape in channels.items()
        }
        self._first = 0  # absolute sample number of row 0
        self._len = 0
        self._adopted = False  # some buffers are arrays handed over by append(adopt=...)

    @property
    def start(self) -> int:
        """Absolute sample number of the oldest kept sample."""
        return self._first

    @property
    def stop(self) -> int:
        """One past the absolute sample number of the newest sample."""
        return self._first + self._len

    def append(self, adopt: frozenset[str] = frozenset(), **values: npt.NDArray[np.float64]) -> None:
        """Append a block; every channel must be given with the same number of samples.

        Channels named in ``adopt`` are arrays nobody writes to any more (the caller's fresh
        results): when such a block alone outgrows the empty history (e.g. a whole recording
        in one call) it is kept as it is instead of copied, which saves a pass over it and the
        page faults of a buffer as large; it is never written to (see ``trim``)."""
        n = len(next(iter(values.values())))
        if self._len == 0 and n > self._cap:
            self._cap = n
            for name, arr in self._data.items():
                v = values[name]
                if (name in adopt and v.dtype == np.float64 and v.shape[1:] == arr.shape[1:]
                        and v.flags.c_contiguous):
                    self._data[name] = v
                    self._adopted = True
                else:
                    self._data[name] = np.array(v, dtype=np.float64, order="C")
            self._len = n
            return
        if self._len + n > self._cap:
            self._cap = max(2 * self._cap, self._len + n)
            for name, arr in self._data.items():
                # rows past the length are never read (get clips to it): no need to zero them
                grown = np.empty((self._cap, *arr.shape[1:]), dtype=np.float64)
                grown[: self._len] = arr[: self._len]
                self._data[name] = grown
        for name, arr in self._data.items():
            arr[self._len : self._len + n] = values[name]
        self._len += n

    def get(self, name: str, a: int, b: int) -> npt.NDArray[np.float64]:
        """Samples [a, b) (absolute numbers, clipped to what is kept) of one channel (a view)."""
        lo = min(max(a - self._first, 0), self._len)
        hi = min(max(b - self._first, lo), self._len)
        return self._data[name][lo:hi]

    def at(self, name: str, sample: int) -> float:
        """One sample of a scalar channel (clipped to the kept range)."""
        i = min(max(sample - self._first, 0), self._len - 1)
        return float(self._data[name][i])

    def trim(self, keep_from: int) -> None:
        """Drop samples before absolute number ``keep_from`` (amortised: moves data only when
        the dropped part is at least half the buffer)."""
        drop = min(max(keep_from - self._first, 0), self._len)
        if drop == 0 or drop < self._cap // 2:
            return
        if self._adopted:
            # an adopted array may still be referenced by its maker: move the kept rows out
            # of it rather than within it
            self._data = {name: arr[drop : self._len].copy() for name, arr in self._data.items()}
            self._adopted = False
            self._cap = self._len - drop
            self._first += drop
            self._len -= drop
            return
        for arr in self._data.values():
            arr[: self._len - drop] = arr[drop : self._len]
        self._first += drop
        self._len -= drop
