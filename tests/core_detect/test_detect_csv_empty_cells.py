"""Interchange CSV parse path: empty cells (runs of them, at either end of a line) read as NaN."""

from __future__ import annotations

import re

import pytest
from spinecoach.recording.interchange import _fill_empty_cells

#: The definition of an empty cell: between two commas, or a comma and a line's start or end.
EMPTY_CELL = re.compile(r"(?<=,)(?=,|$)|^(?=,)", re.MULTILINE)


@pytest.mark.parametrize("body", [
    "0.1,1,2,3",
    "0.1,,2,3\n0.2,1,,",
    ",1,2,\n,,,\n0.3,,,,,,,4",
    "0.1,,,,,,,5\n0.2,1,2,3,4,5,6,\n,,,,,,,",
])
def test_empty_cells_become_nan_exactly_where_the_definition_puts_them(body):
    assert _fill_empty_cells(body) == EMPTY_CELL.sub("nan", body)
