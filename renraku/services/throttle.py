"""Failure limits shared by every web worker and node (the counts live in the database).

Only failures are counted for sign-in and codes (OWASP ASVS 2.2.1): families share
addresses (school Wi-Fi, carrier NAT), so a right password must never be refused because
neighbours signed in. Sending codes is limited per attempt, since each one costs an SMS
or an email.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import ThrottleEvent

KEEP = timedelta(days=1)  # longer than any window; older rows are dropped as keys are used


@dataclass(frozen=True)
class Limit:
    events: int
    window: timedelta


# Per account: 10 failures in 15 minutes is at most 40 an hour (ASVS 2.2.1: ≤ 100).
ACCOUNT_FAILURES = Limit(10, timedelta(minutes=15))
# Per address: a parents' evening on one Wi-Fi makes typos; a guesser makes hundreds.
ADDRESS_FAILURES = Limit(50, timedelta(minutes=15))


async def record(session: AsyncSession, kind: str, key: str, now: datetime) -> None:
    await session.execute(delete(ThrottleEvent).where(
        ThrottleEvent.kind == kind, ThrottleEvent.key == key, ThrottleEvent.at < now - KEEP))
    session.add(ThrottleEvent(kind=kind, key=key[:255], at=now))
    await session.flush()


async def clear(session: AsyncSession, kind: str, key: str) -> None:
    await session.execute(delete(ThrottleEvent).where(
        ThrottleEvent.kind == kind, ThrottleEvent.key == key[:255]))


async def wait(session: AsyncSession, kind: str, key: str, limit: Limit,
               now: datetime) -> timedelta | None:
    """How long ``key`` stays locked (None when under the limit).

    The lock lasts until the ``limit.events``-th newest event leaves the window.
    """
    pivot = await session.scalar(
        select(ThrottleEvent.at)
        .where(ThrottleEvent.kind == kind, ThrottleEvent.key == key[:255],
               ThrottleEvent.at > now - limit.window)
        .order_by(ThrottleEvent.at.desc()).offset(limit.events - 1).limit(1))
    return None if pivot is None else pivot + limit.window - now


def minutes(delta: timedelta) -> int:
    """Whole minutes to tell a person (at least one)."""
    return max(1, math.ceil(delta.total_seconds() / 60))


# Attempts at costly things, counted whether they succeed or not
CODES_SENT = Limit(3, timedelta(minutes=15))  # SMS / email codes per account
REGISTRATIONS = Limit(20, timedelta(minutes=15))  # registration forms per address
RESET_MAILS = Limit(5, timedelta(hours=1))  # reset emails per address asked for
