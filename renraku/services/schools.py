"""Schools: creating one and its settings, its calendar and local time for the pure rules.

Calendars are cached per process by (school id, ``School.rules_version``): every call and
page reads the school row anyway, and a changed term, closure, cutoff or weekday gives the
row a new version (models.school), in whichever process it was changed.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import CalendarChange, Classroom, Enrolment, School, Term
from models.school import new_rules_version
from renraku.clock import Clock
from renraku.rules.jp_holidays import japan_holidays
from renraku.rules.school_settings import SchoolSettings
from renraku.rules.schoolday import ClassRef, DayChange, SchoolCalendar, academic_year, report_day
from renraku.settings import Settings

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
    transaction). ORM writes to a school, its terms or calendar changes do this by themselves;
    call it after writing them another way (bulk SQL, imports)."""
    await session.execute(
        update(School).where(School.id == school_id).values(rules_version=new_rules_version())
    )


async def _load_calendar(session: AsyncSession, school: School) -> SchoolCalendar:
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
    latest class they have), for closures; None for a child in no class. A child in two
    classes of the year counts the homeroom as the roster does: a graded class before a
    mixed-grade special-needs one, so a grade closure (学年閉鎖) closes it for them."""
    rooms = await session.execute(
        select(Classroom.id, Classroom.grade, Classroom.academic_year)
        .join(Enrolment, Enrolment.class_id == Classroom.id)
        .where(Enrolment.child_id == child_id)
        .order_by(Classroom.academic_year.desc(), Classroom.grade.desc(), Classroom.id)
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


async def create_school(session: AsyncSession, values: SchoolSettings) -> School:
    """A new school from checked settings (rules.school_settings.parse_school_settings)."""
    school = School()
    apply_settings(school, values)
    session.add(school)
    await session.flush()
    return school


def apply_settings(school: School, values: SchoolSettings) -> None:
    school.name, school.reading = values.name, values.reading
    school.timezone, school.phone_cutoff = values.timezone, values.phone_cutoff
    school.languages = list(values.languages)
    school.school_weekdays = list(values.school_weekdays)
    school.absence_line_e164 = values.absence_line_e164
    school.call_window_start, school.call_window_end = values.call_window or (None, None)


def current_settings(school: School) -> SchoolSettings:
    window = None
    if school.call_window_start and school.call_window_end:
        window = (school.call_window_start, school.call_window_end)
    return SchoolSettings(school.name, school.reading, school.timezone, school.phone_cutoff,
                          tuple(school.languages), school.absence_line_e164, window,
                          tuple(school.school_weekdays))


def calling_window(school: School, settings: Settings) -> tuple[str, str]:
    """The school's own broadcast window, else the installation's (HH:MM, school time)."""
    if school.call_window_start and school.call_window_end:
        return school.call_window_start, school.call_window_end
    return settings.calling_window_start, settings.calling_window_end
