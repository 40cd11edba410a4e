"""What staff may enter in the school calendar: terms and date-range changes (pure).

Each check returns a problem code (the web page translates it) or None when the entry
is fine. Codes: ``order`` end before start; ``outside_year`` a term leaving its academic
year (April to March); ``overlap`` a term overlapping another; ``name`` no name;
``too_long`` a change over more than a year; ``scope`` both a class and a grade;
``open_scope`` an extra school day for less than the whole school; ``grade`` no such grade.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from renraku.rules.schoolday import academic_year, academic_year_bounds

MAX_CHANGE_DAYS = 366
MAX_GRADE = 9  # 小中一貫 (compulsory education schools) count grades 1 to 9


def term_problem(name: str, start: date, end: date,
                 others: Iterable[tuple[date, date]]) -> str | None:
    """A term must have a name, end after it starts, stay inside one academic year and
    overlap no other term of the school (``others``: the rest, the edited one left out)."""
    if not name.strip():
        return "name"
    if end < start:
        return "order"
    if end > academic_year_bounds(academic_year(start))[1]:
        return "outside_year"
    if any(start <= other_end and other_start <= end for other_start, other_end in others):
        return "overlap"
    return None


def change_problem(start: date, end: date, *, open_day: bool, class_id: int | None,
                   grade: int | None) -> str | None:
    if end < start:
        return "order"
    if (end - start).days >= MAX_CHANGE_DAYS:
        return "too_long"
    if class_id is not None and grade is not None:
        return "scope"
    if open_day and (class_id is not None or grade is not None):
        return "open_scope"
    if grade is not None and not 1 <= grade <= MAX_GRADE:
        return "grade"
    return None
