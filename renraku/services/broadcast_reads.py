"""Read receipts of broadcasts, per family (one child), and a resend to the unread.

A family has read a broadcast when, first of all:

- ``email``: a guardian followed the email's tracked link (``/m/<token>``, or the survey
  link ``/s/<token>``, which shows the message too);
- ``call``: a person heard the whole message on the phone. Hanging up during the message
  is not reading it. An answering machine that got the whole message is "left message"
  (the progress counts say so) but not read: nobody is known to have heard it, so the
  family stays among the unread and a resend reaches it again;
- ``web``: a guardian opened it on the guardian portal. Broadcasts are not shown there
  today (only their surveys, without the message), so nothing records this channel yet.

One row per broadcast and child; the first channel wins (a unique constraint, and
concurrent marks are safe as in :func:`renraku.services.receipts.mark_read`). A resend is
a campaign of its own (``resend_of``) whose receipts count for the broadcast it resends;
a notice's resend (``notice_id``, renraku.services.receipts) marks the notice read too.
Receipts are shown to staff only: the no-login page of a link shows the message, never
who else has read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    BroadcastRead,
    CallAttempt,
    Campaign,
    CampaignHousehold,
    Child,
    Classroom,
    Enrolment,
    Guardian,
)
from renraku.rules import campaign as rules
from renraku.services import broadcast as bc
from renraku.services import receipts
from renraku.settings import Settings

CHANNELS = ("email", "call", "web")


def receipts_of(campaign: Campaign) -> int:
    """The broadcast whose receipts this campaign's deliveries write (a resend's original)."""
    return campaign.resend_of or campaign.id


async def mark_read(session: AsyncSession, campaign_id: int, child_ids: list[int],
                    channel: str, guardian_id: int | None, now: datetime) -> list[int]:
    """Record the first read of the broadcast by each of these families. Returns those new."""
    assert channel in CHANNELS
    seen = set(await session.scalars(select(BroadcastRead.child_id).where(
        BroadcastRead.campaign_id == campaign_id, BroadcastRead.child_id.in_(child_ids))))
    new: list[int] = []
    for child_id in sorted(set(child_ids) - seen):
        try:
            async with session.begin_nested():  # another channel of the family, same instant
                session.add(BroadcastRead(campaign_id=campaign_id, child_id=child_id,
                                          channel=channel, guardian_id=guardian_id,
                                          read_at=now))
        except IntegrityError:
            continue
        new.append(child_id)
    return new


async def mark_campaign_read(session: AsyncSession, campaign: Campaign, child_ids: list[int],
                             channel: str, guardian_id: int | None,
                             now: datetime) -> list[int]:
    """These families got this campaign's message: its broadcast is read, and the notice
    it resends, if it is a notice's resend. Returns the families newly marked."""
    if campaign.notice_id is not None and guardian_id is not None:
        for child_id in child_ids:
            await receipts.mark_read(session, [campaign.notice_id], child_id, guardian_id, now)
    return await mark_read(session, receipts_of(campaign), child_ids, channel, guardian_id, now)


async def guardian_children(session: AsyncSession, campaign: Campaign,
                            guardian_id: int) -> list[int]:
    """The children of the campaign's target this guardian is a guardian of."""
    children = await bc.target_children(session, campaign.school_id, campaign.target)
    return [c.id for c in children if any(gs.guardian_id == guardian_id
                                          for gs in c.guardianships)]


async def mark_heard(session: AsyncSession, attempt_id: int, now: datetime) -> list[int]:
    """A person heard the whole message on this call: every family reached on the number."""
    attempt = await session.get(CallAttempt, attempt_id)
    if attempt is None:
        return []
    household = await session.get_one(CampaignHousehold, attempt.household_id)
    campaign = await session.get_one(Campaign, household.campaign_id)
    if campaign.flow != "broadcast":
        return []
    child_ids = list(household.child_ids)
    if household.survey:
        # A survey household keeps only the children it answers for; the number may reach
        # more (a parent who is not the primary guardian of a sibling): plan it again, from
        # the children of this number's guardians only (the number's plan depends on no
        # other child; the whole target, read once a call, made a campaign quadratic).
        infos = bc.child_infos(await bc.target_children(
            session, campaign.school_id, campaign.target, household.phone_e164))
        plan = next((p for p in rules.build_households(infos)
                     if p.phone_e164 == household.phone_e164), None)
        child_ids = plan.child_ids if plan else child_ids
    return await mark_campaign_read(session, campaign, child_ids, "call",
                                    household.guardian_id, now)


@dataclass
class FamilyRead:
    room: Classroom | None
    child: Child
    channel: str  # "" while unread
    read_at: datetime | None
    reader: str  # the guardian who followed the link / was called


async def family_reads(session: AsyncSession, campaign: Campaign) -> list[FamilyRead]:
    """Per child the broadcast was addressed to: read or not, how and when."""
    children = await bc.target_children(session, campaign.school_id, campaign.target)
    ids = [c.id for c in children]
    rooms = {cid: room for cid, room in await session.execute(
        select(Enrolment.child_id, Classroom).join(Classroom, Classroom.id == Enrolment.class_id)
        .where(Enrolment.child_id.in_(ids)).order_by(Classroom.academic_year))}
    reads = {r.child_id: (r, name) for r, name in await session.execute(
        select(BroadcastRead, Guardian.name)
        .outerjoin(Guardian, Guardian.id == BroadcastRead.guardian_id)
        .where(BroadcastRead.campaign_id == receipts_of(campaign),
               BroadcastRead.child_id.in_(ids)))}
    rows = []
    for c in children:
        r, name = reads.get(c.id, (None, ""))
        rows.append(FamilyRead(rooms.get(c.id), c, r.channel if r else "",
                               r.read_at if r else None, name or ""))
    rows.sort(key=lambda f: (f.room.name if f.room else "", f.child.reading or "", f.child.id))
    return rows


class AlreadyResent(Exception):
    """This resend (the same button press) was made already: ``campaign_id`` is it."""

    def __init__(self, campaign_id: int | None) -> None:
        super().__init__(campaign_id)
        self.campaign_id = campaign_id


async def resends(session: AsyncSession, campaign_id: int) -> list[Campaign]:
    rows = await session.scalars(select(Campaign).where(
        Campaign.resend_of == campaign_id).order_by(Campaign.id))
    return list(rows)


async def resend_key(session: AsyncSession, campaign: Campaign) -> str:
    """The resend button's value now: the broadcast and how many resends it has had."""
    root = receipts_of(campaign)
    return f"{root}:{len(await resends(session, root))}"


async def resend_to_unread(session: AsyncSession, settings: Settings, campaign: Campaign,
                           key: str, now: datetime, staff_id: int | None) -> Campaign | None:
    """The broadcast again to the families who have not read it: email where the family
    has an address, a call to households without one (a broadcast without written text,
    only a recording, is a call to every unread family). None when every family has read it.

    ``key`` identifies one press of the button (:func:`resend_key` when the page was
    shown): the same key twice (a double click, a reload, a second tab) makes one resend,
    never two, also when both requests race (the unique column decides).
    """
    root = receipts_of(campaign)
    if key != await resend_key(session, campaign):
        done = await resends(session, root)
        raise AlreadyResent(done[-1].id if done else None)
    unread = [r.child.id for r in await family_reads(session, campaign) if r.read_at is None]
    if not unread:
        return None
    target = {"children": sorted(unread)}
    infos = bc.child_infos(await bc.target_children(session, campaign.school_id, target))
    email = bool(campaign.message.get("ja"))
    only_phones: set[str] | None = None
    if email:
        only_phones = {phone for info in infos if not any(g.email for g in info.guardians)
                       for g in info.guardians if (phone := rules.preferred_phone(g.phones))}
    try:
        async with session.begin_nested():
            resend = await bc.create_campaign(
                session, settings, school_id=campaign.school_id, title=campaign.title,
                target=target, now=now, message=dict(campaign.message),
                recorded_prompt_key=campaign.recorded_prompt_key,
                voice=only_phones is None or bool(only_phones), email=email,
                window_start=campaign.window_start, window_end=campaign.window_end,
                created_by=staff_id)
            resend.resend_of, resend.resend_key = root, key
            await session.flush()
    except IntegrityError:  # the other request of a double click got there first
        raise AlreadyResent(await session.scalar(
            select(Campaign.id).where(Campaign.resend_key == key))) from None
    return await bc.launch(session, settings, resend, now, only_phones=only_phones)
