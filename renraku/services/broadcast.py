"""Broadcast campaigns in the database: create, launch, per-call bookkeeping, progress, CSV.

Every state change is a short transaction, so the dialer, the FastAGI call flow and the
web console (three processes) can all write, and a dialer that dies loses nothing: the
next one reads the same rows. The decisions themselves are the pure rules in
:mod:`renraku.rules.campaign`.
"""

from __future__ import annotations

import io
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import (
    CallAttempt,
    Campaign,
    CampaignHousehold,
    Child,
    Classroom,
    EmailDelivery,
    Enrolment,
    Guardian,
    GuardianPhone,
    Guardianship,
    School,
    Survey,
    SurveyOption,
    SurveyQuestion,
    SurveyResponse,
)
from models.enums import AttemptStatus, CampaignStatus
from renraku.rules import campaign as rules
from renraku.rules.csv_cells import SafeWriter
from renraku.services import surveys
from renraku.services.schools import calling_window
from renraku.settings import Settings

EMAIL_TOKEN_DAYS = 14
ACTIVE_CAMPAIGN = (CampaignStatus.SCHEDULED, CampaignStatus.RUNNING)


class CampaignError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------
# Targets


async def target_children(session: AsyncSession, school_id: int, target: dict,
                          phone_e164: str | None = None) -> list[Child]:
    """Active children of the school picked by ``target`` (school, grades, classes, children);
    with ``phone_e164``, only those with a guardian registered on that number (what a call
    to it is about, without loading the whole school)."""
    q = select(Child).where(Child.school_id == school_id, Child.active.is_(True))
    if phone_e164 is not None:
        q = q.where(Child.id.in_(
            select(Guardianship.child_id)
            .join(GuardianPhone, GuardianPhone.guardian_id == Guardianship.guardian_id)
            .where(GuardianPhone.e164 == phone_e164)))
    if target.get("school"):
        pass
    elif target.get("grades"):
        year = await session.scalar(
            select(func.max(Classroom.academic_year)).where(Classroom.school_id == school_id)
        )
        class_ids = select(Classroom.id).where(
            Classroom.school_id == school_id,
            Classroom.academic_year == year,
            Classroom.grade.in_([int(g) for g in target["grades"]]),
        )
        enrolled = select(Enrolment.child_id).where(Enrolment.class_id.in_(class_ids))
        q = q.where(Child.id.in_(enrolled))
    elif target.get("classes"):
        ids = [int(c) for c in target["classes"]]
        q = q.where(Child.id.in_(select(Enrolment.child_id).where(Enrolment.class_id.in_(ids))))
    elif target.get("children"):
        q = q.where(Child.id.in_([int(c) for c in target["children"]]))
    else:
        raise CampaignError("no target chosen")
    rows = await session.scalars(
        q.options(
            selectinload(Child.guardianships)
            .selectinload(Guardianship.guardian)
            .selectinload(Guardian.phones)
        ).order_by(Child.id)
    )
    return list(rows.unique())


def child_infos(children: list[Child]) -> list[rules.ChildInfo]:
    return [
        rules.ChildInfo(
            c.id,
            tuple(
                rules.GuardianInfo(
                    gs.guardian_id,
                    gs.position,
                    gs.guardian.language,
                    tuple((p.e164, p.kind) for p in sorted(gs.guardian.phones, key=lambda p: p.id)),
                    gs.guardian.email,
                )
                for gs in c.guardianships
            ),
        )
        for c in children
    ]


@dataclass
class Preview:
    children: int
    households: list[rules.HouseholdPlan] = field(default_factory=list)
    emails: list[rules.EmailPlan] = field(default_factory=list)
    estimated_s: int = 0

    @property
    def calls(self) -> int:
        return len(self.households)

    @property
    def survey_households(self) -> int:
        return sum(1 for h in self.households if h.survey)


async def preview(
    session: AsyncSession, settings: Settings, school_id: int, target: dict,
    *, voice: bool, email: bool,
) -> Preview:
    infos = child_infos(await target_children(session, school_id, target))
    out = Preview(children=len(infos))
    if voice:
        out.households = rules.build_households(infos)
        out.estimated_s = rules.estimate_duration_s(
            len(out.households),
            max_channels=settings.dialer_max_channels,
            originates_per_second=settings.dialer_originates_per_second,
        )
    if email:
        out.emails = rules.build_emails(infos)
    return out


# ---------------------------------------------------------------------------------------------
# Creating and launching


async def create_survey(
    session: AsyncSession, school_id: int, title: str, questions: list[dict], now: datetime,
    created_by: int | None = None, closes_at: datetime | None = None,
) -> Survey:
    errors = rules.validate_survey(questions)
    if errors:
        raise CampaignError("; ".join(errors))
    survey = Survey(school_id=school_id, title=title, created_by=created_by, created_at=now,
                    closes_at=closes_at)
    session.add(survey)
    await session.flush()
    await surveys.add_questions(session, survey.id, questions)
    return survey


async def create_campaign(
    session: AsyncSession,
    settings: Settings,
    *,
    school_id: int,
    title: str,
    target: dict,
    now: datetime,
    message: dict[str, str] | None = None,
    recorded_prompt_key: str | None = None,
    voice: bool = True,
    email: bool = False,
    survey_id: int | None = None,
    scheduled_at: datetime | None = None,
    window_start: str | None = None,
    window_end: str | None = None,
    created_by: int | None = None,
) -> Campaign:
    message = {k: v.strip() for k, v in (message or {}).items() if v and v.strip()}
    if not (voice or email):
        raise CampaignError("choose voice, email or both")
    if not message.get("ja") and not recorded_prompt_key:
        raise CampaignError("a Japanese message or a recorded message is required")
    if email and not message.get("ja"):
        raise CampaignError("an email needs the message as text")
    school = await session.get_one(School, school_id)
    start, end = window_start or "", window_end or ""
    if not (start and end):
        start, end = calling_window(school, settings)
    if rules.parse_hhmm(start) >= rules.parse_hhmm(end):
        raise CampaignError("the calling window must start before it ends")
    campaign = Campaign(
        school_id=school_id, title=title, message=message,
        recorded_prompt_key=recorded_prompt_key, voice=voice, email=email, target=target,
        survey_id=survey_id, scheduled_at=scheduled_at, window_start=start, window_end=end,
        status=CampaignStatus.DRAFT, created_by=created_by, created_at=now,
    )
    session.add(campaign)
    await session.flush()
    return campaign


async def launch(
    session: AsyncSession, settings: Settings, campaign: Campaign, now: datetime,
    only_phones: set[str] | None = None,
) -> Campaign:
    """Freeze the target into households and email deliveries; hand it to the dialer.

    Households are written once, here: the target is not re-read later, so the dialer's
    work is fixed and a restart can't add or drop families. ``only_phones`` keeps the
    households of those numbers only (a call to one guardian, not the whole family).
    """
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignError(f"campaign already {campaign.status}")
    infos = child_infos(await target_children(session, campaign.school_id, campaign.target))
    if campaign.voice:
        for plan in rules.build_households(infos):
            if only_phones is not None and plan.phone_e164 not in only_phones:
                continue
            session.add(
                CampaignHousehold(
                    campaign_id=campaign.id, phone_e164=plan.phone_e164, language=plan.language,
                    guardian_id=plan.guardian_id,
                    child_ids=plan.survey_child_ids if campaign.survey_id and plan.survey
                    else plan.child_ids,
                    survey=bool(campaign.survey_id) and plan.survey,
                    status=AttemptStatus.QUEUED, attempts=0,
                    next_attempt_at=campaign.scheduled_at or now,
                )
            )
    if campaign.email:
        for e in rules.build_emails(infos):
            session.add(
                EmailDelivery(
                    campaign_id=campaign.id, guardian_id=e.guardian_id, address=e.address,
                    token=secrets.token_urlsafe(24),
                    token_expires_at=now + timedelta(days=EMAIL_TOKEN_DAYS),
                    status="queued", attempts=0, next_attempt_at=campaign.scheduled_at or now,
                )
            )
    campaign.status = (
        CampaignStatus.SCHEDULED
        if campaign.scheduled_at and campaign.scheduled_at > now
        else CampaignStatus.RUNNING
    )
    if campaign.status == CampaignStatus.RUNNING:
        campaign.started_at = now
    await session.flush()
    return campaign


async def set_state(
    session: AsyncSession, campaign_id: int, action: str, now: datetime
) -> Campaign:
    """pause / resume / cancel. In-flight calls finish; no new call starts unless running."""
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignError("no such campaign")
    if action == "pause" and campaign.status in ACTIVE_CAMPAIGN:
        campaign.status = CampaignStatus.PAUSED
    elif action == "resume" and campaign.status == CampaignStatus.PAUSED:
        campaign.status = CampaignStatus.RUNNING
        campaign.started_at = campaign.started_at or now
    elif action == "cancel" and campaign.status in (*ACTIVE_CAMPAIGN, CampaignStatus.PAUSED,
                                                     CampaignStatus.DRAFT):
        campaign.status = CampaignStatus.CANCELLED
        campaign.finished_at = now
    else:
        raise CampaignError(f"cannot {action} a {campaign.status} campaign")
    await session.flush()
    return campaign


# ---------------------------------------------------------------------------------------------
# The dialer's bookkeeping


async def runnable_campaigns(session: AsyncSession, now: datetime) -> list[Campaign]:
    """Running campaigns, and scheduled ones whose time came (those are switched to running)."""
    rows = list(
        await session.scalars(
            select(Campaign).where(Campaign.status.in_(ACTIVE_CAMPAIGN)).order_by(Campaign.id)
        )
    )
    out = []
    for c in rows:
        if c.status == CampaignStatus.SCHEDULED:
            if c.scheduled_at and c.scheduled_at > now:
                continue
            c.status = CampaignStatus.RUNNING
            c.started_at = c.started_at or now
        out.append(c)
    await session.flush()
    return out


@dataclass(frozen=True)
class CallingHours:
    tz: str
    start: str  # HH:MM, school time
    end: str


async def calling_hours(session: AsyncSession, settings: Settings,
                        campaign: Campaign) -> CallingHours:
    """When the dialer may call for this campaign: its own window inside its school's
    (the school's window wins, e.g. after the school narrowed it)."""
    school = await session.get_one(School, campaign.school_id)
    start, end = rules.narrowed((campaign.window_start, campaign.window_end),
                                calling_window(school, settings))
    return CallingHours(school.timezone, start, end)


async def due_households(
    session: AsyncSession, campaign_id: int, now: datetime, limit: int
) -> list[CampaignHousehold]:
    if limit <= 0:
        return []
    rows = await session.scalars(
        select(CampaignHousehold)
        .where(
            CampaignHousehold.campaign_id == campaign_id,
            CampaignHousehold.status.in_([AttemptStatus.QUEUED, *rules.RETRYABLE_STATES]),
            CampaignHousehold.next_attempt_at.is_not(None),
            CampaignHousehold.next_attempt_at <= now,
        )
        .order_by(CampaignHousehold.next_attempt_at, CampaignHousehold.id)
        .limit(limit)
    )
    return list(rows)


async def next_due_at(session: AsyncSession, campaign_id: int) -> datetime | None:
    return await session.scalar(
        select(func.min(CampaignHousehold.next_attempt_at)).where(
            CampaignHousehold.campaign_id == campaign_id,
            CampaignHousehold.status.in_([AttemptStatus.QUEUED, *rules.RETRYABLE_STATES]),
        )
    )


# Serialises claims of every dialer on one PostgreSQL (SQLite's write lock does it there).
CLAIM_LOCK = 0x52454E52  # "RENR"


async def held_channels(session: AsyncSession) -> int:
    """Channels held on the trunk now, by every node's dialer."""
    return await session.scalar(
        select(func.count(CallAttempt.id)).where(CallAttempt.released_at.is_(None))
    ) or 0


async def release_channel(session: AsyncSession, attempt_id: int, now: datetime) -> None:
    """The attempt's channel is gone: its place on the trunk is free for any node."""
    await session.execute(
        update(CallAttempt)
        .where(CallAttempt.id == attempt_id, CallAttempt.released_at.is_(None))
        .values(released_at=now)
    )


async def unreleased_attempts(session: AsyncSession) -> list[CallAttempt]:
    """Attempts still holding a channel (in flight, or ended but their Hangup not seen)."""
    rows = await session.scalars(
        select(CallAttempt).where(CallAttempt.released_at.is_(None)).order_by(CallAttempt.id)
    )
    return list(rows)


async def start_attempt(
    session: AsyncSession, household_id: int, now: datetime, *, node: str = "",
    cap: int | None = None,
) -> CallAttempt | None:
    """Claim a due household and write the attempt *before* the Originate is sent.

    The conditional UPDATE is the claim: if another dialer (or a restarted one) already took
    it, nothing is updated and None is returned, so a number is never dialled twice at once.
    With ``cap`` (the trunk's channels), no claim is made while that many attempts of any
    node are in flight: the count and the claim are one transaction, serialised across
    dialers, so the cap holds for a cluster as a whole.
    """
    if cap is not None:
        if session.bind.dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                  {"key": CLAIM_LOCK})
        if await held_channels(session) >= cap:
            return None
    claimed = await session.execute(
        update(CampaignHousehold)
        .where(
            CampaignHousehold.id == household_id,
            CampaignHousehold.status.in_([AttemptStatus.QUEUED, *rules.RETRYABLE_STATES]),
            CampaignHousehold.next_attempt_at.is_not(None),
        )
        .values(
            status=AttemptStatus.DIALING,
            attempts=CampaignHousehold.attempts + 1,
            next_attempt_at=None,
        )
    )
    if claimed.rowcount != 1:
        return None
    household = await session.get(CampaignHousehold, household_id, populate_existing=True)
    assert household is not None
    attempt = CallAttempt(
        household_id=household_id, attempt_no=household.attempts, node=node,
        action_id=f"rk-{uuid.uuid4().hex[:20]}", status=AttemptStatus.DIALING, started_at=now,
    )
    session.add(attempt)
    await session.flush()
    return attempt


async def mark_answered(
    session: AsyncSession, attempt_id: int, now: datetime, amd_status: str = ""
) -> CallAttempt | None:
    attempt = await session.get(CallAttempt, attempt_id)
    if attempt is None or attempt.status not in rules.IN_FLIGHT_STATES:
        return attempt
    attempt.status = AttemptStatus.ANSWERED
    attempt.answered_at = attempt.answered_at or now
    if amd_status:
        attempt.amd_status = amd_status
    household = await session.get(CampaignHousehold, attempt.household_id)
    assert household is not None
    if household.status in rules.IN_FLIGHT_STATES:
        household.status = AttemptStatus.ANSWERED
    await session.flush()
    return attempt


async def mark_message_completed(session: AsyncSession, attempt_id: int) -> None:
    await session.execute(
        update(CallAttempt).where(CallAttempt.id == attempt_id).values(message_completed=True)
    )


async def finish_attempt(
    session: AsyncSession,
    settings: Settings,
    attempt_id: int,
    outcome: AttemptStatus,
    now: datetime,
    *,
    cause: int | None = None,
    reason: str = "",
) -> bool:
    """End an attempt once (later calls are no-ops) and apply the retry rule to its household.

    Returns whether this call ended it. The call flow, the dialer's AMI events and the
    restart reconciliation may each try; the first one wins, the rest change nothing.
    """
    attempt = await session.get(CallAttempt, attempt_id, populate_existing=True)
    if attempt is None or attempt.status not in rules.IN_FLIGHT_STATES:
        return False
    household = await session.get(CampaignHousehold, attempt.household_id)
    assert household is not None
    attempt.status = outcome
    attempt.ended_at = now
    if cause is not None:
        attempt.hangup_cause = cause
    if reason:
        attempt.reason = reason[:64]
    decision = rules.after_attempt(
        outcome, household.attempts, now,
        max_attempts=settings.dialer_max_attempts,
        retry_delay=timedelta(seconds=settings.dialer_retry_delay_s),
    )
    household.status = decision.status
    household.next_attempt_at = decision.next_attempt_at
    household.finished_at = now if decision.final else None
    await session.flush()
    return True


async def close_cut_attempt(session: AsyncSession, settings: Settings, attempt_id: int,
                            now: datetime, reason: str) -> AttemptStatus | None:
    """An attempt whose call died with the IVR's Asterisk (a restart): closed by
    ``rules.cut_outcome``; an outcome already written as "hung up" is taken back when the
    message was not heard, so the household is called again. The new status, or None
    when nothing changed."""
    attempt = await session.get(CallAttempt, attempt_id, populate_existing=True)
    if attempt is None:
        return None
    outcome = rules.cut_outcome(amd_machine=attempt.amd_status == "MACHINE",
                                message_completed=attempt.message_completed)
    if attempt.status in rules.IN_FLIGHT_STATES:
        await finish_attempt(session, settings, attempt_id, outcome, now, reason=reason)
        return outcome
    household = await session.get(CampaignHousehold, attempt.household_id)
    if (attempt.status != AttemptStatus.HUNG_UP or outcome == AttemptStatus.HUNG_UP
            or household is None or household.status != AttemptStatus.HUNG_UP):
        return None
    attempt.status = outcome
    attempt.reason = reason[:64]
    decision = rules.after_attempt(
        outcome, household.attempts, now, max_attempts=settings.dialer_max_attempts,
        retry_delay=timedelta(seconds=settings.dialer_retry_delay_s))
    household.status = decision.status
    household.next_attempt_at = decision.next_attempt_at
    household.finished_at = now if decision.final else None
    await session.flush()
    return outcome


def reconciled_outcome(attempt: CallAttempt) -> AttemptStatus:
    """What an attempt left in flight (its call gone) must have been."""
    if attempt.answered_at is not None or attempt.status == AttemptStatus.ANSWERED:
        return rules.answered_outcome(
            amd_machine=attempt.amd_status == "MACHINE",
            message_completed=attempt.message_completed,
        )
    return AttemptStatus.FAILED


async def finish_campaign_if_done(session: AsyncSession, campaign: Campaign, now: datetime) -> bool:
    """Mark a running campaign completed once every household and email is final."""
    if campaign.status != CampaignStatus.RUNNING:
        return False
    open_calls = await session.scalar(
        select(func.count()).select_from(CampaignHousehold).where(
            CampaignHousehold.campaign_id == campaign.id,
            (CampaignHousehold.status.in_([AttemptStatus.QUEUED, *rules.IN_FLIGHT_STATES]))
            | (
                CampaignHousehold.status.in_(rules.RETRYABLE_STATES)
                & CampaignHousehold.next_attempt_at.is_not(None)
            ),
        )
    )
    open_mails = await session.scalar(
        select(func.count()).select_from(EmailDelivery).where(
            EmailDelivery.campaign_id == campaign.id,
            EmailDelivery.status == "queued",
        )
    )
    if open_calls or open_mails:
        return False
    campaign.status = CampaignStatus.COMPLETED
    campaign.finished_at = now
    await session.flush()
    return True


# ---------------------------------------------------------------------------------------------
# Survey answers


async def record_answer(
    session: AsyncSession,
    *,
    question_id: int,
    digit: int,
    child_ids: list[int],
    channel: str,
    now: datetime,
    guardian_id: int | None = None,
) -> SurveyOption | None:
    """Write one answer for each child at once; a later answer replaces an earlier one.

    Returns the option chosen, or None when the digit is not an option of the question.
    Raises :class:`surveys.SurveyClosed` after the survey's deadline, on every channel.
    """
    await surveys.ensure_open(session, question_id, now)
    option = await session.scalar(
        select(SurveyOption).where(
            SurveyOption.question_id == question_id, SurveyOption.digit == int(digit)
        )
    )
    if option is None:
        return None
    for child_id in child_ids:
        existing = await session.scalar(
            select(SurveyResponse).where(
                SurveyResponse.question_id == question_id, SurveyResponse.child_id == child_id
            )
        )
        if existing is None:
            try:
                async with session.begin_nested():
                    session.add(
                        SurveyResponse(
                            question_id=question_id, child_id=child_id, option_id=option.id,
                            guardian_id=guardian_id, channel=channel, answered_at=now,
                        )
                    )
                continue
            except IntegrityError:
                existing = await session.scalar(
                    select(SurveyResponse).where(
                        SurveyResponse.question_id == question_id,
                        SurveyResponse.child_id == child_id,
                    )
                )
        assert existing is not None
        existing.option_id = option.id
        existing.guardian_id = guardian_id
        existing.channel = channel
        existing.answered_at = now
    await session.flush()
    return option


async def survey_questions(session: AsyncSession, survey_id: int) -> list[SurveyQuestion]:
    rows = await session.scalars(
        select(SurveyQuestion)
        .where(SurveyQuestion.survey_id == survey_id)
        .options(selectinload(SurveyQuestion.options))
        .order_by(SurveyQuestion.position)
    )
    return list(rows)


# ---------------------------------------------------------------------------------------------
# Progress, tally and results


@dataclass
class TallyOption:
    digit: int
    label: dict
    count: int


@dataclass
class TallyQuestion:
    position: int
    text: dict
    options: list[TallyOption]

    @property
    def total(self) -> int:
        return sum(o.count for o in self.options)


async def tally(session: AsyncSession, survey_id: int) -> list[TallyQuestion]:
    counts = dict(
        (
            await session.execute(
                select(SurveyResponse.option_id, func.count())
                .join(SurveyQuestion, SurveyQuestion.id == SurveyResponse.question_id)
                .where(SurveyQuestion.survey_id == survey_id)
                .group_by(SurveyResponse.option_id)
            )
        ).all()
    )
    return [
        TallyQuestion(
            q.position, q.text,
            [TallyOption(o.digit, o.label, int(counts.get(o.id, 0))) for o in q.options],
        )
        for q in await survey_questions(session, survey_id)
    ]


PROGRESS_KEYS = (
    "queued", "ringing", "answered", "completed", "left_message", "hung_up",
    "busy", "no_answer", "failed", "retrying",
)


@dataclass
class Progress:
    campaign_id: int
    status: str
    households: int
    counts: dict[str, int]
    final: int
    emails: int
    emails_sent: int
    emails_failed: int
    emails_queued: int

    @property
    def percent(self) -> int:
        total = self.households + self.emails
        done = self.final + self.emails_sent + self.emails_failed
        return 100 if total == 0 else int(100 * done / total)


async def progress(session: AsyncSession, campaign_id: int) -> Progress:
    campaign = await session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None:
        raise CampaignError("no such campaign")
    counts = dict.fromkeys(PROGRESS_KEYS, 0)
    final = 0
    rows = await session.execute(
        select(CampaignHousehold.status, CampaignHousehold.next_attempt_at).where(
            CampaignHousehold.campaign_id == campaign_id
        )
    )
    households = 0
    for status, next_at in rows:
        households += 1
        key = rules.display_state(status, next_at)
        counts[key] = counts.get(key, 0) + 1
        final += rules.household_final(status, next_at)
    mails = dict(
        (
            await session.execute(
                select(EmailDelivery.status, func.count())
                .where(EmailDelivery.campaign_id == campaign_id)
                .group_by(EmailDelivery.status)
            )
        ).all()
    )
    return Progress(
        campaign_id, campaign.status, households, counts, final,
        emails=sum(mails.values()), emails_sent=mails.get("sent", 0),
        emails_failed=mails.get("failed", 0),
        emails_queued=mails.get("queued", 0),
    )


async def results_csv(session: AsyncSession, campaign_id: int) -> str:
    """One row per household call and per email: outcome, attempts, survey answers."""
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignError("no such campaign")
    questions = await survey_questions(session, campaign.survey_id) if campaign.survey_id else []
    answers: dict[tuple[int, int], int] = {}
    if questions:
        rows = await session.execute(
            select(SurveyResponse.child_id, SurveyResponse.question_id, SurveyOption.digit)
            .join(SurveyOption, SurveyOption.id == SurveyResponse.option_id)
            .where(SurveyResponse.question_id.in_([q.id for q in questions]))
        )
        answers = {(c, q): d for c, q, d in rows}
    names = dict((await session.execute(select(Child.id, Child.name))).all())
    out = io.StringIO()
    w = SafeWriter(out)  # names and errors never run as spreadsheet formulas
    w.writerow(
        ["channel", "to", "children", "status", "attempts", "last_cause", "finished_at"]
        + [f"Q{q.position}" for q in questions]
    )
    households = await session.scalars(
        select(CampaignHousehold)
        .where(CampaignHousehold.campaign_id == campaign_id)
        .options(selectinload(CampaignHousehold.calls))
        .order_by(CampaignHousehold.id)
    )
    for h in households:
        last = h.calls[-1] if h.calls else None
        w.writerow(
            ["phone", h.phone_e164, " / ".join(names.get(c, "") for c in h.child_ids),
             rules.display_state(h.status, h.next_attempt_at), h.attempts,
             last.hangup_cause if last and last.hangup_cause is not None else "",
             h.finished_at.isoformat() if h.finished_at else ""]
            + [_answers(answers, h.child_ids, q.id) if h.survey else "" for q in questions]
        )
    mails = await session.scalars(
        select(EmailDelivery).where(EmailDelivery.campaign_id == campaign_id)
        .order_by(EmailDelivery.id)
    )
    for m in mails:
        w.writerow(
            ["email", m.address, "", m.status, m.attempts, m.error[:80],
             m.sent_at.isoformat() if m.sent_at else ""] + ["" for _ in questions]
        )
    return out.getvalue()


def _answers(answers: dict[tuple[int, int], int], child_ids: list[int], qid: int) -> str:
    got = {answers[(c, qid)] for c in child_ids if (c, qid) in answers}
    return "/".join(str(d) for d in sorted(got))
