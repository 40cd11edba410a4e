"""Pure rules of the voice broadcast: who is called, when, how often, and what an outcome means.

Nothing here touches the database, the network or the real clock, so every rule is unit
tested directly (tests/test_rules_campaign.py). The dialer and the services only apply them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from models.enums import AttemptStatus

# ---------------------------------------------------------------------------------------------
# Households


@dataclass(frozen=True)
class GuardianInfo:
    guardian_id: int
    position: int  # 1 = primary guardian of the child
    language: str
    phones: tuple[tuple[str, str], ...] = ()  # (e164, kind) in registration order
    email: str | None = None


@dataclass(frozen=True)
class ChildInfo:
    child_id: int
    guardians: tuple[GuardianInfo, ...]


@dataclass
class HouseholdPlan:
    """One number to call: every guardian reached on it, and whether it gets the survey."""

    phone_e164: str
    language: str
    guardian_id: int  # the guardian the call is addressed to (primary when there is one)
    guardian_ids: list[int] = field(default_factory=list)
    child_ids: list[int] = field(default_factory=list)  # children the call is about
    survey_child_ids: list[int] = field(default_factory=list)  # children it answers for

    @property
    def survey(self) -> bool:
        return bool(self.survey_child_ids)


@dataclass
class EmailPlan:
    guardian_id: int
    address: str
    language: str
    child_ids: list[int] = field(default_factory=list)
    survey_child_ids: list[int] = field(default_factory=list)


def preferred_phone(phones: Iterable[tuple[str, str]]) -> str | None:
    """A guardian's number for a broadcast: their first mobile, else their first number.

    Mobiles first because that is where a person is reached during the day; a family with
    only a landline is still called on it.
    """
    phones = list(phones)
    for e164, kind in phones:
        if kind == "mobile":
            return e164
    return phones[0][0] if phones else None


def build_households(children: Iterable[ChildInfo]) -> list[HouseholdPlan]:
    """Targets → the numbers to call, one call per number.

    Every guardian of a targeted child is reached once, on their preferred number. Guardians
    sharing a number (a home landline registered by both parents) are one household and one
    call. The survey goes only to a household where a child's primary guardian is reached,
    and answers there are written for those children. The language is that of the primary
    guardian on the line, else of the first guardian reached.
    """
    by_phone: dict[str, HouseholdPlan] = {}
    primary_on: dict[str, bool] = {}
    for child in sorted(children, key=lambda c: c.child_id):
        for g in sorted(child.guardians, key=lambda g: g.position):
            phone = preferred_phone(g.phones)
            if phone is None:
                continue
            plan = by_phone.get(phone)
            if plan is None:
                plan = by_phone[phone] = HouseholdPlan(phone, g.language or "ja", g.guardian_id)
                primary_on[phone] = False
            if g.guardian_id not in plan.guardian_ids:
                plan.guardian_ids.append(g.guardian_id)
            if child.child_id not in plan.child_ids:
                plan.child_ids.append(child.child_id)
            if g.position == 1:
                if child.child_id not in plan.survey_child_ids:
                    plan.survey_child_ids.append(child.child_id)
                if not primary_on[phone]:
                    # Speak to the primary guardian in their language
                    primary_on[phone] = True
                    plan.guardian_id = g.guardian_id
                    plan.language = g.language or "ja"
    return sorted(by_phone.values(), key=lambda p: (min(p.child_ids), p.phone_e164))


def build_emails(children: Iterable[ChildInfo]) -> list[EmailPlan]:
    """One email per guardian with an address; a survey link only for primary guardians."""
    by_guardian: dict[int, EmailPlan] = {}
    for child in sorted(children, key=lambda c: c.child_id):
        for g in child.guardians:
            if not g.email:
                continue
            plan = by_guardian.setdefault(
                g.guardian_id, EmailPlan(g.guardian_id, g.email, g.language or "ja")
            )
            if child.child_id not in plan.child_ids:
                plan.child_ids.append(child.child_id)
            if g.position == 1 and child.child_id not in plan.survey_child_ids:
                plan.survey_child_ids.append(child.child_id)
    return [by_guardian[k] for k in sorted(by_guardian)]


def pick_language(texts: dict[str, str], language: str) -> str:
    """The family's language where the text exists in it, else Japanese."""
    if texts.get(language):
        return language
    if texts.get("ja"):
        return "ja"
    return next((k for k, v in texts.items() if v), "ja")


# ---------------------------------------------------------------------------------------------
# Calling window


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def in_window(now: datetime, tz: str, start: str, end: str) -> bool:
    """Whether a call may start at ``now`` (aware): start ≤ school-local time < end."""
    local = now.astimezone(ZoneInfo(tz)).time()
    return parse_hhmm(start) <= local < parse_hhmm(end)


def narrowed(window: tuple[str, str], limit: tuple[str, str]) -> tuple[str, str]:
    """The part of ``window`` inside ``limit`` (start ≥ end when they do not overlap:
    then nobody is called)."""
    start = max(window[0], limit[0], key=parse_hhmm)
    end = min(window[1], limit[1], key=parse_hhmm)
    return start, end


def next_window_start(now: datetime, tz: str, start: str, end: str) -> datetime:
    """``now`` if inside the window, else the next opening (today or tomorrow), aware."""
    if in_window(now, tz, start, end):
        return now
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    opening = datetime.combine(local.date(), parse_hhmm(start), tzinfo=zone)
    if opening <= local:
        opening = datetime.combine(local.date() + timedelta(days=1), parse_hhmm(start), zone)
    return opening.astimezone(now.tzinfo)


# ---------------------------------------------------------------------------------------------
# Outcomes and retries

# Household/attempt states that end the household for good
FINAL_STATES = frozenset(
    {AttemptStatus.COMPLETED, AttemptStatus.LEFT_MESSAGE, AttemptStatus.HUNG_UP}
)
# States that may be retried while attempts remain
RETRYABLE_STATES = frozenset({AttemptStatus.BUSY, AttemptStatus.NO_ANSWER, AttemptStatus.FAILED})
IN_FLIGHT_STATES = frozenset(
    {AttemptStatus.DIALING, AttemptStatus.RINGING, AttemptStatus.ANSWERED}
)

# OriginateResponse "Reason": the last control frame the originated channel saw
REASON_HANGUP = 1
REASON_RINGING = 3  # still ringing when the originate timed out
REASON_ANSWERED = 4
REASON_BUSY = 5
REASON_CONGESTION = 8

# Q.850 hangup causes
CAUSE_NORMAL = 16
CAUSE_BUSY = 17
CAUSE_NO_USER_RESPONSE = 18
CAUSE_NO_ANSWER = 19
CAUSE_REJECTED = 21


def outcome_from_reason(reason: int) -> AttemptStatus:
    """Status of a call whose Originate failed, from OriginateResponse's Reason."""
    if reason == REASON_BUSY:
        return AttemptStatus.BUSY
    if reason == REASON_RINGING:
        return AttemptStatus.NO_ANSWER
    if reason == REASON_ANSWERED:
        return AttemptStatus.ANSWERED
    return AttemptStatus.FAILED


def outcome_from_cause(cause: int | None) -> AttemptStatus:
    """Status of an unanswered call from its Hangup cause."""
    if cause == CAUSE_BUSY:
        return AttemptStatus.BUSY
    if cause in (CAUSE_NO_USER_RESPONSE, CAUSE_NO_ANSWER):
        return AttemptStatus.NO_ANSWER
    return AttemptStatus.FAILED


def answered_outcome(*, amd_machine: bool, message_completed: bool) -> AttemptStatus:
    """An answered call's result: a machine got the message; a person heard it or hung up."""
    if amd_machine:
        return AttemptStatus.LEFT_MESSAGE
    return AttemptStatus.COMPLETED if message_completed else AttemptStatus.HUNG_UP


def cut_outcome(*, amd_machine: bool, message_completed: bool) -> AttemptStatus:
    """A call our side cut (the IVR's Asterisk went away): it ends the household only if
    the message got through; otherwise the family is called again (failed, retried), even
    if the flow took the cut for the family hanging up."""
    if message_completed:
        return AttemptStatus.LEFT_MESSAGE if amd_machine else AttemptStatus.COMPLETED
    return AttemptStatus.FAILED


@dataclass(frozen=True)
class RetryDecision:
    status: AttemptStatus
    next_attempt_at: datetime | None  # None: no more calls to this household
    final: bool


def after_attempt(
    outcome: AttemptStatus,
    attempts: int,
    now: datetime,
    *,
    max_attempts: int,
    retry_delay: timedelta,
) -> RetryDecision:
    """What happens to a household after an attempt ended with ``outcome``.

    Answered calls (completed, left message, hung up) end the household: a person or a
    machine took the call and calling again would only annoy. Busy / no answer / failed are
    retried ``retry_delay`` later until ``max_attempts`` calls were made.
    """
    if outcome in FINAL_STATES:
        return RetryDecision(outcome, None, True)
    if outcome not in RETRYABLE_STATES:
        raise ValueError(f"not an end state: {outcome}")
    if attempts < max_attempts:
        return RetryDecision(outcome, now + retry_delay, False)
    return RetryDecision(outcome, None, True)


def household_final(status: str, next_attempt_at: datetime | None) -> bool:
    return status in FINAL_STATES or (status in RETRYABLE_STATES and next_attempt_at is None)


def display_state(status: str, next_attempt_at: datetime | None) -> str:
    """The console's word for a household: retry-pending failures show as "retrying"."""
    if status in RETRYABLE_STATES and next_attempt_at is not None:
        return "retrying"
    if status == AttemptStatus.DIALING:
        return "ringing"
    return str(status)


# ---------------------------------------------------------------------------------------------
# Pacing


class Pacer:
    """At most ``rate`` originates per second, measured on an injected monotonic clock.

    ``wait_for(now)`` gives how long to sleep before the next originate; ``mark(now)`` records
    one. Spacing evenly (not bursts) keeps the carrier's CPS limit honoured at any instant.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self._last: float | None = None

    def wait_for(self, now: float) -> float:
        if self._last is None:
            return 0.0
        return max(0.0, self._last + self.interval - now)

    def mark(self, now: float) -> None:
        self._last = now


def free_channels(max_channels: int, active: int) -> int:
    return max(0, max_channels - active)


def estimate_duration_s(
    calls: int,
    *,
    max_channels: int,
    originates_per_second: float,
    avg_call_s: float = 45.0,
) -> int:
    """Rough time for one pass over ``calls`` numbers (first attempts only).

    Calls run ``max_channels`` at a time, but can't start faster than the pacing allows.
    """
    if calls <= 0:
        return 0
    channels = max(1, max_channels)
    by_channels = math.ceil(calls / channels) * avg_call_s
    by_pacing = calls / originates_per_second + avg_call_s
    return math.ceil(max(by_channels, by_pacing))


# ---------------------------------------------------------------------------------------------
# Surveys


MAX_QUESTIONS = 5


def validate_survey(questions: list[dict]) -> list[str]:
    """Errors in a survey definition: ≤5 questions, options numbered 1–9 without repeats.

    ``questions``: [{"text": {"ja": ...}, "options": [{"digit": 1, "label": {"ja": ...}}]}]
    """
    errors: list[str] = []
    if not questions:
        errors.append("a survey needs at least one question")
    if len(questions) > MAX_QUESTIONS:
        errors.append(f"at most {MAX_QUESTIONS} questions")
    for n, q in enumerate(questions, 1):
        if not (q.get("text") or {}).get("ja"):
            errors.append(f"question {n}: Japanese text is required")
        options = q.get("options") or []
        if len(options) < 2:
            errors.append(f"question {n}: at least two options")
        digits = [o.get("digit") for o in options]
        if any(not isinstance(d, int) or not 1 <= d <= 9 for d in digits):
            errors.append(f"question {n}: options are numbered 1–9")
        if len(set(digits)) != len(digits):
            errors.append(f"question {n}: each key once")
        if any(not (o.get("label") or {}).get("ja") for o in options):
            errors.append(f"question {n}: every option needs a Japanese label")
    return errors
