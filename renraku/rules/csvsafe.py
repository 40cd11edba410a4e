"""CSV cells that a spreadsheet will not run as formulas (CSV injection).

Excel, LibreOffice and Google Sheets treat a cell starting with ``= + - @`` (or a tab or
carriage return before one) as a formula; a child's name typed as ``=HYPERLINK(...)`` would
run on the office PC that opens the export. Such cells get a leading apostrophe, which the
spreadsheet shows as plain text. Every CSV export of the project goes through here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def neutralise(value: object) -> str:
    """The cell as text, prefixed with ``'`` when it would start a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_bytes(rows: Iterable[Iterable[object]], *, bom: bool = True) -> bytes:
    """UTF-8 CSV (CRLF lines, every cell neutralised); the BOM makes Japanese Excel read it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return ((BOM if bom else "") + out.getvalue()).encode("utf-8")
