"""What the portal remembers for its own defence: failed sign-ins and the staff audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class ThrottleEvent(Base):
    """One counted event (a failed password or code, a code sent) against a key.

    Kept in the database, not in a process, so every web worker and node sees the same
    counts. ``key`` names an account (``g:12``, ``s:3``, an identifier never seen) or an
    address (``ip:192.0.2.1``).
    """

    __tablename__ = "throttle_events"
    __table_args__ = (Index("ix_throttle_events_kind_key_at", "kind", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    key: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime]


class AuditEntry(Base):
    """A staff member opened or exported personal data: whose, what and when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_school_id_at", "school_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))  # e.g. register.view, register.export
    class_id: Mapped[int | None] = mapped_column(ForeignKey("classes.id"))
    child_id: Mapped[int | None] = mapped_column(ForeignKey("children.id"))
    detail: Mapped[str] = mapped_column(String(200), default="")  # the day, month, format…
    at: Mapped[datetime]
