"""PostgreSQL stopped for 20 s in the middle of a campaign, through real Asterisk.

The database is the test's own (tests/scratch_pg.py, started once for the module), never
the shared server. The outage starts while every channel holds a family listening to the
survey; they press their answer during it. The dialer places no call while the database
is down and resumes when it is back; the calls in progress go on, their writes (answered,
message heard, the survey answer, the outcome) kept and written once the database
answers. At the end every household was called once, every answer is there, and the
tally is exact.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from ivr import broadcast_flow
from ivr.dialer import Dialer, DialerConfig, PanoramiskPort
from models import CallAttempt, CampaignHousehold, SurveyResponse
from models.db import create_engine, session_factory
from models.enums import AttemptStatus as S
from tests.asterisk_harness import PhoneLines
from tests.db_fixtures import Database
from tests.scratch_pg import ScratchPostgres
from tests.test_broadcast_asterisk import _app, _campaign, _households, _numbers, _route, _wait_done
from tests.test_faults_calls import scratch_pg as scratch_pg  # the module's own server

pytestmark = pytest.mark.asterisk
OUTAGE_S = 20.0
CHANNELS = 3


@pytest.fixture
async def pg(scratch_pg: ScratchPostgres) -> AsyncIterator[Database]:
    engine = create_engine(scratch_pg.url, pool_size=5)
    db = Database("postgresql", scratch_pg.url, engine, session_factory(engine))
    await db.truncate()
    try:
        yield db
    finally:
        if scratch_pg.proc is None or scratch_pg.proc.poll() is not None:
            await asyncio.to_thread(scratch_pg.start)
        await engine.dispose()


async def _listening(db: Database, cid: int) -> int:
    """Families on the line who have heard the message (now in the survey)."""
    async with db.sessions() as s:
        return await s.scalar(
            select(func.count()).select_from(CallAttempt)
            .join(CampaignHousehold, CampaignHousehold.id == CallAttempt.household_id)
            .where(CampaignHousehold.campaign_id == cid, CallAttempt.message_completed,
                   CallAttempt.ended_at.is_(None))) or 0


async def test_database_stopped_mid_campaign_dialer_pauses_and_nothing_is_lost(
        lines: PhoneLines, pg: Database, scratch_pg: ScratchPostgres) -> None:
    app = _app(lines, pg, channels=CHANNELS)
    _route(lines, app)
    # Answer, then press 1 after 10 s: in the survey's question, during the outage.
    plans = dict.fromkeys(_numbers("3400", 8), "answer:10:1")
    cid = await _campaign(app, plans, lines)
    dialer = Dialer(app, PanoramiskPort(lines.ivr_ami),
                    DialerConfig(ring_timeout_s=4, answer_grace_s=1.0))
    stop = asyncio.Event()
    task = asyncio.ensure_future(dialer.run(stop))
    events_from = len(lines.ivr_ami_events)
    try:
        async with asyncio.timeout(60):
            while True:  # polled: the state is in the database
                if await _listening(pg, cid) >= CHANNELS:
                    break
                await asyncio.sleep(0.1)
        up = dialer.originated
        stopped_at = time.monotonic()
        await asyncio.to_thread(scratch_pg.stop)
        await asyncio.sleep(OUTAGE_S)
        placed_during = dialer.originated - up
        channels_up = await lines.ivr_channels()
        await asyncio.to_thread(scratch_pg.start)
        outage = time.monotonic() - stopped_at
        await _wait_done(app, cid, 150)
        await broadcast_flow.kept_writes()
    finally:
        stop.set()
        await task
    assert placed_during == 0  # paused: nothing claimed, nothing dialled
    assert channels_up == 0  # the calls in progress ended normally meanwhile
    hs = await _households(app, cid)
    assert {n: h.status for n, h in hs.items()} == dict.fromkeys(plans, S.COMPLETED)
    for number in plans:  # no household called twice
        assert await lines.household_attempts(number) == 1, number
    async with app.sessions() as s:
        attempts = list(await s.scalars(select(CallAttempt)))
        answers = list(await s.scalars(select(SurveyResponse)))
    assert len(attempts) == len(plans)
    assert all(a.status == S.COMPLETED and a.message_completed and a.answered_at is not None
               for a in attempts), [(a.id, a.status) for a in attempts]
    assert len(answers) == len(plans)  # the 3 given during the outage among them
    assert len({a.child_id for a in answers}) == len(plans)  # one per family, none twice
    originates = [e for e in lines.ivr_ami_events[events_from:]
                  if e.get("Event") == "Newchannel" and "carrier" in e.get("Channel", "")]
    assert len(originates) == len(plans)
    print(f"\n[faults] PostgreSQL stopped {outage:.0f} s mid-campaign: {len(plans)} households,"
          f" {CHANNELS} calls in progress through it, {placed_during} placed during it, "
          f"{len(answers)} survey answers ({CHANNELS} given during the outage), each called once")
