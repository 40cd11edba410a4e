"""The nurse's dashboard from the database: the last 14 days of every class, the illness
and infectious-disease reports, and the CSV export (renraku.rules.health does the counting).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AbsenceReport, Child, Classroom, Enrolment, School
from models.enums import SYMPTOM_REASONS, ReportKind, ReportStatus
from renraku.rules.health import SYMPTOM_KEYS, ClassHealth, HealthFact, build, csv_safe
from renraku.services.schools import school_calendar
from renraku.services.staff import school_classes

WINDOW_DAYS = 14


@dataclass(frozen=True)
class IllnessReport:
    day: date
    class_name: str
    child_name: str
    reason: str
    symptom: str | None
    memo: str


@dataclass
class Dashboard:
    days: list[date]
    classes: list[ClassHealth]
    reports: list[IllnessReport]
    threshold_pct: int


async def dashboard(session: AsyncSession, school: School, today: date,
                    threshold_pct: int) -> Dashboard:
    """School days among the last 14 calendar days up to ``today``, every class."""
    calendar = await school_calendar(session, school)
    first = today - timedelta(days=WINDOW_DAYS - 1)
    days = [d for d in (first + timedelta(days=i) for i in range(WINDOW_DAYS))
            if calendar.is_school_day(d)]
    rooms = await school_classes(session, school.id)
    sizes = dict((await session.execute(
        select(Enrolment.class_id, func.count(Child.id))
        .join(Child, Child.id == Enrolment.child_id)
        .where(Enrolment.class_id.in_([r.id for r in rooms]), Child.active.is_(True))
        .group_by(Enrolment.class_id))).all())
    rows = (await session.execute(
        select(AbsenceReport.id, Enrolment.class_id, AbsenceReport.day, AbsenceReport.kind,
               AbsenceReport.reason, AbsenceReport.symptom, AbsenceReport.memo, Child.name,
               Classroom.name)
        .join(Enrolment, Enrolment.child_id == AbsenceReport.child_id)
        .join(Child, Child.id == AbsenceReport.child_id)
        .join(Classroom, Classroom.id == Enrolment.class_id)
        .where(Classroom.school_id == school.id, AbsenceReport.status == ReportStatus.ACTIVE,
               AbsenceReport.day >= first, AbsenceReport.day <= today)
        .order_by(AbsenceReport.day.desc(), Classroom.name, Child.name))).all()
    classes = build([(r.id, r.name, int(sizes.get(r.id, 0))) for r in rooms],
                    (HealthFact(cid, d, kind, reason, symptom)
                     for _rid, cid, d, kind, reason, symptom, *_ in rows), days, threshold_pct)
    # Each class counts its children's reports, but the list names a report once: a child
    # in two classes (a special-needs one beside the regular one) is one sick child.
    reports: dict[int, IllnessReport] = {}
    for rid, _cid, d, kind, reason, symptom, memo, child, class_name in rows:
        if kind != ReportKind.ABSENCE or reason not in SYMPTOM_REASONS:
            continue
        seen = reports.get(rid)
        reports[rid] = (IllnessReport(d, class_name, child, reason, symptom, memo) if seen is None
                        else replace(seen, class_name=f"{seen.class_name}・{class_name}"))
    return Dashboard(days, classes, list(reports.values()), threshold_pct)


def dashboard_csv(board: Dashboard, headers: list[str]) -> bytes:
    """One row per class and school day; ``headers`` in the reader's language. UTF-8 with
    a BOM (Excel on Japanese Windows); every cell neutralised against formulas."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_safe(h) for h in headers])
    for room in board.classes:
        for cell in room.days:
            writer.writerow([csv_safe(v) for v in (
                room.name, cell.day.isoformat(), cell.children, cell.absent,
                f"{cell.share_pct:.1f}", cell.illness, cell.suspension,
                *(cell.symptoms[k] for k in SYMPTOM_KEYS), int(cell.flagged))])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")
