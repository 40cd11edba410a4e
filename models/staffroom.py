"""The staff side of the school day: roll call marks, follow-ups of unexplained absences,
alerts for staff, each school's staff-room settings, the staff board, staff-only calendar
entries and notes between staff about a child."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.enums import FollowUpAnswer, FollowUpStatus, RollMark, check_in

DEFAULT_FOLLOWUP_AT = time(9, 0)
DEFAULT_DIGEST_AT = time(9, 30)
DEFAULT_CLOSURE_THRESHOLD_PCT = 20


class StaffroomSettings(Base):
    """Per school: when follow-up calls and the principal's digest go out, and the nurse's
    class-closure threshold. A school without a row uses the defaults below."""

    __tablename__ = "staffroom_settings"
    __table_args__ = (
        CheckConstraint("closure_threshold_pct BETWEEN 1 AND 100", name="threshold"),
    )

    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), primary_key=True)
    followup_at: Mapped[time | None] = mapped_column(Time, default=DEFAULT_FOLLOWUP_AT)
    digest_at: Mapped[time | None] = mapped_column(Time, default=DEFAULT_DIGEST_AT)
    closure_threshold_pct: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_CLOSURE_THRESHOLD_PCT)
    # The last school-local day the automatic run happened (so it happens once a day)
    followup_done_on: Mapped[date | None] = mapped_column(Date)
    digest_done_on: Mapped[date | None] = mapped_column(Date)


class RollCall(Base):
    """One child's mark on one day; a later mark replaces the earlier one."""

    __tablename__ = "roll_marks"
    __table_args__ = (
        UniqueConstraint("child_id", "day"),
        CheckConstraint(check_in("mark", RollMark), name="mark"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"))
    day: Mapped[date] = mapped_column(Date, index=True)
    mark: Mapped[str] = mapped_column(String(8))
    marked_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    marked_at: Mapped[datetime]


class FollowUp(Base):
    """The follow-up of one child's unexplained absence: at most one per child and day."""

    __tablename__ = "followups"
    __table_args__ = (
        UniqueConstraint("child_id", "day"),
        CheckConstraint(check_in("status", FollowUpStatus), name="status"),
        CheckConstraint(f"answer IS NULL OR {check_in('answer', FollowUpAnswer)}", name="answer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"))
    day: Mapped[date] = mapped_column(Date)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    status: Mapped[str] = mapped_column(String(12))
    answer: Mapped[str | None] = mapped_column(String(16))
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardians.id"))
    started_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class StaffAlert(Base):
    """Something a staff member must see on their pages until they mark it read."""

    __tablename__ = "staff_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # did_not_know
    child_id: Mapped[int | None] = mapped_column(ForeignKey("children.id"))
    followup_id: Mapped[int | None] = mapped_column(ForeignKey("followups.id"))
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]


class StaffMessage(Base):
    """A staff-board message (職員連絡) to all staff, a grade team or named colleagues.

    Recipients are resolved when it is posted (StaffMessageRecipient), so a later change of
    class assignments neither adds nor drops readers, and each one's read time is kept.
    """

    __tablename__ = "staff_messages"
    __table_args__ = (
        CheckConstraint("audience IN ('all', 'grade', 'people')", name="audience"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    audience: Mapped[str] = mapped_column(String(8))
    grade: Mapped[int | None] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class StaffMessageRecipient(Base):
    __tablename__ = "staff_message_recipients"

    message_id: Mapped[int] = mapped_column(ForeignKey("staff_messages.id"), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), primary_key=True, index=True)
    read_at: Mapped[datetime | None]


class StaffAttachment(Base):
    """A PDF or image on a message; the file lives under the data folder, named by ``token``."""

    __tablename__ = "staff_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("staff_messages.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(64), unique=True)


class StaffBoardPref(Base):
    """Whether a staff member wants an email for each new message addressed to them."""

    __tablename__ = "staff_board_prefs"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    email_notice: Mapped[bool] = mapped_column(Boolean, default=False)


class StaffEvent(Base):
    """A staff-only calendar entry (meeting, duty rota): never on any family's page or feed."""

    __tablename__ = "staff_events"
    __table_args__ = (CheckConstraint("starts_at <= ends_at", name="ordered"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    place: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]


class ChildNote(Base):
    """A note between staff about one child (引継ぎ). Its text is never overwritten silently:
    every version, the first included, is a ChildNoteVersion with its author and time."""

    __tablename__ = "child_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    body: Mapped[str] = mapped_column(Text)  # the current version
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ChildNoteVersion(Base):
    __tablename__ = "child_note_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("child_notes.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    at: Mapped[datetime]
