"""Creating, changing and cancelling absence reports, with history, for phone and web alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import Row, Select, bindparam, func, insert, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, make_transient_to_detached, selectinload

from models import AbsenceReport, AbsenceReportChange, Guardian, Staff
from models.enums import SYMPTOM_REASONS, ReportKind, ReportReason, ReportStatus, Symptom
from renraku import metrics

# The absence line's statements, built once: at the morning peak building expressions and
# cache keys anew each call was a tenth of a call's CPU (issue #17).
_ACTIVE_OF_KIND = select(AbsenceReport).where(
    AbsenceReport.child_id == bindparam("child"),
    AbsenceReport.day == bindparam("day"),
    AbsenceReport.kind == bindparam("kind"),
    AbsenceReport.status == ReportStatus.ACTIVE,
)
_ACTIVE_FROM = (
    select(AbsenceReport)
    .where(AbsenceReport.child_id.in_(bindparam("children", expanding=True)),
           AbsenceReport.day >= bindparam("from"), AbsenceReport.status == ReportStatus.ACTIVE)
    .order_by(AbsenceReport.day, AbsenceReport.child_id, AbsenceReport.id)
)
# SQLite: a new report, or nothing where the child already has an active one of that kind
# that day (uq_absence_active): one statement on the confirm key where a look-up, then an
# INSERT, were two; its history row follows. The table's own INSERT, its row made the
# session's object after (``_as_loaded``): through the ORM's bulk INSERT … RETURNING the
# same statement cost about a tenth of the absence line's CPU at the peak (issue #17,
# tenth round).
_NEW_REPORT = (sqlite.insert(AbsenceReport.__table__)
               .on_conflict_do_nothing(index_elements=["child_id", "day", "kind"],
                                       index_where=text("status = 'active'"))
               .returning(*AbsenceReport.__table__.c))
# The table's own INSERT, not the ORM's bulk one (insert(AbsenceReportChange) with a list):
# the same statement, without the ORM's per-row bookkeeping (a tenth of the absence
# line's main thread at the peak went to the bulk path, profiled; issue #17).
_NEW_CHANGE = insert(AbsenceReportChange.__table__)
# What a new report leaves to the database (its id) and to later changes; every other
# column comes from the row ``create`` is given
_NOT_NEW = frozenset({"id", "cancelled_at", "seen_at", "seen_by"})
_CHANGE_COLUMNS = ("channel", "guardian_id", "after", "at")


def _new_report_with_its_change() -> Select[tuple[AbsenceReport]]:
    """PostgreSQL: the new report and its "created" history row in one statement (a
    data-modifying WITH), so that it can run as its own transaction: no BEGIN and no
    COMMIT, one round trip on the confirm key where there were four (issue #17). Where the
    report exists already, neither row is written and no row comes back."""
    reports, changes = AbsenceReport.__table__.c, AbsenceReportChange.__table__.c
    new = (postgresql.insert(AbsenceReport)
           .values({c.name: bindparam(c.name, type_=c.type) for c in reports
                    if c.name not in _NOT_NEW})
           .on_conflict_do_nothing(index_elements=["child_id", "day", "kind"],
                                   index_where=text("status = 'active'"))
           .returning(*reports)
           .cte("new_report"))
    logged = (insert(AbsenceReportChange)
              .from_select(["report_id", "action", *_CHANGE_COLUMNS], select(
                  new.c.id, literal("created", changes.action.type),
                  *(bindparam(name, type_=changes[name].type) for name in _CHANGE_COLUMNS)))
              .cte("new_change"))
    return select(aliased(AbsenceReport, new)).add_cte(logged)


_NEW_REPORT_LOGGED = _new_report_with_its_change()


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


async def _log(
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
    """The report's write, then its history row. An INSERT of the row rather than an object
    in the unit of work: flushing a new report and its change together cost about a sixth
    of an absence call's CPU (issue #17); the statements are the same."""
    await session.flush()
    await session.execute(_NEW_CHANGE, {
        "report_id": report.id, "action": action, "channel": channel,
        "guardian_id": guardian_id, "staff_id": staff_id, "before": before,
        "after": snapshot(report), "at": now,
    })


def _as_loaded(session: AsyncSession, row: Row[Any]) -> AbsenceReport:
    """A report row just inserted, as the session's own object, as a query would have
    given it: changes to it are flushed as an UPDATE (the voicemail's confirm sets seen_at)."""
    report = AbsenceReport(**row._mapping)
    make_transient_to_detached(report)
    session.add(report)
    return report


async def create(
    session: AsyncSession,
    draft: ReportDraft,
    *,
    channel: str,
    guardian_id: int | None,
    now: datetime,
) -> AbsenceReport | None:
    """A new report with its history, or None (nothing written) where the child already has
    an active report of that kind that day. On PostgreSQL this is a single statement, which
    may run outside a transaction (``models.db.one_statement``)."""
    row = {
        "child_id": draft.child_id, "day": draft.day, "kind": draft.kind,
        "reason": draft.reason, "symptom": draft.kept_symptom, "at_time": draft.at_time,
        "memo": draft.memo, "channel": channel, "guardian_id": guardian_id,
        "status": ReportStatus.ACTIVE, "created_at": now, "updated_at": now,
    }
    if session.get_bind().dialect.name == "postgresql":
        report = await session.scalar(_NEW_REPORT_LOGGED, {
            **row, "after": snapshot(AbsenceReport(**row)), "at": now})
    elif (inserted := (await session.execute(_NEW_REPORT, row)).one_or_none()) is not None:
        report = _as_loaded(session, inserted)
        await _log(session, report, "created", None, channel=channel, now=now,
                   guardian_id=guardian_id)
    else:
        report = None
    if report is not None:
        metrics.REPORTS_CONFIRMED.labels(channel).inc()
    return report


async def submit(
    session: AsyncSession,
    draft: ReportDraft,
    *,
    channel: str,
    guardian_id: int | None,
    now: datetime,
) -> AbsenceReport:
    """Record a confirmed report; the same child, day and kind again updates it instead
    (also when another writer created it a moment ago: no unique-constraint error)."""
    report = await create(session, draft, channel=channel, guardian_id=guardian_id, now=now)
    if report is not None:
        return report
    return await reconfirm(session, draft, channel=channel, guardian_id=guardian_id, now=now)


async def reconfirm(
    session: AsyncSession,
    draft: ReportDraft,
    *,
    channel: str,
    guardian_id: int | None,
    now: datetime,
) -> AbsenceReport:
    """The child's active report of that kind that day, confirmed again with the draft's
    reason, time and memo (``create`` found it there); created after all when it was
    cancelled meanwhile."""
    report = await session.scalar(_ACTIVE_OF_KIND, {"child": draft.child_id,
                                                    "day": draft.day, "kind": draft.kind})
    if report is None:
        return await submit(session, draft, channel=channel, guardian_id=guardian_id, now=now)
    before = snapshot(report)
    report.reason = draft.reason
    report.symptom = draft.kept_symptom
    report.at_time = draft.at_time
    report.memo = draft.memo or report.memo
    report.updated_at = now
    report.guardian_id = guardian_id
    report.seen_at = None  # a changed report needs the teacher's eye again
    await _log(session, report, "reconfirmed", before, channel=channel, now=now,
               guardian_id=guardian_id)
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
    await _log(session, report, "changed", before, channel=channel, now=now,
               guardian_id=guardian_id)
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
    await _log(session, report, "cancelled", before, channel=channel, now=now,
               guardian_id=guardian_id)
    return report


async def active_reports(
    session: AsyncSession, child_ids: list[int], from_day: date
) -> list[AbsenceReport]:
    """Active reports of these children from ``from_day`` on, soonest first."""
    if not child_ids:
        return []
    return list(await session.scalars(_ACTIVE_FROM, {"children": child_ids, "from": from_day}))


async def history(
    session: AsyncSession, child_ids: list[int], first: date, last: date
) -> list[AbsenceReport]:
    """Every report of these children between two days, cancelled ones too, with changes.

    Newest day first: a family looks back from today.
    """
    if not child_ids:
        return []
    return list(await session.scalars(
        select(AbsenceReport)
        .where(AbsenceReport.child_id.in_(child_ids), AbsenceReport.day >= first,
               AbsenceReport.day <= last)
        .options(selectinload(AbsenceReport.changes))
        .order_by(AbsenceReport.day.desc(), AbsenceReport.child_id, AbsenceReport.id.desc())))


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
