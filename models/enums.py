"""Value sets stored as short strings (portable CHECK constraints, readable rows)."""

from __future__ import annotations

from enum import StrEnum


class ReportKind(StrEnum):
    ABSENCE = "absence"
    LATE = "late"
    EARLY_LEAVE = "early_leave"


class ReportReason(StrEnum):
    ILLNESS = "illness"
    INJURY = "injury"  # injury or hospital visit
    SUSPENSION = "suspension"  # 出席停止: infectious disease
    BEREAVEMENT = "bereavement"  # 忌引き / family matters
    OTHER = "other"


class Symptom(StrEnum):
    """What the illness is, for the nurse's counts (only with an illness or suspension)."""

    FEVER = "fever"
    INFLUENZA = "influenza"
    COVID19 = "covid19"
    GASTROENTERITIS = "gastroenteritis"
    OTHER = "other"


# The reasons a symptom belongs to
SYMPTOM_REASONS = frozenset({ReportReason.ILLNESS, ReportReason.SUSPENSION})


class ReportStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class Channel(StrEnum):
    PHONE = "phone"
    WEB = "web"
    EMAIL = "email"
    STAFF = "staff"


class PhoneKind(StrEnum):
    MOBILE = "mobile"
    LANDLINE = "landline"
    OTHER = "other"  # IP phone, toll free, unknown


class StaffRole(StrEnum):
    TEACHER = "teacher"
    ADMIN = "admin"
    NURSE = "nurse"  # 養護教諭
    PRINCIPAL = "principal"


class LeaveReason(StrEnum):
    TRANSFER = "transfer"  # 転出
    GRADUATED = "graduated"  # 卒業


class EventStatus(StrEnum):
    SCHEDULED = "scheduled"
    CHANGED = "changed"
    CANCELLED = "cancelled"


class PromptSource(StrEnum):
    TTS = "tts"
    RECORDED = "recorded"


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class AttemptStatus(StrEnum):
    QUEUED = "queued"
    DIALING = "dialing"
    RINGING = "ringing"
    ANSWERED = "answered"
    COMPLETED = "completed"
    LEFT_MESSAGE = "left_message"
    HUNG_UP = "hung_up"  # answered, hung up before the message ended
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"


class VoicemailStatus(StrEnum):
    NEW = "new"
    CONFIRMED = "confirmed"  # a teacher made it an absence report
    DONE = "done"  # listened to; not an absence (or handled otherwise)


class ProxyRequestStatus(StrEnum):
    PENDING = "pending"
    REGISTERED = "registered"
    REJECTED = "rejected"


class RollMark(StrEnum):
    """The teacher's morning roll call mark for one child."""

    PRESENT = "present"
    ABSENT = "absent"
    LATE = "late"


class FollowUpAnswer(StrEnum):
    """The family's key on a follow-up call (1, 2, 3)."""

    ABSENT = "absent"  # absent today (they forgot to report)
    ON_WAY = "on_way"
    DID_NOT_KNOW = "did_not_know"


class FollowUpStatus(StrEnum):
    CALLING = "calling"  # calls queued or under way
    ANSWERED = "answered"
    UNANSWERED = "unanswered"  # every number tried, nobody pressed a key
    EMAILED = "emailed"  # no phone: the family got an email
    NO_CONTACT = "no_contact"  # neither phone nor email registered


def check_in(column: str, values: type[StrEnum]) -> str:
    """SQL text for a CHECK constraint that keeps ``column`` inside ``values``."""
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"
