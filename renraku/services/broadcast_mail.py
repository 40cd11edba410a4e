"""Campaign emails: one per guardian, with a no-login survey link that expires.

Deliveries are rows (models.EmailDelivery) written at launch; this module sends the due
ones, records failures and schedules retries, and resolves a link's token back to the
survey it answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Campaign,
    EmailDelivery,
    Guardian,
    Guardianship,
    School,
    Survey,
    SurveyOption,
    SurveyQuestion,
    SurveyResponse,
)
from models.db import transaction
from renraku.app import App
from renraku.i18n import tr
from renraku.rules import campaign as rules
from renraku.services import broadcast as bc
from renraku.services import broadcast_reads as reads
from renraku.services import mail, surveys
from renraku.services.mail import Send
from renraku.settings import LANGUAGES, Settings

log = logging.getLogger(__name__)

# Every text of the email is in the translation catalogs (webportal/locale), like the portal's.


def survey_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url}/s/{token}"


def read_url(settings: Settings, token: str) -> str:
    """The tracked link of a delivery: following it marks the family read (see receipts)."""
    return f"{settings.base_url}/m/{token}"


def compose(
    settings: Settings, campaign: Campaign, school: School, guardian: Guardian,
    delivery: EmailDelivery, with_survey: bool, now: datetime,
    closes_at: datetime | None = None,
) -> EmailMessage:
    lang = guardian.language if guardian.language in LANGUAGES else "ja"
    parts = []
    text_lang = rules.pick_language(campaign.message, lang)
    parts.append(campaign.message.get(text_lang, ""))
    if text_lang != "ja" and campaign.message.get("ja"):
        parts.append(campaign.message["ja"])  # the school's own words, too
    if with_survey:
        parts.append(tr(lang, "Please answer the survey (no login needed): %(url)s",
                        url=survey_url(settings, delivery.token)))
        if closes_at is not None:
            local = closes_at.astimezone(ZoneInfo(school.timezone))
            deadline = f"{local:%Y-%m-%d %H:%M} ({local:%Z})"
            parts.append(tr(lang, "Answers are accepted until %(when)s.", when=deadline))
    else:
        parts.append(tr(lang, "Please open this link to let the school know you have read "
                              "the message: %(url)s", url=read_url(settings, delivery.token)))
    parts.append(tr(lang, "This link works until %(when)s.",
                    when=delivery.token_expires_at.strftime("%Y-%m-%d %H:%M UTC")))
    subject = tr(lang, "Message from %(school)s: %(title)s", school=school.name,
                 title=campaign.title)
    return mail.build(settings.smtp_from, delivery.address, subject,
                      "\n\n".join(p for p in parts if p) + "\n", now=now)


async def send_due_emails(app: App, campaign: Campaign, send: Send | None = None) -> int:
    """Send every due email of the campaign once; failures are retried later. Returns sent."""
    send = send or mail.sender(app.settings)
    now = app.clock.now()
    async with app.sessions() as s:
        due = list(
            await s.scalars(
                select(EmailDelivery).where(
                    EmailDelivery.campaign_id == campaign.id,
                    EmailDelivery.status == "queued",
                    EmailDelivery.next_attempt_at <= now,
                ).order_by(EmailDelivery.id)
            )
        )
        school = await s.get(School, campaign.school_id)
        assert school is not None
        primaries = await _primary_guardians(s, campaign) if campaign.survey_id else set()
        survey = await s.get(Survey, campaign.survey_id) if campaign.survey_id else None
        guardians = {
            g.id: g
            for g in await s.scalars(
                select(Guardian).where(Guardian.id.in_([d.guardian_id for d in due]))
            )
        }
    sent = 0
    for d in due:
        msg = compose(app.settings, campaign, school, guardians[d.guardian_id], d,
                      d.guardian_id in primaries, app.clock.now(),
                      survey.closes_at if survey else None)
        error = ""
        try:
            await send(msg)
        except Exception as exc:  # SMTP refused, server down: record and retry later
            error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("email to guardian %d failed: %s", d.guardian_id, error)
        async with transaction(app.sessions) as s:
            row = await s.get(EmailDelivery, d.id)
            assert row is not None
            row.attempts += 1
            at = app.clock.now()
            if not error:
                row.status, row.sent_at, row.error, row.next_attempt_at = "sent", at, "", None
                sent += 1
            elif row.attempts >= app.settings.dialer_max_attempts:
                row.status, row.error, row.next_attempt_at = "failed", error, None
            else:
                row.error = error
                row.next_attempt_at = at + timedelta(seconds=app.settings.dialer_retry_delay_s)
    return sent


async def _primary_guardians(s: AsyncSession, campaign: Campaign) -> set[int]:
    children = await bc.target_children(s, campaign.school_id, campaign.target)
    return {gs.guardian_id for c in children for gs in c.guardianships if gs.position == 1}


# ---------------------------------------------------------------------------------------------
# The link's side


class LinkError(Exception):
    """Unknown or expired link (the page says which)."""

    def __init__(self, kind: str, closes_at: datetime | None = None,
                 timezone: str = "Asia/Tokyo") -> None:
        super().__init__(kind)
        self.kind = kind  # "unknown", "expired", "no_survey", "closed"
        self.closes_at = closes_at  # the survey's deadline, when it has passed
        self.timezone = timezone  # the school's, to show that deadline


@dataclass
class SurveyLink:
    delivery: EmailDelivery
    campaign: Campaign
    guardian: Guardian
    questions: list[SurveyQuestion]
    child_ids: list[int]
    answered: dict[int, int]  # question id → digit already chosen
    closes_at: datetime | None  # the survey's deadline
    timezone: str  # the school's


async def _delivery(s: AsyncSession, token: str, now: datetime) -> EmailDelivery:
    """The email a link came from; :class:`LinkError` if unknown or expired."""
    delivery = await s.scalar(select(EmailDelivery).where(EmailDelivery.token == token))
    if delivery is None:
        raise LinkError("unknown")
    if delivery.token_expires_at <= now:
        raise LinkError("expired")
    return delivery


async def read_by_link(s: AsyncSession, token: str, now: datetime) -> Campaign:
    """The email's link was followed: the guardian's families in the broadcast have read it.

    The survey link counts too (its page shows the message). Returns the campaign whose
    message the page shows. Unknown or expired tokens raise :class:`LinkError`.
    """
    delivery = await _delivery(s, token, now)
    campaign = await s.get_one(Campaign, delivery.campaign_id)
    children = await reads.guardian_children(s, campaign, delivery.guardian_id)
    await reads.mark_campaign_read(s, campaign, children, "email", delivery.guardian_id, now)
    return campaign


async def resolve_link(s: AsyncSession, token: str, now: datetime) -> SurveyLink:
    delivery = await _delivery(s, token, now)
    campaign = await s.get(Campaign, delivery.campaign_id)
    guardian = await s.get(Guardian, delivery.guardian_id)
    assert campaign is not None and guardian is not None
    if not campaign.survey_id:
        raise LinkError("no_survey")
    if campaign.status == "cancelled":
        raise LinkError("closed")
    survey = await s.get(Survey, campaign.survey_id)
    assert survey is not None
    school = await s.get_one(School, campaign.school_id)
    timezone = school.timezone
    if surveys.is_closed(survey, now):
        raise LinkError("closed", survey.closes_at, timezone)
    children = await bc.target_children(s, campaign.school_id, campaign.target)
    ids = {c.id for c in children}
    child_ids = sorted(
        gs.child_id
        for gs in await s.scalars(
            select(Guardianship).where(
                Guardianship.guardian_id == guardian.id, Guardianship.position == 1
            )
        )
        if gs.child_id in ids
    )
    if not child_ids:
        raise LinkError("no_survey")  # only primary guardians answer
    questions = await bc.survey_questions(s, campaign.survey_id)
    rows = await s.execute(
        select(SurveyResponse.question_id, SurveyOption.digit)
        .join(SurveyOption, SurveyOption.id == SurveyResponse.option_id)
        .where(
            SurveyResponse.question_id.in_([q.id for q in questions]),
            SurveyResponse.child_id == child_ids[0],
        )
    )
    return SurveyLink(delivery, campaign, guardian, questions, child_ids, dict(rows.all()),
                      survey.closes_at, timezone)


async def answer_by_link(
    s: AsyncSession, token: str, answers: dict[int, int], now: datetime
) -> SurveyLink:
    """Write the web answers (question id → digit) for every child the guardian answers for."""
    link = await resolve_link(s, token, now)
    valid = {q.id for q in link.questions}
    for qid, digit in answers.items():
        if qid in valid:
            try:
                await bc.record_answer(
                    s, question_id=qid, digit=digit, child_ids=link.child_ids,
                    channel="email", now=now, guardian_id=link.guardian.id,
                )
            except surveys.SurveyClosed as closed:  # the deadline passed meanwhile
                raise LinkError("closed", closed.closes_at, link.timezone) from closed
    return await resolve_link(s, token, now)
