"""The school morning's timed jobs, per school at its configured local time, once a day:
the follow-up calls of unexplained absences, and the principal's digest email.

Runs beside the dialer (``renraku dialer`` / ``renraku run``): one loop, a tick every
``TICK_S``. The day each job last ran is stored per school, so a restart neither repeats
nor skips it; follow-ups themselves are unique per child and day anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import School, StaffroomSettings
from models.db import transaction
from models.staffroom import (
    DEFAULT_CLOSURE_THRESHOLD_PCT,
    DEFAULT_DIGEST_AT,
    DEFAULT_FOLLOWUP_AT,
)
from renraku.app import App
from renraku.services import followup
from renraku.services.schools import school_calendar, school_now

log = logging.getLogger(__name__)
TICK_S = 15.0
Digest = Callable[[App, School], Awaitable[None]]


async def school_settings(session: AsyncSession, school_id: int, *,
                          for_update: bool = False) -> StaffroomSettings:
    """The school's staff-room settings. Without a row: the defaults, written only when
    ``for_update`` (so a page that only reads them never takes the write lock)."""
    row = await session.get(StaffroomSettings, school_id)
    if row is None:
        row = StaffroomSettings(
            school_id=school_id, followup_at=DEFAULT_FOLLOWUP_AT, digest_at=DEFAULT_DIGEST_AT,
            closure_threshold_pct=DEFAULT_CLOSURE_THRESHOLD_PCT)
        if for_update:
            session.add(row)
            await session.flush()
    return row


async def tick(app: App, digest: Digest | None = None) -> None:
    """Start what is due now in every school (each job in its own short transaction)."""
    async with transaction(app.sessions) as s:
        schools = list(await s.scalars(select(School).order_by(School.id)))
    for school in schools:
        local = school_now(app.clock, school)
        async with transaction(app.sessions) as s:
            await followup.settle(s, school.id, local.date(), app.clock.now())
            cfg = await school_settings(s, school.id, for_update=True)
            school_day = (await school_calendar(s, school)).is_school_day(local.date())
            run_followup = (school_day and cfg.followup_at is not None
                            and cfg.followup_done_on != local.date()
                            and local.time() >= cfg.followup_at)
            run_digest = (school_day and digest is not None and cfg.digest_at is not None
                          and cfg.digest_done_on != local.date()
                          and local.time() >= cfg.digest_at)
            if run_followup:
                cfg.followup_done_on = local.date()
            if run_digest:
                cfg.digest_done_on = local.date()
        if run_followup:
            try:
                started = await followup.start(app, school, local.date())
                log.info("school %d: follow-up of %d absences", school.id,
                         len(started.calls) + len(started.emails) + len(started.no_contact))
            except followup.OutsideCallingWindow:
                log.info("school %d: follow-up time is outside the calling window", school.id)
        if run_digest and digest is not None:
            await digest(app, school)


async def loop(app: App, stop: asyncio.Event, digest: Digest | None = None) -> None:
    while not stop.is_set():
        try:
            await tick(app, digest)
        except Exception:
            log.exception("morning jobs tick failed")  # a database hiccup: try again
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), TICK_S)
