"""Staff accounts and their scope: creation, set-password links, roles, the recording
line's phone and PIN, the admin's account list, class assignment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Classroom, School, Staff, StaffClass
from models.enums import StaffRole
from renraku.rules.permissions import StaffScope
from renraku.rules.phone import try_normalise
from renraku.services import passwords, verification
from renraku.services.passwords import STAFF_MIN, hash_password, weakness
from renraku.settings import Settings, ensure_secret

MIN_PIN, MAX_PIN = 4, 8  # digits typed on the admin recording line


async def staff_scope(session: AsyncSession, staff: Staff) -> StaffScope:
    class_ids = await session.scalars(
        select(StaffClass.class_id).where(StaffClass.staff_id == staff.id)
    )
    return StaffScope(staff.id, staff.school_id, staff.role, frozenset(class_ids), staff.active)


async def staff_school_scope(
    session: AsyncSession, staff_id: int, class_id: int | None = None
) -> tuple[Staff, School, StaffScope, Classroom | None] | None:
    """A staff member, their school and their scope in one statement (every staff page
    starts here): one row per class of theirs, or one row without a class. With
    ``class_id``, the page's class comes in the same statement (None if no such class;
    whether they may see it is for the caller)."""
    query = (select(Staff, School, StaffClass.class_id)
             .join(School, School.id == Staff.school_id)
             .outerjoin(StaffClass, StaffClass.staff_id == Staff.id)
             .where(Staff.id == staff_id))
    if class_id is not None:
        query = query.add_columns(Classroom).outerjoin(Classroom, Classroom.id == class_id)
    rows = (await session.execute(query)).all()
    if not rows:
        return None
    staff, school = rows[0][0], rows[0][1]
    class_ids = frozenset(row[2] for row in rows if row[2] is not None)
    room = rows[0][3] if class_id is not None else None
    return staff, school, StaffScope(staff.id, staff.school_id, staff.role, class_ids,
                                     staff.active), room


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


class StaffError(ValueError):
    """``str(exc)`` is a code the web translates: name, email, role, password, school,
    email_taken, phone, phone_taken, pin."""


async def create_staff(
    session: AsyncSession,
    school_id: int,
    *,
    name: str,
    email: str,
    role: str,
    password: str | None,
    class_ids: list[int],
    language: str = "ja",
) -> Staff:
    """A staff account. Without a password nobody can sign in to it until its owner sets
    one through a set-password link (``password_link``)."""
    email = email.strip().lower()
    if not name.strip():
        raise StaffError("name")
    if "@" not in email.strip("@") or len(email) > 254:
        raise StaffError("email")
    if role not in set(StaffRole):
        raise StaffError("role")
    if password is not None and (problem := weakness(password, STAFF_MIN)):
        raise StaffError(f"password_{problem}")
    if await session.get(School, school_id) is None:
        raise StaffError("school")
    if await session.scalar(select(Staff.id).where(Staff.email == email)):
        raise StaffError("email_taken")
    staff = Staff(school_id=school_id, name=name.strip(), email=email, role=role,
                  password_hash=hash_password(password) if password is not None else "",
                  language=language)
    session.add(staff)
    await session.flush()
    await assign_classes(session, staff, class_ids)
    return staff


async def password_link(session: AsyncSession, staff: Staff, settings: Settings,
                        now: datetime) -> str:
    """A one-time link (24 h) where the person sets their own password; older links die."""
    row, code = await verification.issue(session, None, "set_password", staff.email, now,
                                         ensure_secret(settings, "secret_key"),
                                         staff_id=staff.id)
    return verification.link(settings.base_url, row, code)


def set_password(staff: Staff, password: str) -> None:
    """A checked new password; it signs the person out of every browser."""
    if problem := weakness(password, STAFF_MIN):
        raise StaffError(f"password_{problem}")
    passwords.set_password(staff, password)


async def set_role(session: AsyncSession, staff: Staff, role: str) -> None:
    if role not in set(StaffRole):
        raise StaffError("role")
    if staff.role != role:  # a privilege change ends their sessions (a new epoch)
        staff.role = role
        staff.session_epoch = (staff.session_epoch or 0) + 1
    await session.flush()


async def set_phone_and_pin(session: AsyncSession, staff: Staff, phone: str, pin: str,
                            region: str = "JP") -> None:
    """The number the admin recording line recognises, and its PIN.

    An empty number removes both (the person can no longer use the line); an empty PIN
    keeps the current one, so changing the number alone does not need the PIN again.
    """
    if not phone.strip():
        staff.phone_e164, staff.pin_hash = None, None
        await session.flush()
        return
    number = try_normalise(phone, region)
    if number is None:
        raise StaffError("phone")
    if not (pin or staff.pin_hash):
        raise StaffError("pin")
    if pin and not (pin.isdigit() and MIN_PIN <= len(pin) <= MAX_PIN):
        raise StaffError("pin")
    taken = await session.scalar(select(Staff.id).where(Staff.phone_e164 == number.e164,
                                                        Staff.id != staff.id))
    if taken:
        raise StaffError("phone_taken")
    staff.phone_e164 = number.e164
    if pin:
        staff.pin_hash = hash_password(pin)
    await session.flush()


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
