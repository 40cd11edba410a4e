"""The month register's grid cells as ready HTML (``staff/_month_table.html`` places them).

Why not Jinja loops: a class's month is ~30 children × 31 days plus three total rows,
about 1,200 cells. Rendered cell by cell, the template took about half of the page's time
(profiled on the city data: 13 ms of 20–27 ms, two escapes and a column lookup a cell). Here
each column's class attribute is worked out once, each distinct cell text escaped once,
and a row is one join. The template keeps everything translated (headers, labels, legend);
tests/test_register_month_page.py holds the page byte for byte as the loops made it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

from renraku.rules.register import EARLY, LATE, MonthRegister, absent_on

FOOT_KEYS = ("absent", LATE, EARLY)


@dataclass(frozen=True)
class MonthTable:
    head: Markup  # the day columns' <th> lines
    body: Markup  # every child's <tr>
    foot: dict[str, Markup]  # per FOOT_KEYS: the day columns' <td> lines of a total row


def month_table(grid: MonthRegister, weekday: Callable[[date], str]) -> MonthTable:
    days = grid.days
    kind = ["school" if col.school_day else "off" for col in days]
    cls = [k + (" closed" if col.closed else "") for k, col in zip(kind, days, strict=True)]
    head = "".join(
        f'      <th class="{c}"'
        + (f' title="{escape(col.closed)}"' if col.closed else "")
        + f">{col.day.day}<br><small>{escape(weekday(col.day))}</small></th>\n"
        for c, col in zip(cls, days, strict=True))
    # A handful of distinct texts ("", 欠, 遅早, 閉…): each escaped once
    texts = {cell: str(escape(cell)) for cell in {c for row in grid.rows for c in row.cells}}
    rows = []
    for row in grid.rows:
        cells = "".join(f'      <td class="{c}">{texts[cell]}</td>\n'
                        for c, cell in zip(cls, row.cells, strict=True))
        t = row.totals
        rows.append(
            f'    <tr data-child="{row.child.child_id}">\n'
            f'      <th class="name">{escape(row.child.name)}</th>\n'
            f"{cells}"
            f'      <td class="total">{t.school_days}</td><td class="total">{t.suspended}</td>\n'
            f'      <td class="total">{t.bereaved}</td><td class="total">{t.required}</td>\n'
            f'      <td class="total absent">{t.absent}</td><td class="total">{t.attended}</td>\n'
            f'      <td class="total">{t.late}</td><td class="total">{t.early}</td>\n'
            "    </tr>\n")
    foot = {}
    for key in FOOT_KEYS:
        foot[key] = Markup("".join(
            f'      <td class="{k}">'
            + (str(absent_on(tot) if key == "absent" else tot[key]) if col.counted else "")
            + "</td>\n"
            for k, col, tot in zip(kind, days, grid.day_totals, strict=True)))
    return MonthTable(Markup(head), Markup("".join(rows)), foot)
