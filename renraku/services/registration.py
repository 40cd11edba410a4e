"""Registration QR codes: one secret token per child and class, revocable and reissued.

The QR code encodes ``{base_url}/r/<token>``; the guardian portal serves that page. A token
stays valid (for up to three guardians) until a teacher revokes it, e.g. when a printed
sheet is lost; reissuing revokes the old token and makes a new one in one step.
"""

from __future__ import annotations

import io
import secrets
from datetime import datetime

import qrcode
import qrcode.image.svg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import RegistrationToken
from renraku.settings import Settings


def registration_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url}/r/{token}"


async def active_token(
    session: AsyncSession, child_id: int, class_id: int
) -> RegistrationToken | None:
    return await session.scalar(
        select(RegistrationToken)
        .where(
            RegistrationToken.child_id == child_id,
            RegistrationToken.class_id == class_id,
            RegistrationToken.revoked_at.is_(None),
        )
        .order_by(RegistrationToken.id.desc())
    )


async def issue(
    session: AsyncSession, child_id: int, class_id: int, now: datetime
) -> RegistrationToken:
    """The child's current token for this class, made on first use."""
    existing = await active_token(session, child_id, class_id)
    if existing is not None:
        return existing
    token = RegistrationToken(
        token=secrets.token_urlsafe(16), child_id=child_id, class_id=class_id, created_at=now
    )
    session.add(token)
    await session.flush()
    return token


async def revoke(session: AsyncSession, child_id: int, class_id: int, now: datetime) -> int:
    """Revoke every live token of the child for this class; returns how many."""
    rows = list(
        await session.scalars(
            select(RegistrationToken).where(
                RegistrationToken.child_id == child_id,
                RegistrationToken.class_id == class_id,
                RegistrationToken.revoked_at.is_(None),
            )
        )
    )
    for row in rows:
        row.revoked_at = now
    await session.flush()
    return len(rows)


async def reissue(
    session: AsyncSession, child_id: int, class_id: int, now: datetime
) -> RegistrationToken:
    """A lost sheet: the old code stops working and a new one is made."""
    await revoke(session, child_id, class_id, now)
    return await issue(session, child_id, class_id, now)


async def lookup(session: AsyncSession, token: str) -> RegistrationToken | None:
    """The live token behind a scanned code, or None (unknown or revoked)."""
    return await session.scalar(
        select(RegistrationToken).where(
            RegistrationToken.token == token, RegistrationToken.revoked_at.is_(None)
        )
    )


def qr_svg(data: str) -> str:
    """The QR code as inline SVG markup (crisp when printed, no image files to serve)."""
    img = qrcode.make(
        data,
        image_factory=qrcode.image.svg.SvgPathImage,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=10,
        border=2,
    )
    buf = io.BytesIO()
    img.save(buf)
    text = buf.getvalue().decode("utf-8")
    # Drop the XML declaration so the markup can sit inside an HTML page.
    return text[text.index("<svg"):]
