"""Follow-up calls for unexplained absences, over the broadcast machinery.

A follow-up is one small campaign (``Campaign.flow = "followup"``) per child: one household
per guardian's number, the primary guardian's due at once, the others a few minutes apart
(renraku.rules.rollcall.plan_followup). The dialer calls them like any campaign, inside the
calling window; the call flow (ivr.followup_flow) plays the question and writes the key
through :func:`record_answer`, which completes the campaign so nobody else is called.
A family without a phone gets an email instead. At most one follow-up per child and day
(a unique row). "Did not know" alerts the child's teachers and the principal, on their
pages (StaffAlert) and by email.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Campaign,
    CampaignHousehold,
    Child,
    Enrolment,
    FollowUp,
    Guardian,
    School,
    Staff,
    StaffAlert,
    StaffClass,
)
from models.db import transaction
from models.enums import (
    AttemptStatus,
    CampaignStatus,
    FollowUpAnswer,
    FollowUpStatus,
    StaffRole,
)
from renraku.app import App
from renraku.i18n import tr
from renraku.rules import campaign as campaign_rules
from renraku.rules.rollcall import ANSWER_BY_DIGIT, Contact, plan_followup
from renraku.services import broadcast as bc
from renraku.services import rollcall
from renraku.services.mail import MailError, send_mail

log = logging.getLogger(__name__)
ALERT_DID_NOT_KNOW = "did_not_know"


class OutsideCallingWindow(Exception):
    """Nobody is called outside the calling window; the page says so."""


@dataclass
class Started:
    calls: list[int] = field(default_factory=list)  # follow-up ids being called
    emails: list[int] = field(default_factory=list)  # follow-up ids emailed
    no_contact: list[int] = field(default_factory=list)


def _contacts(child: Child) -> list[Contact]:
    return [
        Contact(
            gs.guardian_id, gs.position, gs.guardian.language,
            campaign_rules.preferred_phone(
                (p.e164, p.kind) for p in sorted(gs.guardian.phones, key=lambda p: p.id)),
            gs.guardian.email,
        )
        for gs in child.guardianships
    ]


async def start(
    app: App, school: School, day: date, *, class_ids: list[int] | None = None,
    staff_id: int | None = None,
) -> Started:
    """Follow up every unexplained absence of the school (or of these classes) on ``day``.

    Raises OutsideCallingWindow outside the window; children already followed up today are
    left alone (once per child per day).
    """
    settings = app.settings
    now = app.clock.now()
    start_hhmm, end_hhmm = settings.calling_window_start, settings.calling_window_end
    if not campaign_rules.in_window(now, school.timezone, start_hhmm, end_hhmm):
        raise OutsideCallingWindow(f"{start_hhmm}-{end_hhmm}")
    out = Started()
    mails: list[tuple[str, str, str]] = []  # sent after the commit: no mail under the lock
    async with transaction(app.sessions) as s:
        ids = await rollcall.unexplained_children(s, school.id, day, class_ids)
        for child in await bc.target_children(s, school.id, {"children": ids}) if ids else []:
            plan = plan_followup(_contacts(child))
            status = (FollowUpStatus.CALLING if plan.calls else
                      FollowUpStatus.EMAILED if plan.emails else FollowUpStatus.NO_CONTACT)
            followup = FollowUp(school_id=school.id, child_id=child.id, day=day, status=status,
                                started_by=staff_id, created_at=now, updated_at=now)
            try:
                async with s.begin_nested():
                    s.add(followup)
            except IntegrityError:
                continue  # already followed up today
            if plan.calls:
                campaign = Campaign(
                    school_id=school.id, flow="followup", title=f"follow-up {child.id} {day}",
                    message={}, voice=True, email=False, target={"children": [child.id]},
                    window_start=start_hhmm, window_end=end_hhmm,
                    status=CampaignStatus.RUNNING, created_by=staff_id, created_at=now,
                    started_at=now,
                )
                s.add(campaign)
                await s.flush()
                followup.campaign_id = campaign.id
                s.add_all(
                    CampaignHousehold(
                        campaign_id=campaign.id, phone_e164=step.phone_e164,
                        language=plan.language, guardian_id=step.guardian_id,
                        child_ids=[child.id], survey=False, status=AttemptStatus.QUEUED,
                        attempts=0, next_attempt_at=now + step.delay,
                    )
                    for step in plan.calls
                )
                out.calls.append(child.id)
            elif plan.emails:
                out.emails.append(child.id)
                mails.extend((address, plan.language, child.shown_name)
                             for _gid, address in plan.emails)
            else:
                out.no_contact.append(child.id)
        school_name = school.name
    for address, lang, child_name in mails:
        fields = {"school": school_name, "child": child_name, "url": app.settings.base_url}
        try:
            await send_mail(
                app.settings, address,
                tr(lang, "%(school)s: %(child)s has not arrived at school", **fields),
                tr(lang, "%(child)s has not arrived at school. If your child is absent today, "
                         "please report it at %(url)s or call the school.", **fields),
                now=app.clock.now())
        except MailError:
            log.warning("follow-up email to a family failed")
    return out


async def followup_of_campaign(session: AsyncSession, campaign_id: int) -> FollowUp | None:
    return await session.scalar(select(FollowUp).where(FollowUp.campaign_id == campaign_id))


async def record_answer(
    session: AsyncSession, campaign_id: int, digit: str, guardian_id: int | None,
    now: datetime,
) -> FollowUp | None:
    """The family pressed ``digit``: write it, stop calling the others, alert on 3.

    None when the digit means nothing or the campaign is no follow-up.
    """
    answer = ANSWER_BY_DIGIT.get(digit)
    followup = await followup_of_campaign(session, campaign_id)
    if answer is None or followup is None:
        return None
    followup.answer = answer
    followup.status = FollowUpStatus.ANSWERED
    followup.guardian_id = guardian_id
    followup.updated_at = now
    await session.execute(
        update(Campaign).where(Campaign.id == campaign_id, Campaign.status.in_(
            [CampaignStatus.RUNNING, CampaignStatus.SCHEDULED]))
        .values(status=CampaignStatus.COMPLETED, finished_at=now)
    )
    if answer == FollowUpAnswer.DID_NOT_KNOW:
        for staff in await alert_recipients(session, followup.school_id, followup.child_id):
            session.add(StaffAlert(staff_id=staff.id, kind=ALERT_DID_NOT_KNOW,
                                   child_id=followup.child_id, followup_id=followup.id,
                                   created_at=now))
    await session.flush()
    return followup


async def alert_recipients(session: AsyncSession, school_id: int, child_id: int) -> list[Staff]:
    """The child's class teachers and the school's principals (active accounts)."""
    teaching = select(StaffClass.staff_id).where(StaffClass.class_id.in_(
        select(Enrolment.class_id).where(Enrolment.child_id == child_id)))
    rows = await session.scalars(
        select(Staff).where(
            Staff.school_id == school_id, Staff.active.is_(True),
            (Staff.id.in_(teaching)) | (Staff.role == StaffRole.PRINCIPAL),
        ).order_by(Staff.id)
    )
    return list(rows)


async def email_alerts(app: App, followup_id: int) -> None:
    """Email every recipient of the follow-up's alerts (after the answer is committed)."""
    async with app.sessions() as s:
        followup = await s.get_one(FollowUp, followup_id)
        child = await s.get_one(Child, followup.child_id)
        school = await s.get_one(School, followup.school_id)
        guardian = await s.get(Guardian, followup.guardian_id) if followup.guardian_id else None
        staff = list(await s.scalars(
            select(Staff).join(StaffAlert, StaffAlert.staff_id == Staff.id)
            .where(StaffAlert.followup_id == followup_id)))
    for person in staff:
        fields = {"child": child.name, "school": school.name,
                  "guardian": guardian.name if guardian else "",
                  "url": f"{app.settings.base_url}/staff/summary"}
        try:
            await send_mail(app.settings, person.email,
                            tr(person.language, "URGENT: %(child)s's family did not know "
                                                "about the absence", **fields),
                            tr(person.language, "On %(school)s's follow-up call, %(child)s's "
                                                "guardian (%(guardian)s) answered \"did not "
                                                "know\". Please act now: %(url)s", **fields),
                            now=app.clock.now())
        except MailError:
            log.warning("did-not-know alert email to staff %d failed", person.id)


async def unread_alerts(session: AsyncSession, staff_id: int) -> list[tuple[StaffAlert, Child]]:
    rows = await session.execute(
        select(StaffAlert, Child).join(Child, Child.id == StaffAlert.child_id)
        .where(StaffAlert.staff_id == staff_id, StaffAlert.read_at.is_(None))
        .order_by(StaffAlert.created_at.desc())
    )
    return [(a, c) for a, c in rows]


async def mark_alert_read(session: AsyncSession, alert_id: int, staff_id: int,
                          now: datetime) -> bool:
    result = await session.execute(
        update(StaffAlert).where(StaffAlert.id == alert_id, StaffAlert.staff_id == staff_id,
                                 StaffAlert.read_at.is_(None)).values(read_at=now))
    return bool(result.rowcount)


async def settle(session: AsyncSession, school_id: int, today: date, now: datetime) -> int:
    """The school's follow-ups still "calling" whose campaign ended, or whose day (school
    local ``today``) is over, become unanswered: a follow-up never rings on another day."""
    rows = await session.execute(
        select(FollowUp, Campaign).join(Campaign, Campaign.id == FollowUp.campaign_id)
        .where(FollowUp.status == FollowUpStatus.CALLING, FollowUp.school_id == school_id)
    )
    changed = 0
    for followup, campaign in rows:
        over = followup.day < today
        if over and campaign.status in bc.ACTIVE_CAMPAIGN:
            campaign.status = CampaignStatus.COMPLETED
            campaign.finished_at = now
        if over or campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
            followup.status = FollowUpStatus.UNANSWERED
            followup.updated_at = now
            changed += 1
    await session.flush()
    return changed
