"""The staff audit log: who opened or exported which class's register or family contacts.

Entries are written by the web pages that show personal data and read by the school's
admin (their own school only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditEntry, Classroom, Staff

# What was opened: the register of a day or month, its exports, a class's family contacts,
# a broadcast's results (phone numbers and answers).
ACTIONS = ("register.day", "register.month", "register.print", "register.pdf",
           "register.csv", "contacts.class", "broadcast.csv")
PAGE = 300


@dataclass(frozen=True)
class Line:
    entry: AuditEntry
    staff_name: str
    staff_email: str
    class_name: str


async def record(session: AsyncSession, staff: Staff, action: str, now: datetime, *,
                 class_id: int | None = None, child_id: int | None = None,
                 detail: str = "") -> None:
    if action not in ACTIONS:
        raise ValueError(action)
    # One Core INSERT, not an ORM object: every register view writes one of these, and the
    # unit of work's flush cost more than the statement itself.
    await session.execute(insert(AuditEntry).values(
        school_id=staff.school_id, staff_id=staff.id, action=action, class_id=class_id,
        child_id=child_id, detail=detail[:200], at=now))


async def school_log(session: AsyncSession, school_id: int, *, staff_id: int | None = None,
                     class_id: int | None = None, limit: int = PAGE) -> list[Line]:
    """Newest first, one school's entries (optionally one person's or one class's)."""
    query = (select(AuditEntry, Staff.name, Staff.email, Classroom.name)
             .join(Staff, Staff.id == AuditEntry.staff_id)
             .outerjoin(Classroom, Classroom.id == AuditEntry.class_id)
             .where(AuditEntry.school_id == school_id)
             .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit))
    if staff_id is not None:
        query = query.where(AuditEntry.staff_id == staff_id)
    if class_id is not None:
        query = query.where(AuditEntry.class_id == class_id)
    return [Line(e, name, email, room or "") for e, name, email, room in
            await session.execute(query)]
