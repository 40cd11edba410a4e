"""Which days are school days, for the school and for one class, and which day a report
made "now" is for.

A day's fate, strongest first: a closure of the child's class or grade (学級閉鎖・学年閉鎖),
a school closure (創立記念日, 振替休業日), an extra school day (土曜授業), a national
holiday, the terms (outside them: vacation), and last the school's weekdays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

# A report is never pushed further than this; a longer gap means the calendar is wrong.
MAX_LOOKAHEAD_DAYS = 120
ACADEMIC_YEAR_START_MONTH = 4  # Japanese school years run April to March


class NoSchoolDay(ValueError):
    pass


def academic_year(day: date) -> int:
    """The academic year a day belongs to, named by the calendar year it starts in."""
    return day.year if day.month >= ACADEMIC_YEAR_START_MONTH else day.year - 1


def academic_year_bounds(year: int) -> tuple[date, date]:
    """First and last day of academic year ``year`` (1 April to 31 March)."""
    return date(year, ACADEMIC_YEAR_START_MONTH, 1), date(year + 1, 3, 31)


@dataclass(frozen=True)
class ClassRef:
    """The class a child is in, as far as closures are concerned."""

    id: int
    grade: int


@dataclass(frozen=True)
class DayChange:
    """Staff's change to the weekday rule over ``start``..``end`` (both included).

    ``open`` is an extra school day (a Saturday class), otherwise a closure. A closure names
    at most one of ``class_id`` (学級閉鎖) and ``grade`` (学年閉鎖); neither is school-wide.
    """

    start: date
    end: date
    open: bool = False
    name: str = ""
    class_id: int | None = None
    grade: int | None = None

    @property
    def school_wide(self) -> bool:
        return self.class_id is None and self.grade is None

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end

    def concerns(self, room: ClassRef) -> bool:
        """A class or grade closure that closes ``room``."""
        if self.class_id is not None:
            return self.class_id == room.id
        return self.grade is not None and self.grade == room.grade


@dataclass(frozen=True)
class SchoolCalendar:
    weekdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})  # ISO: 1 = Monday
    terms: tuple[tuple[date, date], ...] = ()  # empty: every week of the year counts
    holidays: Mapping[date, str] = field(default_factory=dict)  # national holidays
    changes: tuple[DayChange, ...] = ()

    def _school_change(self, day: date) -> DayChange | None:
        """The school-wide change of ``day``; a closure wins over an extra school day."""
        found = [c for c in self.changes if c.school_wide and c.covers(day)]
        return min(found, key=lambda c: c.open, default=None)

    def _school_open(self, day: date) -> bool:
        change = self._school_change(day)
        if change is not None:
            return change.open
        if day in self.holidays:
            return False
        if self.terms and not any(start <= day <= end for start, end in self.terms):
            return False
        return day.isoweekday() in self.weekdays

    @property
    def closes_classes(self) -> bool:
        """Whether some closure keeps only a class or a grade home (else nobody's class
        needs looking up)."""
        return any(not c.open and not c.school_wide for c in self.changes)

    def class_closure(self, day: date, room: ClassRef | None) -> DayChange | None:
        """The class or grade closure keeping ``room`` home on a day the school is open."""
        if room is None or not self._school_open(day):
            return None
        return next((c for c in self.changes
                     if not c.open and c.covers(day) and c.concerns(room)), None)

    def class_closures(self, room: ClassRef | None, start: date, end: date) -> list[DayChange]:
        """The closures of ``room``'s class or grade overlapping ``start``..``end``."""
        if room is None:
            return []
        return sorted((c for c in self.changes if not c.open and c.concerns(room)
                       and c.start <= end and start <= c.end), key=lambda c: c.start)

    def is_school_day(self, day: date, room: ClassRef | None = None) -> bool:
        """A school day for the whole school, or (with ``room``) for that class."""
        return self._school_open(day) and self.class_closure(day, room) is None

    def next_school_day(self, day: date, room: ClassRef | None = None) -> date:
        """``day`` itself if it is a school day, else the first school day after it."""
        for offset in range(MAX_LOOKAHEAD_DAYS):
            candidate = day + timedelta(days=offset)
            if self.is_school_day(candidate, room):
                return candidate
        raise NoSchoolDay(f"no school day within {MAX_LOOKAHEAD_DAYS} days of {day}")

    def school_days(self, start: date, end: date, room: ClassRef | None = None) -> list[date]:
        days = (start + timedelta(days=i) for i in range((end - start).days + 1))
        return [d for d in days if self.is_school_day(d, room)]

    def day_name(self, day: date) -> str:
        """Why the school is shut or open on ``day`` beyond the weekday rule, if it says."""
        change = self._school_change(day)
        if change is not None:
            return change.name
        return self.holidays.get(day, "")


def report_day(now_local: datetime, cutoff: time, calendar: SchoolCalendar) -> date:
    """The day a phone report made at ``now_local`` (school time) is recorded for.

    Before the cutoff it is today, from the cutoff on tomorrow; a day the school is shut
    moves on to the next school day (Friday 21:00 → Monday). A class closure does not move
    it: the caller is told the class is closed that day (``class_closure``).
    """
    if now_local.tzinfo is None:
        raise ValueError("now_local must be timezone-aware (the school's timezone)")
    day = now_local.date()
    if now_local.time().replace(tzinfo=None) >= cutoff:
        day += timedelta(days=1)
    return calendar.next_school_day(day)
