"""Loading a school's calendar and local time for the pure rules."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import CalendarDay, School, Term
from renraku.clock import Clock
from renraku.rules.schoolday import SchoolCalendar, report_day


async def school_calendar(session: AsyncSession, school: School) -> SchoolCalendar:
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
