"""Schools, their calendars, classes and staff."""

from __future__ import annotations

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
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

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
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    classes: Mapped[list[Classroom]] = relationship(back_populates="school")
    terms: Mapped[list[Term]] = relationship(back_populates="school")
    calendar_days: Mapped[list[CalendarDay]] = relationship(back_populates="school")


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


class CalendarDay(Base):
    """An exception to the weekday rule: a holiday, or a Saturday school day."""

    __tablename__ = "calendar_days"
    __table_args__ = (UniqueConstraint("school_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"))
    day: Mapped[date] = mapped_column(Date)
    is_school_day: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(100), default="")

    school: Mapped[School] = relationship(back_populates="calendar_days")


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
