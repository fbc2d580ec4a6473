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
    """A ``width``×``height`` cell grid of braille dots."""

    CELL_W = 2
    CELL_H = 4

    def __init__(self, width: int, height: int) -> None:
        self.width = max(1, width)
        self.height = max(1, height)
        self._bits = [[0] * self.width for _ in range(self.height)]
        self._owner = [[-1] * self.width for _ in range(self.height)]

    @property
    def dots_x(self) -> int:
        return self.width * self.CELL_W

    @property
    def dots_y(self) -> int:
        return self.height * self.CELL_H

    @staticmethod
    def _bit(dot_row: int, dot_col: int) -> int:
        return _DOT_BITS[dot_row][dot_col]

    @staticmethod
    def _char(bits: int) -> str:
        return chr(BRAILLE_BASE + bits)

    def set_dot(self, x: int, y: int, series: int = 0) -> None:
        """Set dot (x, y), y counted from the *bottom*; dots outside the grid are ignored."""
        if not (0 <= x < self.dots_x and 0 <= y < self.dots_y):
            return
        row_from_top = self.dots_y - 1 - y
        cell_row, dot_row = divmod(row_from_top, self.CELL_H)
        cell_col, dot_col = divmod(x, self.CELL_W)
        self._bits[cell_row][cell_col] |= self._bit(dot_row, dot_col)
        self._owner[cell_row][cell_col] = series

    def line(self, x0: int, y0: int, x1: int, y1: int, series: int = 0) -> None:
        """Dots along the segment (x0, y0)-(x1, y1) (Bresenham)."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        step_x = 1 if x0 < x1 else -1
        step_y = 1 if y0 < y1 else -1
        error = dx + dy
        # The bound keeps a wild coordinate from spinning; a plot never needs more dots than this.
        for _ in range(self.dots_x + self.dots_y + 2):
            self.set_dot(x0, y0, series)
            if x0 == x1 and y0 == y1:
                return
            doubled = 2 * error
            if doubled >= dy:
                error += dy
                x0 += step_x
            if doubled <= dx:
                error += dx
                y0 += step_y

    def plot(
        self,
        points: Sequence[tuple[float, float]],
        x_range: Range,
        y_range: Range,
        series: int = 0,
    ) -> None:
        """Draw a polyline through ``points`` (data units), scaled into the grid."""
        previous: tuple[int, int] | None = None
        for x, y in points:
            if not (math.isfinite(x) and math.isfinite(y)):
                previous = None  # a hole in the data stays a hole on screen
                continue
            dot = (self._scale(x, x_range, self.dots_x), self._scale(y, y_range, self.dots_y))
            if previous is None:
                self.set_dot(*dot, series)
            else:
                self.line(*previous, *dot, series)
            previous = dot

    @staticmethod
    def _scale(value: float, axis: Range, dots: int) -> int:
        if axis.span <= 0:
            return 0
        return round((value - axis.low) / axis.span * (dots - 1))

    def rows(self) -> list[list[tuple[str, int]]]:
        """Each cell as (character, series that drew last or -1), top row first."""
        return [
            [(self._char(bits), owner) for bits, owner in zip(bit_row, owner_row)]
            for bit_row, owner_row in zip(self._bits, self._owner)
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

    @staticmethod
    def _bit(dot_row: int, dot_col: int) -> int:
        return 1 << dot_row

    @staticmethod
    def _char(bits: int) -> str:
        return _HALF_BLOCKS[bits]
