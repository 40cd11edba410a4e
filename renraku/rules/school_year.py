"""The Japanese school year (年度): 1 April to 31 March, named by the year it starts in."""

from __future__ import annotations

from datetime import date

FIRST_MONTH = 4  # April


def school_year_of(day: date) -> int:
    """2027-03-31 belongs to school year 2026; 2027-04-01 starts 2027."""
    return day.year if day.month >= FIRST_MONTH else day.year - 1


def school_year_days(year: int) -> tuple[date, date]:
    """First and last day of a school year."""
    return date(year, FIRST_MONTH, 1), date(year + 1, FIRST_MONTH - 1, 31)
