"""Phone-only families are not left out: event changes and important notices by call.

When an event change (``renraku.services.events.notify_pending``) or an important notice
(:func:`notify_important`) is told to the families, the households with an email address
get the email and the households without one get one automated call each, in the primary
guardian's language (the pure rule: :mod:`renraku.rules.family_reach`). The call is a
broadcast campaign whose message is the change spoken from the event's fields (the
phrases 600–605 of the prompt catalog, filled in per language): the dialer calls inside
the school's calling window, retries the busy, renders the TTS before the first call,
and the broadcast call flow plays it. A ChangeReach row per change keeps the counts
staff see: households emailed, called, reached (answered and heard the message).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Campaign,
    CampaignHousehold,
    ChangeReach,
    Event,
    EventChange,
    Guardian,
    Notice,
    School,
)
from models.enums import AttemptStatus, CampaignStatus
from prompts.catalog import catalog
from prompts.phrases import spoken_date, spoken_time
from renraku.i18n import tr
from renraku.rules.family_reach import ReachPlan, plan_reach
from renraku.services import broadcast as bc
from renraku.services import mail
from renraku.services.mail import Send
from renraku.settings import LANGUAGES, Settings

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# What the call says


def _when(snap: dict[str, Any], lang: str, tz: str) -> str:
    start = datetime.fromisoformat(snap["starts_at"]).astimezone(ZoneInfo(tz))
    day = spoken_date(start.date(), lang)
    if snap.get("all_day"):
        return day
    return catalog()["familycall.when"].fill(lang, date=day,
                                             time=spoken_time(start.time(), lang))


def change_message(change: EventChange, tz: str) -> dict[str, str]:
    """The change in words, per language: moved from X to Y, a new place, or cancelled."""
    cat = catalog()
    before, after = change.before or {}, change.after or {}
    out: dict[str, str] = {}
    for lang in LANGUAGES:
        title = after.get("title") or before.get("title", "")
        when = _when(after, lang, tz)
        if change.action == "cancelled":
            out[lang] = cat["familycall.event_cancelled"].fill(lang, title=title, when=when)
            continue
        parts = []
        # Only a new start is "moved"; a new end alone is told as a change of the event
        if _when(before, lang, tz) != when:
            parts.append(cat["familycall.event_moved"].fill(
                lang, title=title, before=_when(before, lang, tz), after=when))
        if after.get("place") and before.get("place") != after.get("place"):
            parts.append(cat["familycall.event_place"].fill(
                lang, title=title, place=after["place"], when=when))
        if not parts:
            parts.append(cat["familycall.event_changed"].fill(lang, title=title, when=when))
        out[lang] = " ".join(parts)
    return out


def notice_text(notice: Notice, lang: str) -> tuple[str, str]:
    """The notice's title and body in ``lang`` where staff gave a translation."""
    translated = (notice.translations or {}).get(lang) or {}
    return translated.get("title") or notice.title, translated.get("body") or notice.body


def notice_message(notice: Notice) -> dict[str, str]:
    entry = catalog()["familycall.notice"]
    out = {}
    for lang in LANGUAGES:
        title, body = notice_text(notice, lang)
        out[lang] = entry.fill(lang, title=title, body=body)
    return out


# ---------------------------------------------------------------------------------------------
# Queueing the calls


def event_target(event: Event) -> dict:
    return {"classes": [event.class_id]} if event.class_id is not None else {"school": True}


def notice_target(notice: Notice) -> dict:
    if notice.scope == "class" and notice.class_id is not None:
        return {"classes": [notice.class_id]}
    if notice.scope == "grade" and notice.grade is not None:
        return {"grades": [notice.grade]}
    return {"school": True}


async def plan_for(session: AsyncSession, school_id: int, target: dict) -> ReachPlan:
    return plan_reach(bc.child_infos(await bc.target_children(session, school_id, target)))


async def queue_calls(
    session: AsyncSession, settings: Settings, *, school_id: int, title: str,
    message: dict[str, str], plan: ReachPlan, now: datetime,
) -> Campaign | None:
    """One running broadcast campaign calling the plan's households (None: nobody to call).

    Households are written from the rule (one per household, the primary guardian's
    language), not from the broadcast's every-guardian households; the dialer does the rest.
    """
    if not plan.calls:
        return None
    children = sorted({c for call in plan.calls for c in call.child_ids})
    campaign = await bc.create_campaign(
        session, settings, school_id=school_id, title=title[:200],
        target={"children": children}, now=now, message=message, voice=True, email=False)
    session.add_all(
        CampaignHousehold(
            campaign_id=campaign.id, phone_e164=call.phone_e164, language=call.language,
            guardian_id=call.guardian_id, child_ids=list(call.child_ids), survey=False,
            status=AttemptStatus.QUEUED, attempts=0, next_attempt_at=now,
        )
        for call in plan.calls
    )
    campaign.status = CampaignStatus.RUNNING
    campaign.started_at = now
    await session.flush()
    return campaign


async def reach_event_change(
    session: AsyncSession, settings: Settings, change: EventChange, now: datetime,
) -> ChangeReach:
    """After the change emails went out: call the households without email, count all.

    A still-waiting call about an earlier change of the same event is cancelled: a family
    hears the event as it is now, not every step on the way. Calls that cannot be queued
    are logged and counted as none: the emails are sent and must not go out again.
    """
    event = await session.get_one(Event, change.event_id)
    school = await session.get_one(School, event.school_id)
    plan = await plan_for(session, school.id, event_target(event))
    campaign = await _queue_safely(session, settings, event, school, change, plan, now)
    reach = ChangeReach(
        school_id=school.id, event_change_id=change.id,
        campaign_id=campaign.id if campaign else None, emailed=len(plan.emailed),
        called=len(plan.calls) if campaign else 0, unreachable=len(plan.unreachable),
        created_at=now)
    session.add(reach)
    await session.flush()
    return reach


async def _queue_safely(
    session: AsyncSession, settings: Settings, event: Event, school: School,
    change: EventChange, plan: ReachPlan, now: datetime,
) -> Campaign | None:
    try:
        async with session.begin_nested():  # a failure rolls back only the calls
            earlier = await session.scalars(
                select(Campaign).join(ChangeReach, ChangeReach.campaign_id == Campaign.id)
                .join(EventChange, EventChange.id == ChangeReach.event_change_id)
                .where(EventChange.event_id == event.id,
                       Campaign.status.in_(bc.ACTIVE_CAMPAIGN)))
            for campaign in list(earlier):
                await bc.set_state(session, campaign.id, "cancel", now)
            return await queue_calls(
                session, settings, school_id=school.id, title=event.title,
                message=change_message(change, school.timezone), plan=plan, now=now)
    except Exception:
        log.exception("event change %s: calls to families without email failed", change.id)
        return None


# ---------------------------------------------------------------------------------------------
# Important notices

def notice_email(notice: Notice, guardian: Guardian, school: School, sender: str,
                 url: str, now: datetime) -> EmailMessage:
    lang = guardian.language if guardian.language in LANGUAGES else "ja"
    title, body = notice_text(notice, lang)
    subject = tr(lang, "Important: %(title)s (%(school)s)", title=title, school=school.name)
    text = "\n".join([
        tr(lang, "Dear %(name)s,\n\nAn important notice from %(school)s.",
           name=guardian.name, school=school.name), "",
        f"■ {title}", "", body, "", tr(lang, "All notices: %(url)s", url=url), "",
        school.name])
    return mail.build(sender, guardian.email or "", subject, text, now=now)


async def notify_important(
    session: AsyncSession, settings: Settings, send: Send, *, sender: str, base_url: str,
    now: datetime, notice_id: int | None = None,
) -> int:
    """Important notices shown by now and not told yet: email the guardians with an
    address, call the households without one. Returns the notices told.

    A failed email leaves the notice untold (no ChangeReach row), so the next run — the
    portal's retry loop — tries it again; a scheduled notice is told once it is shown.
    """
    query = (
        select(Notice)
        .outerjoin(ChangeReach, ChangeReach.notice_id == Notice.id)
        .where(Notice.important.is_(True), Notice.publish_at <= now, ChangeReach.id.is_(None))
    )
    if notice_id is not None:
        query = query.where(Notice.id == notice_id)
    # As for the change emails: one web worker tells a notice, the others skip it.
    query = query.order_by(Notice.id).with_for_update(skip_locked=True, of=Notice)
    told = 0
    for notice in list(await session.scalars(query)):
        school = await session.get_one(School, notice.school_id)
        children = await bc.target_children(session, school.id, notice_target(notice))
        guardians = {gs.guardian.id: gs.guardian for c in children for gs in c.guardianships}
        try:
            for gid in sorted(guardians):
                if guardians[gid].email:
                    await send(notice_email(notice, guardians[gid], school, sender,
                                            f"{base_url}/notices", now))
        except Exception:  # SMTP trouble: tell this notice on the next run
            log.exception("important notice %s: email failed; will retry", notice.id)
            continue
        plan = plan_reach(bc.child_infos(children))
        campaign = None
        try:
            # A savepoint: failing calls must not make the emails go out again next time
            async with session.begin_nested():
                campaign = await queue_calls(
                    session, settings, school_id=school.id, title=notice.title,
                    message=notice_message(notice), plan=plan, now=now)
        except Exception:
            log.exception("important notice %s: calls to families without email failed",
                          notice.id)
        session.add(ChangeReach(
            school_id=school.id, notice_id=notice.id,
            campaign_id=campaign.id if campaign else None, emailed=len(plan.emailed),
            called=len(plan.calls) if campaign else 0, unreachable=len(plan.unreachable),
            created_at=now))
        await session.flush()
        told += 1
    return told


# ---------------------------------------------------------------------------------------------
# What staff see


@dataclass(frozen=True)
class ReachCounts:
    emailed: int
    called: int  # households the dialer called or still will (a superseded call is not)
    reached: int  # answered by a person who heard the message to its end
    waiting: int  # calls still to be made or retried (outside the window, busy…)
    unreachable: int


async def counts(session: AsyncSession, reach: ChangeReach) -> ReachCounts:
    called = reached = waiting = 0
    if reach.campaign_id is not None:
        rows = (await session.execute(
            select(CampaignHousehold.status, CampaignHousehold.next_attempt_at,
                   CampaignHousehold.attempts)
            .where(CampaignHousehold.campaign_id == reach.campaign_id))).all()
        campaign = await session.get_one(Campaign, reach.campaign_id)
        active = campaign.status in bc.ACTIVE_CAMPAIGN
        for status, next_at, attempts in rows:
            pending = active and next_at is not None
            called += attempts > 0 or pending
            reached += status == AttemptStatus.COMPLETED
            waiting += pending
    return ReachCounts(reach.emailed, called, reached, waiting, reach.unreachable)


@dataclass(frozen=True)
class ChangeRow:
    change: EventChange
    counts: ReachCounts | None  # None: the families are not told yet (emails pending)


async def event_changes(session: AsyncSession, event_id: int) -> list[ChangeRow]:
    """The event's changes and cancellation, newest first, with how they reached families."""
    rows = await session.execute(
        select(EventChange, ChangeReach)
        .outerjoin(ChangeReach, ChangeReach.event_change_id == EventChange.id)
        .where(EventChange.event_id == event_id,
               EventChange.action.in_(("changed", "cancelled")))
        .order_by(EventChange.id.desc()))
    return [ChangeRow(change, await counts(session, reach) if reach else None)
            for change, reach in rows]


async def notice_counts(session: AsyncSession, notice_id: int) -> ReachCounts | None:
    reach = await session.scalar(select(ChangeReach).where(ChangeReach.notice_id == notice_id))
    return await counts(session, reach) if reach else None

