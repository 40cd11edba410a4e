"""Absence, late-arrival and early-leave reports, with their full history.

Reports are never deleted: cancelling sets the status, and every change appends a row to
``absence_report_changes``.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    Time,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base
from models.enums import Channel, ReportKind, ReportReason, ReportStatus, Symptom, check_in
from models.people import Child, Guardian


class AbsenceReport(Base):
    __tablename__ = "absence_reports"
    __table_args__ = (
        CheckConstraint(check_in("kind", ReportKind), name="kind"),
        CheckConstraint(check_in("reason", ReportReason), name="reason"),
        CheckConstraint(check_in("status", ReportStatus), name="status"),
        CheckConstraint(check_in("channel", Channel), name="channel"),
        CheckConstraint(f"symptom IS NULL OR {check_in('symptom', Symptom)}", name="symptom"),
        # One active report per child, day and kind; cancelled ones stay as history.
        Index(
            "uq_absence_active",
            "child_id",
            "day",
            "kind",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_absence_reports_day", "day", "child_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"))
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(16))
    symptom: Mapped[str | None] = mapped_column(String(16))  # with illness / suspension
    at_time: Mapped[time | None] = mapped_column(Time)  # arrival / leaving time
    memo: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str] = mapped_column(String(8))
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardians.id"))
    status: Mapped[str] = mapped_column(String(12), default=ReportStatus.ACTIVE)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
    seen_at: Mapped[datetime | None]
    seen_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    child: Mapped[Child] = relationship()
    guardian: Mapped[Guardian | None] = relationship()
    changes: Mapped[list[AbsenceReportChange]] = relationship(
        back_populates="report", order_by="AbsenceReportChange.id"
    )


class AbsenceReportChange(Base):
    __tablename__ = "absence_report_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("absence_reports.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # created, changed, cancelled, reconfirmed
    channel: Mapped[str] = mapped_column(String(8))
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardians.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    at: Mapped[datetime]

    report: Mapped[AbsenceReport] = relationship(back_populates="changes")


class CallLog(Base):
    """Every inbound call attempt, including the ones that recorded nothing."""

    __tablename__ = "call_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    flow: Mapped[str] = mapped_column(String(32))
    caller: Mapped[str] = mapped_column(String(40))  # as received; may be empty or "anonymous"
    caller_e164: Mapped[str | None] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(32))  # unregistered, withheld, reported, ...
    uniqueid: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
