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


def check_in(column: str, values: type[StrEnum]) -> str:
    """SQL text for a CHECK constraint that keeps ``column`` inside ``values``."""
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"
