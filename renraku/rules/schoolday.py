"""Which days are school days, and which day a report made "now" is for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

# A report is never pushed further than this; a longer gap means the calendar is wrong.
MAX_LOOKAHEAD_DAYS = 120


class NoSchoolDay(ValueError):
    pass


@dataclass(frozen=True)
class SchoolCalendar:
    weekdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})  # ISO: 1 = Monday
    terms: tuple[tuple[date, date], ...] = ()  # empty: every week of the year counts
    exceptions: Mapping[date, bool] = field(default_factory=dict)  # holidays, Saturday classes

    def is_school_day(self, day: date) -> bool:
        if day in self.exceptions:
            return self.exceptions[day]
        if self.terms and not any(start <= day <= end for start, end in self.terms):
            return False
        return day.isoweekday() in self.weekdays

    def next_school_day(self, day: date) -> date:
        """``day`` itself if it is a school day, else the first school day after it."""
        for offset in range(MAX_LOOKAHEAD_DAYS):
            candidate = day + timedelta(days=offset)
            if self.is_school_day(candidate):
                return candidate
        raise NoSchoolDay(f"no school day within {MAX_LOOKAHEAD_DAYS} days of {day}")

    def school_days(self, start: date, end: date) -> list[date]:
        days = (start + timedelta(days=i) for i in range((end - start).days + 1))
        return [d for d in days if self.is_school_day(d)]


def report_day(now_local: datetime, cutoff: time, calendar: SchoolCalendar) -> date:
    """The day a phone report made at ``now_local`` (school time) is recorded for.

    Before the cutoff it is today, from the cutoff on tomorrow; a non-school day moves on
    to the next school day (Friday 21:00 → Monday).
    """
    if now_local.tzinfo is None:
        raise ValueError("now_local must be timezone-aware (the school's timezone)")
    day = now_local.date()
    if now_local.time().replace(tzinfo=None) >= cutoff:
        day += timedelta(days=1)
    return calendar.next_school_day(day)

