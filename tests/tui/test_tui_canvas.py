"""The dot canvases and the plot text built on them."""

from __future__ import annotations

import math

from spinecoach.tui.canvas import BlockCanvas, BrailleCanvas, Range
from spinecoach.tui.render import CONSOLE_GLYPHS, plot_text


def test_braille_dots_map_to_the_unicode_dot_numbering() -> None:
    canvas = BrailleCanvas(1, 1)
    canvas.set_dot(0, 0)  # bottom left: dot 7
    assert canvas.text() == "\u2840"
    canvas.set_dot(1, 3)  # top right: dot 4
    assert canvas.text() == chr(0x2840 | 0x08)
    canvas.set_dot(5, 9)  # outside: ignored
    assert canvas.rows() == [[(chr(0x2848), 0)]]


def test_a_line_is_continuous_and_a_hole_stays_a_hole() -> None:
    canvas = BrailleCanvas(5, 1)
    canvas.plot([(0.0, 0.0), (9.0, 0.0)], Range(0, 9), Range(0, 1))
    assert canvas.text() == "\u28c0" * 5  # every cell's bottom row, both columns
    canvas = BrailleCanvas(5, 1)
    canvas.plot([(0.0, 0.0), (1.0, 0.0), (math.nan, 0.0), (8.0, 0.0), (9.0, 0.0)],
                Range(0, 9), Range(0, 1))
    assert canvas.text() == "\u28c0\u2800\u2800\u2800\u28c0"


def test_steep_segments_fill_every_row_they_cross() -> None:
    canvas = BrailleCanvas(1, 3)
    canvas.plot([(0.0, 0.0), (0.0, 1.0)], Range(0, 1), Range(0, 1))
    assert canvas.text() == "\n".join(["\u2847"] * 3)  # left column, all four dots, each row


def test_block_canvas_uses_half_blocks_and_remembers_the_series() -> None:
    canvas = BlockCanvas(3, 1)
    canvas.plot([(0.0, 0.0), (2.0, 1.0)], Range(0, 2), Range(0, 1), series=2)
    assert canvas.text() == "▄▄▀"  # the middle dot rounds down to the lower half
    assert [owner for _, owner in canvas.rows()[0]] == [2, 2, 2]


def test_plot_text_has_axes_labels_and_an_empty_message() -> None:
    text = plot_text([[]], 30, 5, Range(0, 10), Range(0, 200), "N", " s",
                     empty_message="no load cell").plain.splitlines()
    assert text[0].startswith("200 ┤") and "no load cell" in text[2]
    assert text[-1].strip() == "└0" + "─" * (len(text[-1].strip()) - 6) + "10 s"
    console = plot_text([[(0.0, 0.0), (10.0, 200.0)]], 20, 4, Range(0, 10), Range(0, 200), "N",
                        "", glyphs=CONSOLE_GLYPHS).plain
    assert "█" in console or "▄" in console
    assert not any(0x2800 <= ord(c) <= 0x28FF for c in console)
