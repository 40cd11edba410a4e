"""Schools, their calendars, classes and staff."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Time,
    UniqueConstraint,
    event,
    func,
    inspect,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from models.base import Base
from models.enums import StaffRole, check_in


class School(Base):
    __tablename__ = "schools"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    reading: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Tokyo")
    phone_cutoff: Mapped[time] = mapped_column(Time, default=time(20, 0))
    # Phone menu languages offered by this school, in menu order
    languages: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["ja", "en", "zh", "es"])
    # ISO weekdays (1 = Monday) that are school days unless a calendar day says otherwise
    school_weekdays: Mapped[list[int]] = mapped_column(JSON, default=lambda: [1, 2, 3, 4, 5])
    # The absence line's number as families dial it (QR sheets, landing page); None: unset
    absence_line_e164: Mapped[str | None] = mapped_column(String(20))
    # Broadcast calls only inside this window (HH:MM, school time); None: the global setting
    call_window_start: Mapped[str | None] = mapped_column(String(5))
    call_window_end: Mapped[str | None] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # A new random token whenever the cutoff, timezone, weekdays, languages, terms or
    # calendar days change (see _school_rules_changed): processes that cache a school's
    # calendar compare it with the row they read, so another process's edit is seen at once.
    rules_version: Mapped[str] = mapped_column(String(32), default=lambda: new_rules_version(),
                                               server_default="")

    classes: Mapped[list[Classroom]] = relationship(back_populates="school")
    terms: Mapped[list[Term]] = relationship(back_populates="school")
    calendar_changes: Mapped[list[CalendarChange]] = relationship(back_populates="school")

    @property
    def spoken_name(self) -> str:
        """What the phone line says: the reading (kana), else the name as written."""
        return self.reading or self.name


class Term(Base):
    """A school term; dates outside every term (summer holidays...) are not school days."""

    __tablename__ = "terms"
    __table_args__ = (CheckConstraint("start_date <= end_date", name="ordered"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)

    school: Mapped[School] = relationship(back_populates="terms")


class CalendarChange(Base):
    """Staff's change to the weekday rule over a date range (both ends included).

    A closure (``is_school_day`` false) of the whole school (創立記念日, 振替休業日), of one
    grade (学年閉鎖, ``grade``) or of one class (学級閉鎖, ``class_id``); or an extra
    school-wide school day (土曜授業). National holidays are not stored: they come from
    the ``holidays`` library (renraku.rules.jp_holidays).
    """

    __tablename__ = "calendar_changes"
    __table_args__ = (
        CheckConstraint("start_date <= end_date", name="ordered"),
        CheckConstraint("class_id IS NULL OR grade IS NULL", name="one_scope"),
        CheckConstraint("NOT is_school_day OR (class_id IS NULL AND grade IS NULL)",
                        name="open_school_wide"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    is_school_day: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(100), default="")
    class_id: Mapped[int | None] = mapped_column(ForeignKey("classes.id"))
    grade: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    school: Mapped[School] = relationship(back_populates="calendar_changes")


class Classroom(Base):
    __tablename__ = "classes"
    __table_args__ = (UniqueConstraint("school_id", "academic_year", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    academic_year: Mapped[int] = mapped_column(Integer)
    grade: Mapped[int] = mapped_column(Integer)  # 0 for mixed-grade special-needs classes
    name: Mapped[str] = mapped_column(String(100))
    special_needs: Mapped[bool] = mapped_column(Boolean, default=False)

    school: Mapped[School] = relationship(back_populates="classes")


class Staff(Base):
    __tablename__ = "staff"
    __table_args__ = (CheckConstraint(check_in("role", StaffRole), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default=StaffRole.TEACHER)
    language: Mapped[str] = mapped_column(String(8), default="ja")
    # The admin recording line recognises staff by caller ID and this PIN
    phone_e164: Mapped[str | None] = mapped_column(String(20), unique=True)
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Raised by a password, role or class change: older sessions must sign in again
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    classes: Mapped[list[Classroom]] = relationship(secondary="staff_classes")


class StaffClass(Base):
    __tablename__ = "staff_classes"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), primary_key=True)


def new_rules_version() -> str:
    return uuid.uuid4().hex


RULE_COLUMNS = ("timezone", "phone_cutoff", "school_weekdays", "languages")


@event.listens_for(Session, "before_flush")
def _school_rules_changed(session: Session, _ctx: object, _instances: object) -> None:
    """Any ORM write to a school's rules or calendar gives the school a new rules_version."""
    schools: set[School] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Term | CalendarChange):
            school = obj.school if obj.school_id is None else session.get(School, obj.school_id)
            if school is not None:
                schools.add(school)
        elif isinstance(obj, School) and obj in session.dirty:
            state = inspect(obj)
            if any(state.attrs[name].history.has_changes() for name in RULE_COLUMNS):
                schools.add(obj)
    for school in schools:
        if school not in session.deleted:
            school.rules_version = new_rules_version()
