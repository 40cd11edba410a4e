"""Loading a school's calendar and local time for the pure rules.

Calendars are cached per process by (school id, ``School.rules_version``): every call and
page reads the school row anyway, and a changed term, holiday, cutoff or weekday gives the
row a new version (models.school), in whichever process it was changed.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import CalendarDay, School, Term
from models.school import new_rules_version
from renraku.clock import Clock
from renraku.rules.schoolday import SchoolCalendar, report_day

_calendars: dict[int, tuple[str, SchoolCalendar]] = {}


async def school_calendar(session: AsyncSession, school: School) -> SchoolCalendar:
    cached = _calendars.get(school.id)
    if cached is not None and school.rules_version and cached[0] == school.rules_version:
        return cached[1]
    calendar = await _load_calendar(session, school)
    _calendars[school.id] = (school.rules_version, calendar)
    return calendar


async def rules_changed(session: AsyncSession, school_id: int) -> None:
    """Invalidate cached rules of a school, in every process (part of the caller's
    transaction). ORM writes to a school, its terms or calendar days do this by themselves;
    call it after writing them another way (bulk SQL, imports)."""
    await session.execute(
        update(School).where(School.id == school_id).values(rules_version=new_rules_version())
    )


async def _load_calendar(session: AsyncSession, school: School) -> SchoolCalendar:
    terms = await session.execute(
        select(Term.start_date, Term.end_date).where(Term.school_id == school.id)
    )
    days = await session.execute(
        select(CalendarDay.day, CalendarDay.is_school_day).where(
            CalendarDay.school_id == school.id
        )
    )
    return SchoolCalendar(
        weekdays=frozenset(school.school_weekdays),
        terms=tuple((start, end) for start, end in terms),
        exceptions={day: flag for day, flag in days},
    )


def school_now(clock: Clock, school: School) -> datetime:
    return clock.now().astimezone(ZoneInfo(school.timezone))


async def report_day_for(session: AsyncSession, clock: Clock, school: School) -> date:
    """The day a report made now is for, by this school's cutoff, zone and calendar."""
    calendar = await school_calendar(session, school)
    return report_day(school_now(clock, school), school.phone_cutoff, calendar)
