"""The attendance register (出席簿) from the database: today's reports, the month grid, CSV.

Callers check permissions (renraku.rules.permissions) before asking for a class; these
functions trust the class id they are given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import AbsenceReport, Child, Classroom, Enrolment, School, Staff
from models.enums import ReportStatus
from renraku.rules.csv_cells import csv_bytes
from renraku.rules.register import (
    ChildRow,
    MonthRegister,
    ReportFact,
    absent_on,
    build_month,
)
from renraku.rules.schoolday import ClassRef
from renraku.services.schools import school_calendar


@dataclass(frozen=True)
class TodayEntry:
    report_id: int
    child_id: int
    child_name: str
    kind: str
    reason: str
    at_time: time | None
    memo: str
    channel: str
    status: str
    created_at: datetime
    updated_at: datetime
    seen_at: datetime | None
    guardian_name: str


async def class_children(
    session: AsyncSession, class_id: int, since: date | None = None
) -> list[Child]:
    """The class's children; with ``since``, also those who left (転出, 卒業) on or after it,
    so a past month's register still lists them."""
    present = Child.active.is_(True)
    if since is not None:
        present = or_(present, Child.left_on >= since)
    rows = await session.scalars(
        select(Child)
        .join(Enrolment, Enrolment.child_id == Child.id)
        .where(Enrolment.class_id == class_id, present)
        .order_by(Enrolment.number.nulls_last(), Child.reading, Child.name, Child.id)
    )
    return list(rows)


async def day_reports(session: AsyncSession, class_id: int, day: date) -> list[TodayEntry]:
    """Every report of the class for ``day``, cancelled ones too (struck through on the page)."""
    rows = await session.scalars(
        select(AbsenceReport)
        .join(Enrolment, Enrolment.child_id == AbsenceReport.child_id)
        .where(Enrolment.class_id == class_id, AbsenceReport.day == day)
        .options(selectinload(AbsenceReport.child), selectinload(AbsenceReport.guardian))
        .order_by(AbsenceReport.status, AbsenceReport.created_at, AbsenceReport.id)
    )
    return [
        TodayEntry(
            report_id=r.id,
            child_id=r.child_id,
            child_name=r.child.name,
            kind=r.kind,
            reason=r.reason,
            at_time=r.at_time,
            memo=r.memo,
            channel=r.channel,
            status=r.status,
            created_at=r.created_at,
            updated_at=r.updated_at,
            seen_at=r.seen_at,
            guardian_name=r.guardian.name if r.guardian else "",
        )
        for r in rows
    ]


async def change_stamp(session: AsyncSession, class_id: int, day: date) -> tuple[int, str]:
    """A cheap fingerprint of the class's reports for ``day``: changes whenever one changes.

    The live view polls this about once a second per open page, because phone reports are
    written by the FastAGI process, which cannot reach this process's in-memory bus.
    """
    count, latest_update, latest_seen = (
        await session.execute(
            select(
                func.count(AbsenceReport.id),
                func.max(AbsenceReport.updated_at),
                func.max(AbsenceReport.seen_at),
            )
            .join(Enrolment, Enrolment.child_id == AbsenceReport.child_id)
            .where(Enrolment.class_id == class_id, AbsenceReport.day == day)
        )
    ).one()
    return int(count or 0), f"{latest_update}|{latest_seen}"


async def mark_seen(
    session: AsyncSession, report_id: int, class_id: int, staff: Staff, now: datetime
) -> AbsenceReport | None:
    """The teacher has read the report; None when it is not a report of this class."""
    report = await session.scalar(
        select(AbsenceReport)
        .join(Enrolment, Enrolment.child_id == AbsenceReport.child_id)
        .where(AbsenceReport.id == report_id, Enrolment.class_id == class_id)
    )
    if report is None:
        return None
    report.seen_at = now
    report.seen_by = staff.id
    await session.flush()
    return report


async def month_register(
    session: AsyncSession, classroom: Classroom, year: int, month: int, until: date | None
) -> MonthRegister:
    school = await session.get_one(School, classroom.school_id)
    calendar = await school_calendar(session, school)
    start, end = date(year, month, 1), date(year + month // 12, month % 12 + 1, 1)
    # The children (as class_children lists them) and their active reports of the month in
    # one statement: a child without reports comes once with empty report columns.
    rows = await session.execute(
        select(Child.id, Child.name, AbsenceReport.day, AbsenceReport.kind,
               AbsenceReport.reason)
        .join(Enrolment, Enrolment.child_id == Child.id)
        .outerjoin(AbsenceReport, and_(
            AbsenceReport.child_id == Child.id,
            AbsenceReport.status == ReportStatus.ACTIVE,
            AbsenceReport.day >= start,
            AbsenceReport.day < end,
        ))
        .where(Enrolment.class_id == classroom.id,
               or_(Child.active.is_(True), Child.left_on >= start))
        .order_by(Enrolment.number.nulls_last(), Child.reading, Child.name, Child.id)
    )
    children: dict[int, ChildRow] = {}
    facts = []
    for child_id, name, day, kind, reason in rows:
        if child_id not in children:
            children[child_id] = ChildRow(child_id, name)
        if day is not None:
            facts.append(ReportFact(child_id, day, kind, reason))
    return build_month(
        year,
        month,
        list(children.values()),
        facts,
        calendar,
        until=until,
        room=ClassRef(classroom.id, classroom.grade),
    )


TOTAL_HEADERS = ("授業日数", "出停", "忌引", "出席すべき日数", "欠席", "出席", "遅刻", "早退")


def register_csv(grid: MonthRegister, class_name: str, *, bom: bool = True,
                 made_by: str = "") -> bytes:
    """The month grid as CSV; the BOM lets Excel on Japanese Windows read UTF-8 correctly.

    ``made_by`` (who exported it, when) follows the title on the first line.
    """
    counted = list(zip(grid.days, grid.day_totals, strict=True))
    return csv_bytes([
        [f"{class_name} {grid.year}年{grid.month}月 出席簿",
         *([f"出力: {made_by}"] if made_by else [])],
        ["氏名", *(f"{c.day.day}" if c.school_day else f"({c.day.day})" for c in grid.days),
         *TOTAL_HEADERS],
        *([row.child.name, *row.cells, t.school_days, t.suspended, t.bereaved, t.required,
           t.absent, t.attended, t.late, t.early] for row in grid.rows for t in [row.totals]),
        ["欠席計", *(absent_on(tot) if col.counted else "" for col, tot in counted)],
        ["遅刻計", *(tot["遅"] if col.counted else "" for col, tot in counted)],
        ["早退計", *(tot["早"] if col.counted else "" for col, tot in counted)],
    ], bom=bom)
