"""Staff's side of the school calendar: terms per academic year, closures and extra
school days (school-wide, per grade, per class). Checks are the pure rules in
renraku.rules.calendar_checks; callers check permissions (renraku.rules.permissions)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import CalendarChange, Classroom, Term
from renraku.rules.calendar_checks import change_problem, term_problem
from renraku.rules.schoolday import academic_year_bounds


class CalendarInputError(ValueError):
    """Bad input; ``str(exc)`` is the problem code of renraku.rules.calendar_checks."""


async def year_terms(session: AsyncSession, school_id: int, year: int) -> list[Term]:
    """The terms of academic year ``year`` in date order."""
    first, last = academic_year_bounds(year)
    rows = await session.scalars(
        select(Term)
        .where(Term.school_id == school_id, Term.start_date >= first, Term.start_date <= last)
        .order_by(Term.start_date)
    )
    return list(rows)


async def _check_term(session: AsyncSession, school_id: int, name: str, start: date,
                      end: date, term_id: int | None) -> None:
    others = await session.execute(
        select(Term.start_date, Term.end_date)
        .where(Term.school_id == school_id, Term.id != (term_id or 0))
    )
    problem = term_problem(name, start, end, [(s, e) for s, e in others])
    if problem:
        raise CalendarInputError(problem)


async def add_term(session: AsyncSession, school_id: int, name: str, start: date,
                   end: date) -> Term:
    await _check_term(session, school_id, name, start, end, None)
    term = Term(school_id=school_id, name=name.strip()[:100], start_date=start, end_date=end)
    session.add(term)
    await session.flush()
    return term


async def edit_term(session: AsyncSession, term: Term, name: str, start: date,
                    end: date) -> Term:
    await _check_term(session, term.school_id, name, start, end, term.id)
    term.name, term.start_date, term.end_date = name.strip()[:100], start, end
    await session.flush()
    return term


async def delete_term(session: AsyncSession, term: Term) -> None:
    await session.delete(term)
    await session.flush()


async def school_term(session: AsyncSession, school_id: int, term_id: int) -> Term | None:
    term = await session.get(Term, term_id)
    return term if term is not None and term.school_id == school_id else None


async def changes_from(session: AsyncSession, school_id: int, since: date) -> list[CalendarChange]:
    """Closures and extra school days ending on or after ``since``, soonest first."""
    rows = await session.scalars(
        select(CalendarChange)
        .where(CalendarChange.school_id == school_id, CalendarChange.end_date >= since)
        .order_by(CalendarChange.start_date, CalendarChange.id)
    )
    return list(rows)


async def add_change(
    session: AsyncSession,
    school_id: int,
    start: date,
    end: date,
    *,
    open_day: bool = False,
    name: str = "",
    class_id: int | None = None,
    grade: int | None = None,
    staff_id: int | None = None,
) -> CalendarChange:
    problem = change_problem(start, end, open_day=open_day, class_id=class_id, grade=grade)
    if problem:
        raise CalendarInputError(problem)
    if class_id is not None:
        room = await session.get(Classroom, class_id)
        if room is None or room.school_id != school_id:
            raise CalendarInputError("class")
    change = CalendarChange(school_id=school_id, start_date=start, end_date=end,
                            is_school_day=open_day, name=name.strip()[:100],
                            class_id=class_id, grade=grade, created_by=staff_id)
    session.add(change)
    await session.flush()
    return change


async def school_change(session: AsyncSession, school_id: int,
                        change_id: int) -> CalendarChange | None:
    change = await session.get(CalendarChange, change_id)
    return change if change is not None and change.school_id == school_id else None


async def delete_change(session: AsyncSession, change: CalendarChange) -> None:
    await session.delete(change)
    await session.flush()
