"""Proxy registration requests: stored from the public form, queued per class, then
registered (through :mod:`renraku.services.proxy`) or rejected with a reason."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import Classroom, ProxyRequest, School
from models.enums import ProxyRequestStatus
from renraku.rules.proxy_request import CleanRequest

MAX_REASON = 500


class AlreadyRequested(Exception):
    """The same child, class and number wait in the queue already (a second click)."""


class NotPending(Exception):
    """The request was registered or rejected already."""


async def open_classes(session: AsyncSession) -> list[tuple[School, list[Classroom]]]:
    """Each school's classes of its latest school year: what the public form offers."""
    latest = (select(Classroom.school_id, func.max(Classroom.academic_year).label("year"))
              .group_by(Classroom.school_id).subquery())
    rows = await session.execute(
        select(School, Classroom)
        .join(Classroom, Classroom.school_id == School.id)
        .join(latest, (latest.c.school_id == Classroom.school_id)
              & (latest.c.year == Classroom.academic_year))
        .order_by(School.id, Classroom.grade, Classroom.name))
    out: dict[int, tuple[School, list[Classroom]]] = {}
    for school, room in rows:
        out.setdefault(school.id, (school, []))[1].append(room)
    return list(out.values())


async def _waiting_already(session: AsyncSession, req: CleanRequest) -> bool:
    return bool(await session.scalar(select(func.count()).select_from(ProxyRequest).where(
        ProxyRequest.class_id == req.class_id, ProxyRequest.child_name == req.child_name,
        ProxyRequest.phone_e164 == req.phone_e164,
        ProxyRequest.status == ProxyRequestStatus.PENDING)))


async def submit(session: AsyncSession, req: CleanRequest, now: datetime) -> ProxyRequest:
    """Store a request; AlreadyRequested when the same one waits (sent twice)."""
    if await _waiting_already(session, req):
        raise AlreadyRequested()
    row = ProxyRequest(
        class_id=req.class_id, child_name=req.child_name, guardian_name=req.guardian_name,
        relation=req.relation, phone_e164=req.phone_e164, phone_kind=req.phone_kind,
        email=req.email, language=req.language, note=req.note,
        status=ProxyRequestStatus.PENDING, reject_reason="", created_at=now)
    try:
        # The same request at the same instant passed the check above too: the unique
        # index on pending requests refuses the second, and only that statement is undone.
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        if await _waiting_already(session, req):
            raise AlreadyRequested() from None
        raise
    return row


async def queue(session: AsyncSession, class_id: int) -> list[ProxyRequest]:
    """The class's pending requests, oldest first."""
    return list(await session.scalars(select(ProxyRequest).where(
        ProxyRequest.class_id == class_id, ProxyRequest.status == ProxyRequestStatus.PENDING)
        .order_by(ProxyRequest.id)))


async def waiting(session: AsyncSession, class_ids: list[int]) -> dict[int, int]:
    """Pending requests per class (for the staff home page)."""
    rows = await session.execute(
        select(ProxyRequest.class_id, func.count()).where(
            ProxyRequest.class_id.in_(class_ids),
            ProxyRequest.status == ProxyRequestStatus.PENDING)
        .group_by(ProxyRequest.class_id))
    return {cid: int(n) for cid, n in rows}


async def pending(session: AsyncSession, class_id: int, request_id: int) -> ProxyRequest:
    """A pending request of this class (the caller checked the class is in scope)."""
    row = await session.get(ProxyRequest, request_id)
    if row is None or row.class_id != class_id:
        raise LookupError(request_id)
    if row.status != ProxyRequestStatus.PENDING:
        raise NotPending(request_id)
    return row


def registered(row: ProxyRequest, guardian_id: int, staff_id: int, now: datetime) -> None:
    row.status = ProxyRequestStatus.REGISTERED
    row.guardian_id, row.handled_by, row.handled_at = guardian_id, staff_id, now


def rejected(row: ProxyRequest, reason: str, staff_id: int, now: datetime) -> None:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise ValueError("a reason of 1-500 characters")
    row.status = ProxyRequestStatus.REJECTED
    row.reject_reason, row.handled_by, row.handled_at = reason, staff_id, now
