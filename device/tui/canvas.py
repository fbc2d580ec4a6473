"""Dot canvases for line plots in a text terminal (no Textual).

:class:`BrailleCanvas` puts 2×4 dots in each character cell (U+2800 + dot bits), so a 60×10 cell
plot has 120×40 dots. The Linux console's fonts hold at most 512 glyphs and no braille, so
:class:`BlockCanvas` draws with the half blocks every console font has (▀ ▄ █: 1×2 dots a cell).
Lines between consecutive points are drawn dot by dot, so a curve stays continuous however
sparse its points are. Every cell remembers which series drew last in it, for its colour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

BRAILLE_BASE = 0x2800
#: Bit of each dot, indexed [row 0..3][column 0..1] (Unicode braille dot numbering 1-8).
_DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


@dataclass(frozen=True)
class Range:
    """A closed numeric interval used for an axis."""

    low: float
    high: float

    @property
    def span(self) -> float:
        return self.high - self.low

    def padded(self, fraction: float) -> Range:
        """The range widened by ``fraction`` of its span at each end."""
        pad = self.span * fraction
        return Range(self.low - pad, self.high + pad)

    @classmethod
    def covering(cls, values: Sequence[float], minimum_span: float = 1.0) -> Range:
        """The smallest range holding ``values`` and at least ``minimum_span`` wide (centred)."""
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return cls(0.0, minimum_span)
        low, high = min(finite), max(finite)
        if high - low < minimum_span:
            middle = (high + low) / 2
            low, high = middle - minimum_span / 2, middle + minimum_span / 2
        return cls(low, high)


class BrailleCanvas:
    """A ``width``×``height`` cell grid of braille dots.

    Drawing is vectorised with numpy: a plot is redrawn up to 30 times a second, and a Python
    loop per dot would cost more than the rest of the coach's drawing together.
    """

    CELL_W = 2
    CELL_H = 4
    #: Dot bits indexed [dot row from the top][dot column] within a cell.
    BITS = np.array(_DOT_BITS, dtype=np.int64)

    def __init__(self, width: int, height: int) -> None:
        self.width = max(1, width)
        self.height = max(1, height)
        self._bits = np.zeros((self.height, self.width), dtype=np.int64)
        self._owner = np.full((self.height, self.width), -1, dtype=np.int64)

    @property
    def dots_x(self) -> int:
        return self.width * self.CELL_W

    @property
    def dots_y(self) -> int:
        return self.height * self.CELL_H

    @staticmethod
    def _char(bits: int) -> str:
        return chr(BRAILLE_BASE + bits)

    def set_dots(self, x: npt.NDArray[np.int64], y: npt.NDArray[np.int64], series: int = 0) -> None:
        """Set dots (x, y), y counted from the *bottom*; dots outside the grid are ignored."""
        inside = (x >= 0) & (x < self.dots_x) & (y >= 0) & (y < self.dots_y)
        x, y = x[inside], y[inside]
        row_from_top = self.dots_y - 1 - y
        cell_row, dot_row = np.divmod(row_from_top, self.CELL_H)
        cell_col, dot_col = np.divmod(x, self.CELL_W)
        np.bitwise_or.at(self._bits, (cell_row, cell_col), self.BITS[dot_row, dot_col])
        self._owner[cell_row, cell_col] = series

    def set_dot(self, x: int, y: int, series: int = 0) -> None:
        """Set one dot (x, y), y counted from the bottom."""
        self.set_dots(np.array([x]), np.array([y]), series)

    def line(self, x0: int, y0: int, x1: int, y1: int, series: int = 0) -> None:
        """Dots along the segment (x0, y0)-(x1, y1)."""
        self._segments(np.array([x0, x1]), np.array([y0, y1]), series)

    def _segments(self, x: npt.NDArray[np.int64], y: npt.NDArray[np.int64], series: int) -> None:
        """Dots along the polyline through dot coordinates ``x``, ``y``: each segment sampled
        at one step per dot of its longer side, so consecutive dots touch."""
        if len(x) == 1:
            self.set_dots(x, y, series)
            return
        dx, dy = np.diff(x), np.diff(y)
        # A wild coordinate is clipped first so no segment can ask for a huge number of dots.
        steps = np.minimum(np.maximum(np.abs(dx), np.abs(dy)), self.dots_x + self.dots_y) + 1
        segment = np.repeat(np.arange(len(dx)), steps)
        first = np.cumsum(steps) - steps
        k = np.arange(int(steps.sum())) - np.repeat(first, steps)
        frac = k / np.maximum(steps - 1, 1)[segment]
        xs = np.rint(x[segment] + frac * dx[segment]).astype(np.int64)
        ys = np.rint(y[segment] + frac * dy[segment]).astype(np.int64)
        self.set_dots(xs, ys, series)

    def plot(
        self,
        points: Sequence[tuple[float, float]],
        x_range: Range,
        y_range: Range,
        series: int = 0,
    ) -> None:
        """Draw a polyline through ``points`` (data units), scaled into the grid. A point that is
        not finite leaves a hole: the line stops before it and starts again after it."""
        if not len(points):
            return
        data = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        finite = np.isfinite(data).all(axis=1)
        x = self._scale(data[:, 0], x_range, self.dots_x)
        y = self._scale(data[:, 1], y_range, self.dots_y)
        # Runs of consecutive finite points, each drawn as its own polyline.
        edges = np.flatnonzero(np.diff(np.concatenate(([0], finite.astype(np.int8), [0]))))
        for start, stop in zip(edges[::2], edges[1::2]):
            self._segments(x[start:stop], y[start:stop], series)

    @staticmethod
    def _scale(values: npt.NDArray[np.float64], axis: Range, dots: int) -> npt.NDArray[np.int64]:
        if axis.span <= 0:
            return np.zeros(len(values), dtype=np.int64)
        scaled = (values - axis.low) / axis.span * (dots - 1)
        scaled = np.clip(np.nan_to_num(scaled), -4 * dots, 5 * dots)
        return np.rint(scaled).astype(np.int64)

    def rows(self) -> list[list[tuple[str, int]]]:
        """Each cell as (character, series that drew last or -1), top row first."""
        return [
            [(self._char(int(bits)), int(owner)) for bits, owner in zip(bit_row, owner_row)]
            for bit_row, owner_row in zip(self._bits.tolist(), self._owner.tolist())
        ]

    def text(self) -> str:
        """The grid as plain text, one line per cell row."""
        return "\n".join("".join(ch for ch, _ in row) for row in self.rows())


#: Half-block characters by (upper, lower) dot bits.
_HALF_BLOCKS = (" ", "▀", "▄", "█")


class BlockCanvas(BrailleCanvas):
    """The same canvas with 1×2 dots a cell in half blocks, for console fonts without braille."""

    CELL_W = 1
    CELL_H = 2
    BITS = np.array([[1], [2]], dtype=np.int64)  # upper half, lower half

    @staticmethod
    def _char(bits: int) -> str:
        return _HALF_BLOCKS[bits]
