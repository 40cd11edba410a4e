"""The month register grid against a hand-computed December 2026 (Dec 1 is a Tuesday)."""

from __future__ import annotations

from datetime import date

from renraku.rules.register import (
    ChildRow,
    ReportFact,
    absent_on,
    build_month,
    day_marks,
)
from renraku.rules.schoolday import ClassRef, DayChange, SchoolCalendar

# Mon–Fri, second term until the 24th, the 7th closed, Saturday the 5th an open school day.
CAL = SchoolCalendar(
    terms=((date(2026, 9, 1), date(2026, 12, 24)),),
    changes=(DayChange(date(2026, 12, 7), date(2026, 12, 7)),
             DayChange(date(2026, 12, 5), date(2026, 12, 5), open=True)),
)
A, B, C = ChildRow(1, "青木"), ChildRow(2, "馬場"), ChildRow(3, "千葉")


def d(day: int) -> date:
    return date(2026, 12, day)


FACTS = [
    ReportFact(1, d(1), "absence", "illness"),
    ReportFact(1, d(2), "late", "other"),
    ReportFact(1, d(3), "late", "illness"),
    ReportFact(1, d(3), "early_leave", "injury"),
    ReportFact(1, d(7), "absence", "illness"),  # holiday: no mark
    ReportFact(1, d(15), "absence", "illness"),  # after `until`: shown, not counted
    ReportFact(2, d(4), "absence", "illness"),
    ReportFact(2, d(4), "late", "illness"),  # absence wins
    ReportFact(2, d(8), "absence", "suspension"),
    ReportFact(2, d(9), "absence", "suspension"),
    ReportFact(2, d(10), "absence", "bereavement"),
    ReportFact(3, d(5), "early_leave", "other"),
    ReportFact(9, d(1), "absence", "illness"),  # not in this class: ignored
]


def test_cell_marks() -> None:
    assert day_marks([]) == ""
    assert day_marks([ReportFact(1, d(1), "absence", "injury")]) == "欠"
    assert day_marks([ReportFact(1, d(1), "absence", "suspension")]) == "停"
    assert day_marks([ReportFact(1, d(1), "absence", "bereavement")]) == "忌"
    assert day_marks([ReportFact(1, d(1), "early_leave", "other")]) == "早"
    both = [ReportFact(1, d(1), "early_leave", "x"), ReportFact(1, d(1), "late", "x")]
    assert day_marks(both) == "遅早"


def test_month_until_the_11th() -> None:
    grid = build_month(2026, 12, [A, B, C], FACTS, CAL, until=d(11))
    assert len(grid.days) == 31
    school = [c.day.day for c in grid.days if c.school_day]
    assert school == [1, 2, 3, 4, 5, 8, 9, 10, 11, 14, 15, 16, 17, 18, 21, 22, 23, 24]
    assert grid.school_day_count == 9
    a, b, c = grid.rows
    assert a.cells[0:5] == ["欠", "遅", "遅早", "", ""]
    assert a.cells[6] == "" and not grid.days[6].school_day  # the 7th
    assert a.cells[14] == "欠" and not grid.days[14].counted
    assert b.cells[3] == "欠" and b.cells[7:10] == ["停", "停", "忌"]
    assert c.cells[4] == "早"
    ta, tb, tc = a.totals, b.totals, c.totals
    assert (ta.school_days, ta.required, ta.absent, ta.attended, ta.late, ta.early) == (
        9, 9, 1, 8, 2, 1)
    assert (tb.suspended, tb.bereaved, tb.required, tb.absent, tb.attended, tb.late) == (
        2, 1, 6, 1, 5, 0)
    assert (tc.required, tc.absent, tc.attended, tc.early) == (9, 0, 9, 1)
    totals = grid.day_totals
    assert totals[0]["欠"] == 1 and absent_on(totals[0]) == 1
    assert totals[2]["遅"] == 1 and totals[2]["早"] == 1
    assert absent_on(totals[3]) == 1 and totals[3]["遅"] == 0
    assert totals[7]["停"] == 1 and absent_on(totals[9]) == 1
    assert absent_on(totals[14]) == 0  # the 15th is not counted yet


def test_whole_month() -> None:
    grid = build_month(2026, 12, [A, B, C], FACTS, CAL)
    assert grid.school_day_count == 18
    a, b, c = (r.totals for r in grid.rows)
    assert (a.absent, a.attended) == (2, 16)
    assert (b.required, b.attended) == (15, 14)
    assert c.attended == 18


def test_class_closure_marks_the_closure_not_absences() -> None:
    """学級閉鎖 on the 9th and 10th: 閉 for every child, no 停/忌, and two school days fewer."""
    room = ClassRef(id=7, grade=3)
    closed = SchoolCalendar(terms=CAL.terms, changes=(
        *CAL.changes, DayChange(d(9), d(10), name="学級閉鎖", class_id=room.id),
        DayChange(d(14), d(14), name="学年閉鎖", grade=4)))
    grid = build_month(2026, 12, [A, B, C], FACTS, closed, until=d(11), room=room)
    assert [c.closed for c in grid.days[8:10]] == ["学級閉鎖", "学級閉鎖"]
    assert not grid.days[8].school_day and not grid.days[8].counted
    assert grid.days[13].school_day and not grid.days[13].closed  # grade 4 only
    a, b, _c = grid.rows
    assert a.cells[8:10] == ["閉", "閉"] and b.cells[8:10] == ["閉", "閉"]
    assert b.cells[7] == "停"  # the day before the closure keeps its mark
    assert grid.school_day_count == 7
    assert (b.totals.school_days, b.totals.suspended, b.totals.bereaved) == (7, 1, 0)
    # The school itself and other classes do not see it.
    assert build_month(2026, 12, [B], FACTS, closed, until=d(11)).rows[0].cells[8] == "停"
