"""School and class events (with a change log for notifications), notices, family events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base
from models.enums import EventStatus, check_in


class Event(Base):
    """A school-wide event (class_id empty) or a class event."""

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint(check_in("status", EventStatus), name="status"),
        CheckConstraint("starts_at <= ends_at", name="ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    class_id: Mapped[int | None] = mapped_column(ForeignKey("classes.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    place: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default=EventStatus.SCHEDULED)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    changes: Mapped[list[EventChange]] = relationship(
        back_populates="event", order_by="EventChange.id"
    )


class EventChange(Base):
    __tablename__ = "event_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # created, changed, cancelled
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    at: Mapped[datetime]
    notified_at: Mapped[datetime | None]

    event: Mapped[Event] = relationship(back_populates="changes")


class FamilyEvent(Base):
    """A household's private event: visible to the child's guardians only, never to staff."""

    __tablename__ = "family_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("guardians.id"))
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class Notice(Base):
    """A notice to the whole school, one grade, or one class; shown from ``publish_at``."""

    __tablename__ = "notices"
    __table_args__ = (CheckConstraint("scope IN ('school', 'grade', 'class')", name="scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    scope: Mapped[str] = mapped_column(String(8), default="school")
    grade: Mapped[int | None] = mapped_column(Integer)
    class_id: Mapped[int | None] = mapped_column(ForeignKey("classes.id"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # Optional translations: {"en": {"title": ..., "body": ...}, ...}
    translations: Mapped[dict] = mapped_column(JSON, default=dict)
    publish_at: Mapped[datetime]
    # Important: households without email also get a call (renraku.services.family_reach)
    important: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]


class ChangeReach(Base):
    """How one event change or one important notice reached the families (staff see it).

    Written once, when the families were told: households emailed, households given a call
    (the campaign's households; who was reached is read from them), households with neither.
    """

    __tablename__ = "change_reach"
    __table_args__ = (
        CheckConstraint("(event_change_id IS NULL) <> (notice_id IS NULL)", name="one_subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    event_change_id: Mapped[int | None] = mapped_column(ForeignKey("event_changes.id"),
                                                        unique=True)
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"), unique=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    emailed: Mapped[int] = mapped_column(Integer, default=0)
    called: Mapped[int] = mapped_column(Integer, default=0)
    unreachable: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
