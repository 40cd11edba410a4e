"""Voicemail reports: messages the absence line recorded while the app could not take the call.

Asterisk records them on its own (dialplans/inbound.conf, ``renraku-voicemail``) into the
spool folder; ``renraku.services.voicemail`` imports each file once (``file_name`` is
unique) and links it to the caller's children, so it shows in their classes' registers.
Unknown callers' messages have no child: they wait in the school-wide inbox.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.absence import AbsenceReport
from models.base import Base
from models.enums import VoicemailStatus, check_in
from models.people import Child, Guardian


class Voicemail(Base):
    __tablename__ = "voicemails"
    __table_args__ = (CheckConstraint(check_in("status", VoicemailStatus), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(200), unique=True)  # in the spool folder
    caller: Mapped[str] = mapped_column(String(40))  # digits as Asterisk saw them; may be ""
    caller_e164: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(2), default="")  # "" when unknown
    uniqueid: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    # NULL: the line serves several schools and the caller is unknown (every admin sees it)
    school_id: Mapped[int | None] = mapped_column(ForeignKey("schools.id"), index=True)
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardians.id"))
    status: Mapped[str] = mapped_column(String(12), default=VoicemailStatus.NEW)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("absence_reports.id"))
    handled_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    handled_at: Mapped[datetime | None]
    imported_at: Mapped[datetime]

    guardian: Mapped[Guardian | None] = relationship()
    report: Mapped[AbsenceReport | None] = relationship()
    children: Mapped[list[Child]] = relationship(secondary="voicemail_children",
                                                 order_by="Child.id")


class VoicemailChild(Base):
    """The caller's children a message may be about (each shows it in its class)."""

    __tablename__ = "voicemail_children"

    voicemail_id: Mapped[int] = mapped_column(ForeignKey("voicemails.id"), primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), primary_key=True,
                                          index=True)
