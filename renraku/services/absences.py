"""Creating, changing and cancelling absence reports, with history, for phone and web alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AbsenceReport, AbsenceReportChange
from models.enums import SYMPTOM_REASONS, ReportKind, ReportReason, ReportStatus, Symptom


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
    if not child_ids:
        return []
    rows = await session.scalars(
        select(AbsenceReport)
        .where(
            AbsenceReport.child_id.in_(child_ids),
            AbsenceReport.day >= from_day,
            AbsenceReport.status == ReportStatus.ACTIVE,
        )
        .order_by(AbsenceReport.day, AbsenceReport.child_id, AbsenceReport.id)
    )
    return list(rows)
