"""Morning roll call and its follow-up as pure rules: marks, "unexplained", whom to call.

A child's mark comes from the teacher; until the teacher marks, the day's reports suggest
one (an absence report → absent, a late report → late). An absence the family did not
report is **unexplained** until the family explains it on the follow-up call (1 absent
today, 2 on the way). "3 did not know" keeps it unexplained and alerts the staff.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from models.enums import FollowUpAnswer, ReportKind, RollMark

# The keys of the follow-up call, for the call flow and the pages alike
ANSWER_BY_DIGIT = {
    "1": FollowUpAnswer.ABSENT,
    "2": FollowUpAnswer.ON_WAY,
    "3": FollowUpAnswer.DID_NOT_KNOW,
}
# The next guardian's number is called this long after the previous one (unless a key
# was pressed by then): long enough for the ring timeout and a short call
NEXT_GUARDIAN_AFTER = timedelta(minutes=3)


def suggested_mark(report_kinds: Iterable[str]) -> RollMark | None:
    """What the day's active reports pre-fill: an absence wins over a late arrival."""
    kinds = set(report_kinds)
    if ReportKind.ABSENCE in kinds:
        return RollMark.ABSENT
    if ReportKind.LATE in kinds:
        return RollMark.LATE
    return None


def is_unexplained(mark: str | None, report_kinds: Iterable[str], answer: str | None) -> bool:
    """Marked absent, yet no absence or late report and no explaining answer on the call."""
    if mark != RollMark.ABSENT:
        return False
    kinds = set(report_kinds)
    if ReportKind.ABSENCE in kinds or ReportKind.LATE in kinds:
        return False
    return answer not in (FollowUpAnswer.ABSENT, FollowUpAnswer.ON_WAY)


@dataclass(frozen=True)
class Contact:
    guardian_id: int
    position: int  # 1 = primary guardian
    language: str
    phone: str | None  # the guardian's preferred number (mobile first)
    email: str | None


@dataclass(frozen=True)
class CallStep:
    phone_e164: str
    guardian_id: int
    delay: timedelta  # after the follow-up starts


@dataclass(frozen=True)
class FollowUpPlan:
    language: str  # the primary guardian's: the family's language
    calls: tuple[CallStep, ...]
    emails: tuple[tuple[int, str], ...]  # (guardian_id, address) when nobody has a phone


def plan_followup(contacts: Sequence[Contact]) -> FollowUpPlan:
    """Primary guardian first, then the others, each number once; email only without phones."""
    ordered = sorted(contacts, key=lambda c: c.position)
    language = ordered[0].language if ordered else "ja"
    calls: list[CallStep] = []
    for c in ordered:
        if c.phone and all(step.phone_e164 != c.phone for step in calls):
            calls.append(CallStep(c.phone, c.guardian_id, NEXT_GUARDIAN_AFTER * len(calls)))
    emails = () if calls else tuple((c.guardian_id, c.email) for c in ordered if c.email)
    return FollowUpPlan(language or "ja", tuple(calls), emails)


@dataclass(frozen=True)
class ClassCounts:
    """A class's morning at a glance (the principal's summary)."""

    children: int
    reported: int  # children with an active absence or late report
    unexplained: int
    present: int  # marked present or late
    unmarked: int


def class_counts(rows: Iterable[tuple[str | None, frozenset[str], str | None]]) -> ClassCounts:
    """From (mark or suggestion, report kinds, follow-up answer) per child."""
    children = reported = unexplained = present = unmarked = 0
    for mark, kinds, answer in rows:
        children += 1
        reported += bool(kinds & {ReportKind.ABSENCE, ReportKind.LATE})
        unexplained += is_unexplained(mark, kinds, answer)
        present += mark in (RollMark.PRESENT, RollMark.LATE)
        unmarked += mark is None
    return ClassCounts(children, reported, unexplained, present, unmarked)
