"""The school-year rollover (進級処理) from the database: preview, then apply in one transaction.

Last year's classes, enrolments and reports stay as they are (their registers and CSVs stay
downloadable); the new year's classes are created (or reused when the admin made them
already) and every child staying gets an enrolment there. Graduates leave like a transfer
(history kept, guardians no longer see them). A year is rolled over once: when any child
is enrolled in a class of the target year, the rollover is refused. It is applied from the
new year's first day (1 April): before, graduates are still at school (their families report
absences until the ceremony) and this year's classes are still this year's. The preview
works any time, so the office prepares it in March.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Child, Classroom, Enrolment, School, StaffClass
from models.enums import LeaveReason
from renraku.rules import roster as roster_rules
from renraku.rules.roster import normalise_section
from renraku.rules.schoolyear import Member, RolloverPlan, last_grade_of, plan_rollover, year_end
from renraku.services.roster import leave, refs, year_classes


class RolloverRefused(Exception):
    """``code``: no_year (nothing to roll over), not_next (``to`` is not the next year),
    already_done (children are enrolled in ``to`` already), too_early (before 1 April)."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = {k: str(v) for k, v in params.items()}


@dataclass
class Rollover:
    from_year: int
    to_year: int
    last_grade: int
    plan: RolloverPlan
    starts_on: date  # the first day it may be applied
    ready: bool  # that day has come
    applied: bool = False


async def latest_year(session: AsyncSession, school_id: int) -> int | None:
    """The newest academic year with enrolled children."""
    return await session.scalar(
        select(func.max(Classroom.academic_year))
        .join(Enrolment, Enrolment.class_id == Classroom.id)
        .where(Classroom.school_id == school_id))


async def rollover(session: AsyncSession, school: School, to_year: int, now: datetime, *,
                   assignments: bytes | None = None, encoding: str | None = None,
                   last_grade: int | None = None, apply: bool = False) -> Rollover:
    """Plan the rollover to ``to_year``; with ``apply`` and no problem, do it.

    Raises RolloverRefused, or ``roster.RosterFileError`` for an unreadable assignments file.
    """
    from_year = await latest_year(session, school.id)
    if from_year is None:
        raise RolloverRefused("no_year")
    if from_year >= to_year:
        raise RolloverRefused("already_done", year=to_year)
    if from_year != to_year - 1:
        raise RolloverRefused("not_next", year=from_year + 1)
    classes = refs(await year_classes(session, school.id, from_year))
    members = await _members(session, [c.class_id for c in classes])
    teachers = await session.execute(select(StaffClass.staff_id, StaffClass.class_id).where(
        StaffClass.class_id.in_([c.class_id for c in classes])))
    parsed = None
    if assignments is not None:
        text, _used = roster_rules.decode(assignments, encoding)
        parsed = roster_rules.parse(text, roster_rules.ASSIGNMENT_REQUIRED)
    top = last_grade or last_grade_of(classes)
    pairs = [(staff_id, class_id) for staff_id, class_id in teachers]
    plan = plan_rollover(classes, members, pairs, top, parsed)
    starts_on = year_end(from_year) + timedelta(days=1)
    today = now.astimezone(ZoneInfo(school.timezone)).date()
    result = Rollover(from_year, to_year, top, plan, starts_on, today >= starts_on)
    if apply and not result.ready:
        raise RolloverRefused("too_early", day=starts_on.isoformat())
    if apply and plan.ok:
        await _apply(session, school.id, result, now)
        result.applied = True
    return result


async def _members(session: AsyncSession, class_ids: list[int]) -> list[Member]:
    rows = await session.execute(
        select(Child.id, Child.student_number, Child.name, Enrolment.class_id, Enrolment.number)
        .join(Enrolment, Enrolment.child_id == Child.id)
        .where(Enrolment.class_id.in_(class_ids), Child.active.is_(True))
        .order_by(Enrolment.class_id, Enrolment.number, Child.reading, Child.id))
    return [Member(cid, number or f"#{cid}", name, class_id, attendance)
            for cid, number, name, class_id, attendance in rows]


async def _apply(session: AsyncSession, school_id: int, result: Rollover,
                 now: datetime) -> None:
    plan = result.plan
    existing = {(c.grade, normalise_section(c.name)): c
                for c in await year_classes(session, school_id, result.to_year)}
    rooms: dict[tuple[int, str], int] = {}
    for grade, name in plan.new_classes:
        room = existing.get((grade, normalise_section(name)))
        if room is None:
            room = Classroom(school_id=school_id, academic_year=result.to_year, grade=grade,
                             name=name)
            session.add(room)
            await session.flush()
        rooms[(grade, name)] = room.id
    if plan.moves:
        await session.execute(insert(Enrolment), [
            {"child_id": m.child_id, "class_id": rooms[m.to], "number": m.number}
            for m in plan.moves])
    taken = {(staff_id, class_id) for staff_id, class_id in await session.execute(
        select(StaffClass.staff_id, StaffClass.class_id).where(
            StaffClass.class_id.in_(list(rooms.values()))))}
    session.add_all(StaffClass(staff_id=staff_id, class_id=rooms[to])
                    for staff_id, to in plan.teachers if (staff_id, rooms[to]) not in taken)
    graduates = {g.child_id for g in plan.graduates}
    for child in await session.scalars(select(Child).where(Child.id.in_(graduates))):
        await leave(session, child, year_end(result.from_year), now, LeaveReason.GRADUATED)
    await session.flush()
