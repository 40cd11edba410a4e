"""One-time codes for email and phone verification, password reset, and the staff's
set-password link (``renraku staff create``, an admin's new account).

Codes are stored as an HMAC with the server secret (never in clear), expire, allow a few
attempts each, and a new code for the same purpose retires the older ones. A code belongs
to a guardian or, for ``set_password``, to a staff member.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import VerificationCode

MAX_ATTEMPTS = 5
TTL = {"email": timedelta(hours=24), "phone": timedelta(minutes=15),
       "reset": timedelta(hours=1), "set_password": timedelta(hours=24),
       "reset_sms": timedelta(minutes=15)}
LINKS = ("reset", "set_password")  # purposes sent as a link rather than typed


def _digest(secret: str, code: str) -> str:
    return hmac.new(secret.encode(), code.strip().encode(), hashlib.sha256).hexdigest()


def new_code(purpose: str) -> str:
    """Six digits for codes people type (the SMS reset too); a long token for a link."""
    if purpose in LINKS:
        return secrets.token_urlsafe(24)
    return f"{secrets.randbelow(1_000_000):06d}"


async def issue(session: AsyncSession, guardian_id: int | None, purpose: str, target: str,
                now: datetime, secret: str,
                staff_id: int | None = None) -> tuple[VerificationCode, str]:
    """A new code for the guardian (or, with ``staff_id``, the staff member)."""
    owner = (VerificationCode.staff_id == staff_id if staff_id is not None
             else VerificationCode.guardian_id == guardian_id)
    await session.execute(
        update(VerificationCode)
        .where(owner, VerificationCode.purpose == purpose, VerificationCode.used_at.is_(None))
        .values(used_at=now)
    )
    code = new_code(purpose)
    row = VerificationCode(guardian_id=None if staff_id is not None else guardian_id,
                           staff_id=staff_id, purpose=purpose, target=target,
                           code_hash=_digest(secret, code), expires_at=now + TTL[purpose],
                           created_at=now)
    session.add(row)
    await session.flush()
    return row, code


async def pending(session: AsyncSession, guardian_id: int, purpose: str,
                  now: datetime) -> VerificationCode | None:
    return await session.scalar(
        select(VerificationCode)
        .where(VerificationCode.guardian_id == guardian_id, VerificationCode.purpose == purpose,
               VerificationCode.used_at.is_(None), VerificationCode.expires_at > now)
        .order_by(VerificationCode.id.desc())
    )


def _try(row: VerificationCode | None, code: str, now: datetime, secret: str) -> bool:
    if row is None or row.used_at is not None or row.expires_at <= now:
        return False
    if row.attempts >= MAX_ATTEMPTS:
        return False
    row.attempts += 1
    if not hmac.compare_digest(row.code_hash, _digest(secret, code)):
        return False
    row.used_at = now
    return True


async def check(session: AsyncSession, guardian_id: int, purpose: str, code: str,
                now: datetime, secret: str) -> VerificationCode | None:
    """The code's row (now used) when ``code`` is right, else None (attempt counted)."""
    row = await pending(session, guardian_id, purpose, now)
    ok = _try(row, code, now, secret)
    await session.flush()
    return row if ok else None


def link(base_url: str, row: VerificationCode, code: str) -> str:
    """The page that takes a reset or set-password code (webportal.auth)."""
    return f"{base_url}/password/reset/{row.id}/{code}"


def link_usable(row: VerificationCode | None, now: datetime) -> bool:
    return (row is not None and row.purpose in LINKS and row.used_at is None
            and row.expires_at > now and row.attempts < MAX_ATTEMPTS)


async def check_by_id(session: AsyncSession, code_id: int, purpose: str | tuple[str, ...],
                      code: str, now: datetime, secret: str) -> VerificationCode | None:
    """For links that carry the code's id (email link, password reset, set password)."""
    row = await session.get(VerificationCode, code_id)
    purposes = (purpose,) if isinstance(purpose, str) else purpose
    if row is None or row.purpose not in purposes:
        return None
    ok = _try(row, code, now, secret)
    await session.flush()
    return row if ok else None
