"""The staff side of the school day: roll call marks, follow-ups of unexplained absences,
alerts for staff, and each school's staff-room settings."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.enums import FollowUpAnswer, FollowUpStatus, RollMark, check_in


class StaffroomSettings(Base):
    """Per school: when follow-up calls and the principal's digest go out, and the nurse's
    class-closure threshold. A school without a row uses the defaults below."""

    __tablename__ = "staffroom_settings"
    __table_args__ = (
        CheckConstraint("closure_threshold_pct BETWEEN 1 AND 100", name="threshold"),
    )

    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), primary_key=True)
    followup_at: Mapped[time | None] = mapped_column(Time, default=time(9, 0))
    digest_at: Mapped[time | None] = mapped_column(Time, default=time(9, 30))
    closure_threshold_pct: Mapped[int] = mapped_column(Integer, default=20)
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
