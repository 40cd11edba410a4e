"""Linking guardians to children, within the three-per-child limit."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    MAX_GUARDIANS_PER_CHILD,
    Child,
    Guardian,
    GuardianPhone,
    Guardianship,
    School,
)


class GuardianLimitReached(Exception):
    """The child already has three guardians."""


async def link_guardian(
    session: AsyncSession, child_id: int, guardian_id: int, relation: str = ""
) -> Guardianship:
    """Give ``guardian_id`` the next free position for ``child_id`` (1 = primary).

    The free position is computed here, but the database's unique (child, position) and
    CHECK (position ≤ 3) constraints decide races: a writer that loses raises
    GuardianLimitReached (or retries when a lower place is still free).
    """
    existing = await session.scalar(
        select(Guardianship).where(
            Guardianship.child_id == child_id, Guardianship.guardian_id == guardian_id
        )
    )
    if existing is not None:
        return existing
    for _ in range(MAX_GUARDIANS_PER_CHILD):
        taken = set(
            await session.scalars(
                select(Guardianship.position).where(Guardianship.child_id == child_id)
            )
        )
        free = [p for p in range(1, MAX_GUARDIANS_PER_CHILD + 1) if p not in taken]
        if not free:
            raise GuardianLimitReached(child_id)
        link = Guardianship(
            child_id=child_id, guardian_id=guardian_id, position=free[0], relation=relation
        )
        try:
            async with session.begin_nested():
                session.add(link)
        except IntegrityError:
            continue  # another writer took that place first; look again
        return link
    raise GuardianLimitReached(child_id)


async def guardian_count(session: AsyncSession, child_id: int) -> int:
    return await session.scalar(
        select(func.count()).select_from(Guardianship).where(Guardianship.child_id == child_id)
    ) or 0


async def guardians_by_phone(session: AsyncSession, e164: str) -> list[Guardian]:
    """Every guardian who registered this number (a home landline may have several)."""
    rows = await session.scalars(
        select(Guardian).join(GuardianPhone).where(GuardianPhone.e164 == e164).order_by(Guardian.id)
    )
    return list(rows.unique())


async def children_of(session: AsyncSession, guardian_ids: list[int]) -> list[Child]:
    """Children of any of these guardians, siblings at other schools included."""
    if not guardian_ids:
        return []
    rows = await session.scalars(
        select(Child)
        .join(Guardianship)
        .where(Guardianship.guardian_id.in_(guardian_ids), Child.active.is_(True))
        .order_by(Child.id)
    )
    return list(rows.unique())


@dataclass(frozen=True)
class Household:
    """Everyone behind one phone number, read in one query (the absence line's caller)."""

    guardians: list[Guardian]  # by id
    children: list[Child]  # active ones, by id
    schools: dict[int, School]
    reporter: dict[int, int]  # child id → the first of these guardians by position


# Built once: at the morning peak building a statement's expressions and its cache key
# anew each call was a tenth of the caller's CPU (issue #17).
_HOUSEHOLD = (
    select(Guardian, Child, School)
    .join(GuardianPhone, GuardianPhone.guardian_id == Guardian.id)
    .outerjoin(Guardianship, Guardianship.guardian_id == Guardian.id)
    .outerjoin(Child, and_(Child.id == Guardianship.child_id, Child.active.is_(True)))
    .outerjoin(School, School.id == Child.school_id)
    .where(GuardianPhone.e164 == bindparam("e164"))
    .order_by(Guardianship.position, Guardian.id)
)


async def household_by_phone(session: AsyncSession, e164: str) -> Household:
    """What guardians_by_phone and children_of (with schools) give, in one round trip: at
    the morning peak every statement is a turn through a busy event loop."""
    rows = await session.execute(_HOUSEHOLD, {"e164": e164})
    guardians: dict[int, Guardian] = {}
    children: dict[int, Child] = {}
    schools: dict[int, School] = {}
    reporter: dict[int, int] = {}
    for guardian, child, school in rows:
        guardians[guardian.id] = guardian
        if child is not None and school is not None:
            children[child.id] = child
            schools[school.id] = school
            reporter.setdefault(child.id, guardian.id)
    return Household(sorted(guardians.values(), key=lambda g: g.id),
                     sorted(children.values(), key=lambda c: c.id), schools, reporter)
