"""Children, guardians, their phones and the links between them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base
from models.enums import LeaveReason, PhoneKind, check_in
from models.school import Classroom, School

MAX_GUARDIANS_PER_CHILD = 3


class Child(Base):
    """A pupil. ``name`` is "氏 名" as shown; the roster import keeps the parts too.

    A child who leaves (転出) or graduates (卒業) is kept with ``active`` off and the day
    and reason of leaving: their registers stay, guardians no longer see them.
    """

    __tablename__ = "children"
    __table_args__ = (
        UniqueConstraint("school_id", "student_number"),
        CheckConstraint(check_in("left_reason", LeaveReason), name="left_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    reading: Mapped[str] = mapped_column(String(200), default="")  # ふりがな, spoken by TTS
    display_name: Mapped[str] = mapped_column(String(100), default="")
    icon_path: Mapped[str | None] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # 学籍番号 from the school-affairs system: the roster import's key (None: made by hand)
    student_number: Mapped[str | None] = mapped_column(String(32))
    family_name: Mapped[str] = mapped_column(String(100), default="")
    given_name: Mapped[str] = mapped_column(String(100), default="")
    birth_date: Mapped[date | None] = mapped_column(Date)
    left_on: Mapped[date | None] = mapped_column(Date)
    left_reason: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    school: Mapped[School] = relationship()
    classes: Mapped[list[Classroom]] = relationship(secondary="enrolments")
    guardianships: Mapped[list[Guardianship]] = relationship(
        back_populates="child", order_by="Guardianship.position"
    )

    @property
    def shown_name(self) -> str:
        return self.display_name or self.name

    @property
    def spoken_name(self) -> str:
        return self.reading or self.name

    @property
    def current_classes(self) -> list[Classroom]:
        """The classes of the child's latest academic year (after a rollover, not last year's)."""
        return current_rooms(self.classes)


def current_rooms(rooms: list[Classroom]) -> list[Classroom]:
    latest = max((r.academic_year for r in rooms), default=None)
    return [r for r in rooms if r.academic_year == latest]


class Enrolment(Base):
    __tablename__ = "enrolments"

    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), primary_key=True, index=True)
    number: Mapped[int | None] = mapped_column(Integer)  # 出席番号 in this class


class Guardian(Base):
    __tablename__ = "guardians"
    __table_args__ = (CheckConstraint("language IN ('ja', 'en', 'zh', 'es')", name="language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    reading: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="ja")
    # Registered by a teacher on the family's behalf (no smartphone / email / mobile)
    proxy_registered: Mapped[bool] = mapped_column(Boolean, default=False)
    calendar_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Raised by a password change or "sign out everywhere": older sessions stop working
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    phones: Mapped[list[GuardianPhone]] = relationship(back_populates="guardian")
    guardianships: Mapped[list[Guardianship]] = relationship(back_populates="guardian")


class GuardianPhone(Base):
    """A guardian's number; a home landline may belong to several guardians."""

    __tablename__ = "guardian_phones"
    __table_args__ = (
        UniqueConstraint("guardian_id", "e164"),
        CheckConstraint(check_in("kind", PhoneKind), name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    guardian_id: Mapped[int] = mapped_column(ForeignKey("guardians.id"))
    e164: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)

    guardian: Mapped[Guardian] = relationship(back_populates="phones")


class Guardianship(Base):
    """Child ↔ guardian with a position 1–3; position 1 is the primary guardian.

    The CHECK and the unique (child, position) pair cap a child at three guardians in the
    database itself, so two racing registrations cannot both take the last place.
    """

    __tablename__ = "guardianships"
    __table_args__ = (
        UniqueConstraint("child_id", "position"),
        UniqueConstraint("child_id", "guardian_id"),
        CheckConstraint(f"position BETWEEN 1 AND {MAX_GUARDIANS_PER_CHILD}", name="position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"))
    guardian_id: Mapped[int] = mapped_column(ForeignKey("guardians.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    relation: Mapped[str] = mapped_column(String(32), default="")  # mother, father, grandparent...
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    child: Mapped[Child] = relationship(back_populates="guardianships")
    guardian: Mapped[Guardian] = relationship(back_populates="guardianships")

    @property
    def is_primary(self) -> bool:
        return self.position == 1


class RegistrationToken(Base):
    """The secret behind a child's QR code for one class; reusable until three guardians."""

    __tablename__ = "registration_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[datetime | None]

    child: Mapped[Child] = relationship()
    classroom: Mapped[Classroom] = relationship()


class VerificationCode(Base):
    """A one-time code sent by email or SMS (email/phone verification, password reset),
    or a staff member's one-time set-password link; it belongs to exactly one person."""

    __tablename__ = "verification_codes"
    __table_args__ = (
        CheckConstraint("(guardian_id IS NULL) <> (staff_id IS NULL)", name="one_owner"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardians.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # email, phone, reset, set_password
    target: Mapped[str] = mapped_column(String(254))  # address or E.164 being verified
    code_hash: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SmsMessage(Base):
    """Outgoing SMS: kept here first so nothing is silently dropped, then sent by a backend."""

    __tablename__ = "sms_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_e164: Mapped[str] = mapped_column(String(20), index=True)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued, sent, failed
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]
