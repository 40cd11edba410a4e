"""The monthly attendance register (出席簿) as a pure computation.

Standard marks: 欠 absence, 停 attendance suspension (出席停止: absence for reason
suspension), 忌 bereavement (忌引: absence for reason bereavement), 遅 late, 早 early leave.
An absence for the day overrides a late or early-leave report (a child who stayed home did
not also arrive late). Late and early leave on the same day show both marks.

Totals follow the usual register columns: school days (授業日数), days that must be
attended (出席しなければならない日数 = school days − 停 − 忌), absences (欠席日数),
days attended (出席日数 = required − 欠), lates and early leaves. Days after ``until``
(the rest of the current month) are shown but not counted. Days the class is closed
(学級閉鎖・学年閉鎖) are not school days for it: every child's cell says 閉, never 欠.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from models.enums import ReportKind, ReportReason
from renraku.rules.schoolday import ClassRef, SchoolCalendar

ABSENT = "欠"
SUSPENDED = "停"
BEREAVED = "忌"
LATE = "遅"
EARLY = "早"
CLOSED = "閉"  # the class or grade was closed that day
MARKS = (ABSENT, SUSPENDED, BEREAVED, LATE, EARLY)
ABSENCE_MARKS = (ABSENT, SUSPENDED, BEREAVED)


@dataclass(frozen=True)
class ReportFact:
    """The part of an active report the register needs."""

    child_id: int
    day: date
    kind: str
    reason: str


@dataclass(frozen=True)
class ChildRow:
    child_id: int
    name: str


@dataclass(frozen=True)
class DayColumn:
    day: date
    school_day: bool
    counted: bool  # a school day on or before ``until``
    closed: str = ""  # the class or grade closure's name (学級閉鎖...), if closed


@dataclass(frozen=True)
class ChildTotals:
    school_days: int
    suspended: int
    bereaved: int
    required: int
    absent: int
    attended: int
    late: int
    early: int


@dataclass
class RegisterRow:
    child: ChildRow
    cells: list[str]  # one per DayColumn: "", "欠", "停", "忌", "遅", "早", "遅早"
    totals: ChildTotals


@dataclass
class MonthRegister:
    year: int
    month: int
    days: list[DayColumn]
    rows: list[RegisterRow]
    # per DayColumn index: mark → count (absence marks counted separately)
    day_totals: list[dict[str, int]] = field(default_factory=list)

    @property
    def school_day_count(self) -> int:
        return sum(1 for d in self.days if d.counted)


def day_marks(facts: Iterable[ReportFact]) -> str:
    """The cell text for one child on one day from that day's active reports."""
    absence: str | None = None
    late = early = False
    for fact in facts:
        if fact.kind == ReportKind.ABSENCE:
            mark = {
                ReportReason.SUSPENSION: SUSPENDED,
                ReportReason.BEREAVEMENT: BEREAVED,
            }.get(ReportReason(fact.reason), ABSENT)
            # Two absence reports on one day cannot happen (one active per kind); be stable anyway.
            absence = mark if absence is None else min(absence, mark, key=MARKS.index)
        elif fact.kind == ReportKind.LATE:
            late = True
        elif fact.kind == ReportKind.EARLY_LEAVE:
            early = True
    if absence:
        return absence
    return (LATE if late else "") + (EARLY if early else "")


def month_days(year: int, month: int) -> list[date]:
    last = _calendar.monthrange(year, month)[1]
    return [date(year, month, d) for d in range(1, last + 1)]


def build_month(
    year: int,
    month: int,
    children: Sequence[ChildRow],
    facts: Iterable[ReportFact],
    calendar: SchoolCalendar,
    until: date | None = None,
    room: ClassRef | None = None,
) -> MonthRegister:
    """Children × days of the month with marks and totals; only school days carry marks."""
    days = []
    for d in month_days(year, month):
        closure = calendar.class_closure(d, room)
        school = closure is None and calendar.is_school_day(d)
        days.append(DayColumn(d, school, school and (until is None or d <= until),
                              closure.name or CLOSED if closure else ""))
    index = {col.day: i for i, col in enumerate(days)}
    by_cell: dict[tuple[int, int], list[ReportFact]] = {}
    for fact in facts:
        i = index.get(fact.day)
        if i is None or not days[i].school_day:
            continue  # a report on a holiday is not a register mark
        by_cell.setdefault((fact.child_id, i), []).append(fact)
    day_totals: list[dict[str, int]] = [dict.fromkeys(MARKS, 0) for _ in days]
    rows: list[RegisterRow] = []
    for child in children:
        cells: list[str] = []
        counts = dict.fromkeys(MARKS, 0)
        for i, col in enumerate(days):
            text = day_marks(by_cell.get((child.child_id, i), ())) if col.school_day else (
                CLOSED if col.closed else "")
            cells.append(text)
            if not col.counted:
                continue
            for mark in text:  # (a closed day is never counted)
                counts[mark] += 1
                day_totals[i][mark] += 1
        school_days = sum(1 for d in days if d.counted)
        required = school_days - counts[SUSPENDED] - counts[BEREAVED]
        rows.append(
            RegisterRow(
                child,
                cells,
                ChildTotals(
                    school_days=school_days,
                    suspended=counts[SUSPENDED],
                    bereaved=counts[BEREAVED],
                    required=required,
                    absent=counts[ABSENT],
                    attended=required - counts[ABSENT],
                    late=counts[LATE],
                    early=counts[EARLY],
                ),
            )
        )
    return MonthRegister(year, month, days, rows, day_totals)


def absent_on(totals: dict[str, int]) -> int:
    """All absences of a day (欠 + 停 + 忌), for the bottom row."""
    return sum(totals[m] for m in ABSENCE_MARKS)
