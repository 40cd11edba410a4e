"""CSV cells that a spreadsheet will not run as formulas (CSV/formula injection). Every
CSV export of the project goes through here.

A child's, class's or campaign's name, an email error or a hang-up cause that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be evaluated by Excel or
LibreOffice when a teacher opens the export. Such a cell gets a leading apostrophe (OWASP's
advice), except plain numbers and phone numbers (``+81901234…``, ``-3``), which no
spreadsheet runs.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"^[+-]?\d[\d ]*(\.\d+)?$")
BOM = "\ufeff"


def cell(value: object) -> object:
    """The value, made inert if a spreadsheet would read it as a formula."""
    if not isinstance(value, str) or not value.startswith(TRIGGERS):
        return value
    if PLAIN_NUMBER.match(value):
        return value
    return "'" + value


def row(values: Iterable[object]) -> list[object]:
    return [cell(v) for v in values]


class SafeWriter:
    """``csv.writer`` whose every row goes through :func:`row`."""

    def __init__(self, out: Any, **kwargs: Any) -> None:
        self._inner = csv.writer(out, **kwargs)

    def writerow(self, values: Iterable[object]) -> None:
        self._inner.writerow(row(values))


def csv_bytes(rows: Iterable[Iterable[object]], *, bom: bool = True) -> bytes:
    """UTF-8 CSV (CRLF lines, every cell made inert); the BOM makes Japanese Excel read it."""
    out = io.StringIO()
    writer = SafeWriter(out, lineterminator="\r\n")
    for values in rows:
        writer.writerow(values)
    return ((BOM if bom else "") + out.getvalue()).encode("utf-8")
