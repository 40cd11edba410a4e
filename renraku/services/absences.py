"""Creating, changing and cancelling absence reports, with history, for phone and web alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import AbsenceReport, AbsenceReportChange, Guardian, Staff
from models.enums import SYMPTOM_REASONS, ReportKind, ReportReason, ReportStatus, Symptom
from renraku import metrics


@dataclass(frozen=True)
class ReportDraft:
    child_id: int
    day: date
    kind: ReportKind
    reason: ReportReason
    at_time: time | None = None
    memo: str = ""
    symptom: Symptom | None = None  # kept only with an illness or suspension

    @property
    def kept_symptom(self) -> str | None:
        return self.symptom if self.reason in SYMPTOM_REASONS else None


def snapshot(report: AbsenceReport) -> dict[str, Any]:
    return {
        "day": report.day.isoformat(),
        "kind": report.kind,
        "reason": report.reason,
        "symptom": report.symptom,
        "at_time": report.at_time.strftime("%H:%M") if report.at_time else None,
        "memo": report.memo,
        "status": report.status,
    }


def _log(
    session: AsyncSession,
    report: AbsenceReport,
    action: str,
    before: dict[str, Any] | None,
    *,
    channel: str,
    now: datetime,
    guardian_id: int | None = None,
    staff_id: int | None = None,
) -> None:
    session.add(
        AbsenceReportChange(
            report=report,
            action=action,
            channel=channel,
            guardian_id=guardian_id,
            staff_id=staff_id,
            before=before,
            after=snapshot(report),
            at=now,
        )
    )


async def submit(
    session: AsyncSession,
    draft: ReportDraft,
    *,
    channel: str,
    guardian_id: int | None,
    now: datetime,
) -> AbsenceReport:
    """Record a confirmed report; the same child, day and kind again updates it instead."""
    report = await session.scalar(
        select(AbsenceReport).where(
            AbsenceReport.child_id == draft.child_id,
            AbsenceReport.day == draft.day,
            AbsenceReport.kind == draft.kind,
            AbsenceReport.status == ReportStatus.ACTIVE,
        )
    )
    if report is None:
        report = AbsenceReport(
            child_id=draft.child_id,
            day=draft.day,
            kind=draft.kind,
            reason=draft.reason,
            symptom=draft.kept_symptom,
            at_time=draft.at_time,
            memo=draft.memo,
            channel=channel,
            guardian_id=guardian_id,
            status=ReportStatus.ACTIVE,
            created_at=now,
            updated_at=now,
        )
        session.add(report)
        _log(session, report, "created", None, channel=channel, now=now, guardian_id=guardian_id)
    else:
        before = snapshot(report)
        report.reason = draft.reason
        report.symptom = draft.kept_symptom
        report.at_time = draft.at_time
        report.memo = draft.memo or report.memo
        report.updated_at = now
        report.guardian_id = guardian_id
        report.seen_at = None  # a changed report needs the teacher's eye again
        _log(session, report, "reconfirmed", before, channel=channel, now=now,
             guardian_id=guardian_id)
    await session.flush()
    metrics.REPORTS_CONFIRMED.labels(channel).inc()
    return report


async def change(
    session: AsyncSession,
    report: AbsenceReport,
    draft: ReportDraft,
    *,
    channel: str,
    guardian_id: int | None,
    now: datetime,
) -> AbsenceReport:
    """Change day, kind, reason, time or memo of an active report."""
    if report.status != ReportStatus.ACTIVE:
        raise ValueError("only an active report can be changed")
    before = snapshot(report)
    report.day = draft.day
    report.kind = draft.kind
    report.reason = draft.reason
    report.symptom = draft.kept_symptom
    report.at_time = draft.at_time
    report.memo = draft.memo
    report.updated_at = now
    report.seen_at = None
    _log(session, report, "changed", before, channel=channel, now=now, guardian_id=guardian_id)
    await session.flush()
    return report


async def cancel(
    session: AsyncSession,
    report: AbsenceReport,
    *,
    channel: str,
    guardian_id: int | None,
    now: datetime,
) -> AbsenceReport:
    """Cancel a report; it stays in the table, marked cancelled, with its history."""
    if report.status == ReportStatus.CANCELLED:
        return report
    before = snapshot(report)
    report.status = ReportStatus.CANCELLED
    report.cancelled_at = now
    report.updated_at = now
    report.seen_at = None
    _log(session, report, "cancelled", before, channel=channel, now=now, guardian_id=guardian_id)
    await session.flush()
    return report


async def active_reports(
    session: AsyncSession, child_ids: list[int], from_day: date
) -> list[AbsenceReport]:
    """Active reports of these children from ``from_day`` on, soonest first."""
    return await _children_reports(
        session, child_ids,
        select(AbsenceReport)
        .where(AbsenceReport.day >= from_day, AbsenceReport.status == ReportStatus.ACTIVE)
        .order_by(AbsenceReport.day, AbsenceReport.child_id, AbsenceReport.id))


async def history(
    session: AsyncSession, child_ids: list[int], first: date, last: date
) -> list[AbsenceReport]:
    """Every report of these children between two days, cancelled ones too, with changes.

    Newest day first: a family looks back from today.
    """
    return await _children_reports(
        session, child_ids,
        select(AbsenceReport)
        .where(AbsenceReport.day >= first, AbsenceReport.day <= last)
        .options(selectinload(AbsenceReport.changes))
        .order_by(AbsenceReport.day.desc(), AbsenceReport.child_id, AbsenceReport.id.desc()))


async def _children_reports(session: AsyncSession, child_ids: list[int],
                            query: Select[tuple[AbsenceReport]]) -> list[AbsenceReport]:
    if not child_ids:
        return []
    return list(await session.scalars(query.where(AbsenceReport.child_id.in_(child_ids))))


async def report_years(session: AsyncSession, child_ids: list[int]) -> list[date]:
    """The first and the last day of these children's reports (empty without reports)."""
    if not child_ids:
        return []
    first, last = (await session.execute(
        select(func.min(AbsenceReport.day), func.max(AbsenceReport.day))
        .where(AbsenceReport.child_id.in_(child_ids))
    )).one()
    return [first, last] if first is not None else []


async def actor_names(
    session: AsyncSession, reports: list[AbsenceReport]
) -> dict[tuple[str, int], str]:
    """Who made the reports and their changes: ("guardian" | "staff", id) → name."""
    gids = {r.guardian_id for r in reports} | {
        c.guardian_id for r in reports for c in r.changes}
    sids = {c.staff_id for r in reports for c in r.changes}
    names: dict[tuple[str, int], str] = {}
    if gids - {None}:
        for gid, name in await session.execute(
                select(Guardian.id, Guardian.name).where(Guardian.id.in_(gids - {None}))):
            names["guardian", gid] = name
    if sids - {None}:
        for sid, name in await session.execute(
                select(Staff.id, Staff.name).where(Staff.id.in_(sids - {None}))):
            names["staff", sid] = name
    return names
