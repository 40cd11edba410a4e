"""Loading a school's calendar and local time for the pure rules."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import CalendarChange, Classroom, Enrolment, School, Term
from renraku.clock import Clock
from renraku.rules.jp_holidays import japan_holidays
from renraku.rules.schoolday import ClassRef, DayChange, SchoolCalendar, academic_year, report_day


async def school_calendar(session: AsyncSession, school: School) -> SchoolCalendar:
    terms = await session.execute(
        select(Term.start_date, Term.end_date).where(Term.school_id == school.id)
    )
    changes = await session.scalars(
        select(CalendarChange).where(CalendarChange.school_id == school.id)
    )
    return SchoolCalendar(
        weekdays=frozenset(school.school_weekdays),
        terms=tuple((start, end) for start, end in terms),
        holidays=japan_holidays(),
        changes=tuple(
            DayChange(c.start_date, c.end_date, c.is_school_day, c.name, c.class_id, c.grade)
            for c in changes
        ),
    )


async def class_on(session: AsyncSession, child_id: int, day: date) -> ClassRef | None:
    """The child's class in the academic year of ``day`` (before the April rollover: the
    latest class they have), for closures; None for a child in no class."""
    rooms = await session.execute(
        select(Classroom.id, Classroom.grade, Classroom.academic_year)
        .join(Enrolment, Enrolment.class_id == Classroom.id)
        .where(Enrolment.child_id == child_id)
        .order_by(Classroom.academic_year.desc(), Classroom.id)
    )
    found = list(rooms)
    year = academic_year(day)
    room = next((r for r in found if r.academic_year == year), found[0] if found else None)
    return ClassRef(room.id, room.grade) if room is not None else None


def school_now(clock: Clock, school: School) -> datetime:
    return clock.now().astimezone(ZoneInfo(school.timezone))


async def report_day_for(session: AsyncSession, clock: Clock, school: School) -> date:
    """The day a report made now is for, by this school's cutoff, zone and calendar."""
    calendar = await school_calendar(session, school)
    return report_day(school_now(clock, school), school.phone_cutoff, calendar)
