"""CSV files that people open in spreadsheets: one cell convention for every export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Final

#: Spreadsheets run a cell that starts with one of these as a formula.
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A value as one spreadsheet-safe cell: booleans as JSON writes them, null empty, and a
    leading apostrophe on text a spreadsheet would otherwise evaluate."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(rows: Iterable[Iterable[object]]) -> str:
    """Rows as CSV lines (RFC 4180: quoted where needed, CRLF), every cell made safe."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows([csv_cell(cell) for cell in row] for row in rows)
    return buffer.getvalue()
