"""The morning roll call in the database: a class's roll, marking, the school's summary.

Callers check permissions (renraku.rules.permissions) first; these functions trust the
class and school ids they are given.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import AbsenceReport, Classroom, Enrolment, FollowUp, RollCall
from models.enums import ReportStatus, RollMark
from renraku.rules.rollcall import ClassCounts, class_counts, is_unexplained, suggested_mark
from renraku.services.register import class_children


@dataclass(frozen=True)
class RollRow:
    child_id: int
    name: str
    marked: str | None  # the teacher's mark
    mark: str | None  # the teacher's mark, else what the reports suggest
    report_kinds: frozenset[str]
    followup_status: str | None
    answer: str | None

    @property
    def unexplained(self) -> bool:
        return is_unexplained(self.mark, self.report_kinds, self.answer)


async def _facts(
    session: AsyncSession, child_ids: list[int], day: date
) -> tuple[dict[int, str], dict[int, set[str]], dict[int, FollowUp]]:
    marks = dict((await session.execute(
        select(RollCall.child_id, RollCall.mark)
        .where(RollCall.child_id.in_(child_ids), RollCall.day == day)
    )).all())
    kinds: dict[int, set[str]] = defaultdict(set)
    for child_id, kind in await session.execute(
        select(AbsenceReport.child_id, AbsenceReport.kind).where(
            AbsenceReport.child_id.in_(child_ids), AbsenceReport.day == day,
            AbsenceReport.status == ReportStatus.ACTIVE,
        )
    ):
        kinds[child_id].add(kind)
    followups = {f.child_id: f for f in await session.scalars(
        select(FollowUp).where(FollowUp.child_id.in_(child_ids), FollowUp.day == day)
    )}
    return marks, kinds, followups


async def class_roll(session: AsyncSession, class_id: int, day: date) -> list[RollRow]:
    children = await class_children(session, class_id)
    marks, kinds, followups = await _facts(session, [c.id for c in children], day)
    rows = []
    for c in children:
        k = frozenset(kinds.get(c.id, ()))
        f = followups.get(c.id)
        rows.append(RollRow(
            c.id, c.name, marks.get(c.id), marks.get(c.id) or suggested_mark(k), k,
            f.status if f else None, f.answer if f else None,
        ))
    return rows


async def set_mark(
    session: AsyncSession, child_id: int, day: date, mark: RollMark, staff_id: int,
    now: datetime,
) -> RollCall:
    """Write (or replace) the child's mark for the day; two teachers at once both land."""
    for _ in range(2):
        row = await session.scalar(
            select(RollCall).where(RollCall.child_id == child_id, RollCall.day == day)
        )
        if row is not None:
            row.mark, row.marked_by, row.marked_at = mark, staff_id, now
            await session.flush()
            return row
        try:
            async with session.begin_nested():
                row = RollCall(child_id=child_id, day=day, mark=mark, marked_by=staff_id,
                               marked_at=now)
                session.add(row)
            return row
        except IntegrityError:
            continue  # another mark for the child landed first: update that one
    raise RuntimeError("roll mark could not be written")


async def unexplained_children(
    session: AsyncSession, school_id: int, day: date, class_ids: list[int] | None = None
) -> list[int]:
    """Children of the school (or of these classes) absent without any explanation yet."""
    q = select(RollCall.child_id).where(RollCall.day == day, RollCall.mark == RollMark.ABSENT)
    if class_ids is not None:
        q = q.where(RollCall.child_id.in_(
            select(Enrolment.child_id).where(Enrolment.class_id.in_(class_ids))))
    else:
        q = q.where(RollCall.child_id.in_(
            select(Enrolment.child_id).join(Classroom, Classroom.id == Enrolment.class_id)
            .where(Classroom.school_id == school_id)))
    ids = sorted(set(await session.scalars(q)))
    marks, kinds, followups = await _facts(session, ids, day)
    return [
        cid for cid in ids
        if is_unexplained(marks.get(cid), kinds.get(cid, set()),
                          followups[cid].answer if cid in followups else None)
    ]


@dataclass(frozen=True)
class ClassSummary:
    class_id: int
    name: str
    counts: ClassCounts


async def school_summary(
    session: AsyncSession, classes: list[Classroom], day: date
) -> list[ClassSummary]:
    """Per class: reported, unexplained, present (the principal's morning view)."""
    out = []
    for room in classes:
        rows = await class_roll(session, room.id, day)
        out.append(ClassSummary(room.id, room.name, class_counts(
            (r.mark, r.report_kinds, r.answer) for r in rows)))
    return out


async def stamp(session: AsyncSession, day: date, class_id: int | None = None,
                school_id: int | None = None) -> tuple[object, ...]:
    """A fingerprint of the day's marks, reports and follow-ups of a class (or school):
    changes whenever one of them does (the live pages poll it, as register.change_stamp)."""
    if class_id is not None:
        children = select(Enrolment.child_id).where(Enrolment.class_id == class_id)
    else:
        children = (select(Enrolment.child_id)
                    .join(Classroom, Classroom.id == Enrolment.class_id)
                    .where(Classroom.school_id == school_id))
    marks = (await session.execute(
        select(func.count(RollCall.id), func.max(RollCall.marked_at))
        .where(RollCall.day == day, RollCall.child_id.in_(children))
    )).one()
    reports = (await session.execute(
        select(func.count(AbsenceReport.id), func.max(AbsenceReport.updated_at))
        .where(AbsenceReport.day == day, AbsenceReport.child_id.in_(children))
    )).one()
    followups = (await session.execute(
        select(func.count(FollowUp.id), func.max(FollowUp.updated_at))
        .where(FollowUp.day == day, FollowUp.child_id.in_(children))
    )).one()
    return (*marks, *reports, *followups)
