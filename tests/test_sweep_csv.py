"""The sweep's CSV cannot be turned into spreadsheet formulas by evidence text."""

from __future__ import annotations

import csv
import io

from wormhunt.report.sweep import COLUMNS, to_csv


def test_formula_like_cells_are_defused_and_every_cell_is_quoted() -> None:
    row = dict.fromkeys(COLUMNS)
    row.update(host='=HYPERLINK("http://x")', verdict="infected", reason="x;=cmd|' /C calc'!A0", family="@SUM(1)")
    text = to_csv([row])
    (back,) = csv.DictReader(io.StringIO(text))
    assert back["host"] == '\'=HYPERLINK("http://x")' and back["family"] == "'@SUM(1)"
    assert back["reason"] == "x;=cmd|' /C calc'!A0"  # kept as text inside its quotes
    data_line = text.splitlines()[1]
    assert data_line.startswith('"') and ";=cmd" in data_line and data_line.count('","') == len(COLUMNS) - 1
