"""What the guardian portal reads and changes, always on behalf of one guardian.

Every function that takes a child expects the caller to have checked the guardianship
(:func:`guardianship`); the web layer answers 404 otherwise, so guessing ids reveals
nothing. Family events are read only here and in the guardian's calendar feed: no staff
query touches ``family_events``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import (
    AbsenceReport,
    Campaign,
    Child,
    Classroom,
    Enrolment,
    Event,
    FamilyEvent,
    Guardian,
    Guardianship,
    Notice,
    Survey,
    SurveyQuestion,
    SurveyResponse,
)
from models.enums import CampaignStatus, EventStatus, ReportStatus
from models.people import current_rooms
from renraku.services.broadcast import target_children


async def guardian_children(session: AsyncSession, guardian_id: int) -> list[Child]:
    rows = await session.scalars(
        select(Child).join(Guardianship)
        .where(Guardianship.guardian_id == guardian_id, Child.active.is_(True))
        .options(selectinload(Child.school), selectinload(Child.classes))
        .order_by(Child.id)
    )
    return list(rows.unique())


async def guardianship(session: AsyncSession, guardian_id: int,
                       child_id: int) -> Guardianship | None:
    """The link, while the child is at school: one who left (転出, 卒業) is no longer theirs
    to open, though the history stays for the school."""
    return await session.scalar(
        select(Guardianship).join(Child, Child.id == Guardianship.child_id)
        .where(Guardianship.guardian_id == guardian_id, Guardianship.child_id == child_id,
               Child.active.is_(True))
        .options(selectinload(Guardianship.child).selectinload(Child.school),
                 selectinload(Guardianship.child).selectinload(Child.classes))
    )


async def child_guardians(session: AsyncSession, child_id: int) -> list[Guardianship]:
    rows = await session.scalars(
        select(Guardianship).where(Guardianship.child_id == child_id)
        .options(selectinload(Guardianship.guardian)).order_by(Guardianship.position)
    )
    return list(rows)


async def class_ids(session: AsyncSession, child_id: int) -> list[int]:
    return list(await session.scalars(
        select(Enrolment.class_id).where(Enrolment.child_id == child_id)))


# ---------------------------------------------------------------------------------------------
# Notices


async def notices_for_child(session: AsyncSession, child: Child, now: datetime) -> list[Notice]:
    """Published notices for the child's school, grade and class (this year's), newest first."""
    rooms = current_rooms(list(await session.scalars(
        select(Classroom).join(Enrolment).where(Enrolment.child_id == child.id))))
    ids = [r.id for r in rooms]
    grades = sorted({r.grade for r in rooms})
    rows = await session.scalars(
        select(Notice).where(
            Notice.school_id == child.school_id,
            Notice.publish_at <= now,
            or_(Notice.scope == "school",
                (Notice.scope == "grade") & Notice.grade.in_(grades),
                (Notice.scope == "class") & Notice.class_id.in_(ids)),
        ).order_by(Notice.publish_at.desc(), Notice.id.desc())
    )
    return list(rows)


def notice_text(notice: Notice, lang: str) -> tuple[str, str]:
    tr = (notice.translations or {}).get(lang) or {}
    return tr.get("title") or notice.title, tr.get("body") or notice.body


# ---------------------------------------------------------------------------------------------
# Calendar


@dataclass
class Item:
    kind: str  # event, report, family
    css: str  # event, changed, cancelled, report, family
    title: str
    day: date
    start: datetime | time | None = None
    end: datetime | time | None = None
    all_day: bool = False
    place: str = ""
    note: str = ""
    id: int = 0
    status: str = ""
    report: AbsenceReport | None = None


def _days(start: datetime, end: datetime, tz: ZoneInfo) -> list[date]:
    first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    if last > first and end.astimezone(tz).time() == time(0):
        last -= timedelta(days=1)  # an event ending at midnight does not touch the next day
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def local_bounds(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(first, time(0), tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), tz).astimezone(UTC)
    return start, end


async def school_and_class_events(session: AsyncSession, child: Child, start: datetime,
                                  end: datetime) -> list[Event]:
    ids = await class_ids(session, child.id)
    rows = await session.scalars(
        select(Event).where(
            Event.school_id == child.school_id,
            or_(Event.class_id.is_(None), Event.class_id.in_(ids)),
            Event.starts_at < end, Event.ends_at >= start,
        ).order_by(Event.starts_at, Event.id)
    )
    return list(rows)


async def family_events(session: AsyncSession, child_ids: list[int], start: datetime,
                        end: datetime) -> list[FamilyEvent]:
    rows = await session.scalars(
        select(FamilyEvent).where(
            FamilyEvent.child_id.in_(child_ids), FamilyEvent.deleted_at.is_(None),
            FamilyEvent.starts_at < end, FamilyEvent.ends_at >= start,
        ).order_by(FamilyEvent.starts_at, FamilyEvent.id)
    )
    return list(rows)


async def child_reports(session: AsyncSession, child_ids: list[int], first: date,
                        last: date) -> list[AbsenceReport]:
    rows = await session.scalars(
        select(AbsenceReport).where(
            AbsenceReport.child_id.in_(child_ids), AbsenceReport.day >= first,
            AbsenceReport.day <= last, AbsenceReport.status == ReportStatus.ACTIVE,
        ).order_by(AbsenceReport.day, AbsenceReport.id)
    )
    return list(rows)


async def month_items(session: AsyncSession, child: Child, first: date,
                      last: date) -> dict[date, list[Item]]:
    """School/class events, the child's active reports and family events, by local day."""
    tz = ZoneInfo(child.school.timezone)
    start, end = local_bounds(first, last, tz)
    out: dict[date, list[Item]] = {}

    def put(item: Item) -> None:
        if first <= item.day <= last:
            out.setdefault(item.day, []).append(item)

    for ev in await school_and_class_events(session, child, start, end):
        css = {EventStatus.CHANGED: "changed", EventStatus.CANCELLED: "cancelled"}.get(
            EventStatus(ev.status), "event")
        for day in _days(ev.starts_at, ev.ends_at, tz):
            put(Item("event", css, ev.title, day, ev.starts_at.astimezone(tz),
                     ev.ends_at.astimezone(tz), ev.all_day, ev.place, ev.note, ev.id, ev.status))
    for rep in await child_reports(session, [child.id], first, last):
        put(Item("report", "report", rep.kind, rep.day, rep.at_time, None, False, "",
                 rep.memo, rep.id, rep.status, rep))
    for fe in await family_events(session, [child.id], start, end):
        for day in _days(fe.starts_at, fe.ends_at, tz):
            put(Item("family", "family", fe.title, day, fe.starts_at.astimezone(tz),
                     fe.ends_at.astimezone(tz), fe.all_day, "", fe.note, fe.id))
    return out


# ---------------------------------------------------------------------------------------------
# Surveys


async def child_surveys(session: AsyncSession, child: Child) -> list[Survey]:
    """Surveys sent (by a launched campaign) to this child's household, newest first."""
    campaigns = await session.scalars(
        select(Campaign).where(
            Campaign.school_id == child.school_id, Campaign.survey_id.is_not(None),
            Campaign.status.not_in([CampaignStatus.DRAFT, CampaignStatus.CANCELLED]),
        ).order_by(Campaign.id.desc())
    )
    survey_ids: list[int] = []
    for campaign in campaigns:
        if campaign.survey_id is None or campaign.survey_id in survey_ids:
            continue
        if any(c.id == child.id for c in
               await target_children(session, campaign.school_id, campaign.target)):
            survey_ids.append(campaign.survey_id)
    if not survey_ids:
        return []
    rows = await session.scalars(
        select(Survey).where(Survey.id.in_(survey_ids))
        .options(selectinload(Survey.questions).selectinload(SurveyQuestion.options))
        .order_by(Survey.id.desc())
    )
    return list(rows)


async def survey_answers(session: AsyncSession, survey: Survey,
                         child_id: int) -> dict[int, SurveyResponse]:
    qids = [q.id for q in survey.questions]
    rows = await session.scalars(
        select(SurveyResponse).where(SurveyResponse.child_id == child_id,
                                     SurveyResponse.question_id.in_(qids)))
    return {r.question_id: r for r in rows}


def localized(texts: dict, lang: str) -> str:
    return str(texts.get(lang) or texts.get("ja") or next(iter(texts.values()), ""))


# ---------------------------------------------------------------------------------------------
# Guardians of a child


class NotPrimary(Exception):
    """Only the primary guardian may hand the role on."""


async def hand_primary(session: AsyncSession, child_id: int, from_guardian: int,
                       to_guardian: int) -> None:
    """Swap positions of the primary and another guardian of the child, in this transaction.

    The unique (child, position) pair and the 1–3 CHECK leave no spare number to park a
    row on while swapping, so both rows are removed and inserted again with the positions
    exchanged (relation and creation time kept).
    """
    links = {g.guardian_id: g for g in await child_guardians(session, child_id)}
    current, target = links.get(from_guardian), links.get(to_guardian)
    if current is None or current.position != 1:
        raise NotPrimary(child_id)
    if target is None or target is current:
        raise ValueError("not a guardian of this child")
    saved = [(g.guardian_id, g.relation, g.created_at, g.position) for g in (current, target)]
    await session.execute(delete(Guardianship).where(
        Guardianship.id.in_([current.id, target.id])))
    await session.flush()
    for obj in (current, target):
        session.expunge(obj)
    (gid_a, rel_a, at_a, pos_a), (gid_b, rel_b, at_b, pos_b) = saved
    session.add_all([
        Guardianship(child_id=child_id, guardian_id=gid_a, position=pos_b, relation=rel_a,
                     created_at=at_a),
        Guardianship(child_id=child_id, guardian_id=gid_b, position=pos_a, relation=rel_b,
                     created_at=at_b),
    ])
    await session.flush()


async def guardian_by_calendar_token(session: AsyncSession, token: str) -> Guardian | None:
    if not token:
        return None
    return await session.scalar(select(Guardian).where(Guardian.calendar_token == token))
