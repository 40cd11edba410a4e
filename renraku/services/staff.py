"""Staff accounts and their scope: login lookup, the admin's account list, class assignment."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Classroom, Staff, StaffClass
from models.enums import StaffRole
from renraku.rules.permissions import StaffScope
from renraku.services.passwords import STAFF_MIN, hash_password, weakness


async def staff_scope(session: AsyncSession, staff: Staff) -> StaffScope:
    class_ids = await session.scalars(
        select(StaffClass.class_id).where(StaffClass.staff_id == staff.id)
    )
    return StaffScope(staff.id, staff.school_id, staff.role, frozenset(class_ids), staff.active)


async def school_classes(session: AsyncSession, school_id: int) -> list[Classroom]:
    rows = await session.scalars(
        select(Classroom)
        .where(Classroom.school_id == school_id)
        .order_by(Classroom.academic_year.desc(), Classroom.grade, Classroom.name)
    )
    return list(rows)


async def school_staff(session: AsyncSession, school_id: int) -> list[Staff]:
    rows = await session.scalars(
        select(Staff).where(Staff.school_id == school_id).order_by(Staff.role, Staff.name)
    )
    return list(rows)


async def create_staff(
    session: AsyncSession,
    school_id: int,
    *,
    name: str,
    email: str,
    role: str,
    password: str,
    class_ids: list[int],
    language: str = "ja",
) -> Staff:
    email = email.strip().lower()
    if not name.strip() or "@" not in email:
        raise ValueError("name or email")
    if role not in set(StaffRole):
        raise ValueError("role")
    problem = weakness(password, STAFF_MIN)
    if problem:
        raise ValueError(f"password_{problem}")
    if await session.scalar(select(Staff.id).where(Staff.email == email)):
        raise ValueError("email_taken")
    staff = Staff(school_id=school_id, name=name.strip(), email=email, role=role,
                  password_hash=hash_password(password), language=language)
    session.add(staff)
    await session.flush()
    await assign_classes(session, staff, class_ids)
    return staff


async def assign_classes(session: AsyncSession, staff: Staff, class_ids: list[int]) -> None:
    """Replace the person's classes; classes of other schools are ignored.

    Their access changes, so their sessions end (a new session epoch).
    """
    staff.session_epoch = (staff.session_epoch or 0) + 1
    own = set(
        await session.scalars(
            select(Classroom.id).where(
                Classroom.id.in_(class_ids), Classroom.school_id == staff.school_id
            )
        )
    )
    await session.execute(delete(StaffClass).where(StaffClass.staff_id == staff.id))
    session.add_all(StaffClass(staff_id=staff.id, class_id=cid) for cid in sorted(own))
    await session.flush()


async def set_active(session: AsyncSession, staff: Staff, active: bool) -> None:
    staff.active = active
    await session.flush()
