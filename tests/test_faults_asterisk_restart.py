"""The IVR's Asterisk restarted in the middle of a campaign (a real process restart).

This module runs its own IVR and carrier pair (the session's is shared by other tests).
Asterisk is killed and started again (a crash and systemd's restart): the calls in
progress are cut at once; the dialer's AMI connection drops and comes back
by itself; the attempts in flight are reconciled: none is counted answered that the
carrier did not answer, and a call cut before the family heard the message is placed
again. The campaign finishes with every household called and every answer counted once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr import asterisk_runtime as rt
from ivr import broadcast_flow
from models import CallAttempt, SurveyResponse
from models.enums import AttemptStatus as S
from tests.asterisk_harness import PhoneLines, _guard
from tests.db_fixtures import Database
from tests.test_broadcast_asterisk import (
    _app,
    _campaign,
    _households,
    _mid_campaign,
    _numbers,
    _route,
    _wait_done,
    quick,
)
from tests.test_faults_dialer import dialer_on_own_ami

pytestmark = pytest.mark.asterisk


@pytest.fixture(scope="module")
async def own_lines(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PhoneLines]:
    """An IVR + carrier pair of this module's own: restarting it disturbs no other test."""
    _guard()
    lines = PhoneLines(Path(tmp_path_factory.mktemp("restart-lines")))
    try:
        await lines.start()
        yield lines
    finally:
        await lines.stop()


def _restart(lines: PhoneLines) -> float:
    """Asterisk killed and started again, as systemd restarts it after a crash (``core stop
    now`` lets the calls run on for seconds: they would end normally, nothing cut). Started
    from the main thread (the event loop's), so the kernel still kills it with this process.
    Seconds it was away."""
    started = time.monotonic()
    pid = lines.ivr.pid()
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    lines.ivr.stop()  # reaps it, removes its pid file and control socket
    lines.ivr.start(lambda: rt.port_open("127.0.0.1", lines.settings.ami_port),
                    tie_to_parent=True)
    return time.monotonic() - started


async def test_asterisk_restarted_mid_campaign_dialer_reconnects_and_reconciles(
        own_lines: PhoneLines, sqlite_db: Database) -> None:
    lines = own_lines
    app = _app(lines, sqlite_db, channels=3)
    _route(lines, app)
    plans = dict.fromkeys(_numbers("3500", 8), quick(1))
    cid = await _campaign(app, plans, lines)
    manager, dialer = await dialer_on_own_ami(app, app.settings.ami_port)
    stop = asyncio.Event()
    task = asyncio.ensure_future(dialer.run(stop))
    try:
        # Restart while a family is hearing the message (answered, not heard to the end).
        await _mid_campaign(app, cid, done=1, flying=2, poll=0.1)
        async with asyncio.timeout(60):
            while True:
                async with app.sessions() as s:
                    if await s.scalar(select(CallAttempt.id).where(
                            CallAttempt.answered_at.is_not(None),
                            CallAttempt.ended_at.is_(None),
                            CallAttempt.message_completed.is_(False)).limit(1)):
                        break
                await asyncio.sleep(0.05)
        flying = {n for n, h in (await _households(app, cid)).items()
                  if h.status in (S.DIALING, S.ANSWERED)}
        away = _restart(lines)
        await _wait_done(app, cid, 150)
        await broadcast_flow.kept_writes()
    finally:
        stop.set()
        await task
        manager.close()
    assert manager.reconnects >= 1
    hs = await _households(app, cid)
    calls = {n: await lines.household_attempts(n) for n in plans}
    async with app.sessions() as s:
        attempts = list(await s.scalars(select(CallAttempt).where(
            CallAttempt.household_id.in_([h.id for h in hs.values()]))))
        answers = list(await s.scalars(select(SurveyResponse)))
    by_household: dict[int, list[CallAttempt]] = {}
    for a in attempts:
        by_household.setdefault(a.household_id, []).append(a)
    cut = [a for a in attempts if a.reason == "cut: Asterisk restarted"]
    again = [a for a in cut if a.status == S.FAILED]
    print(f"\n[faults] Asterisk restarted ({away:.1f} s away): {len(plans)} households, "
          f"{len(flying)} calls in progress cut ({len(again)} called again), "
          f"{sum(calls.values())} calls placed in all, {len(answers)} survey answers")
    assert {n: h.status for n, h in hs.items()} == dict.fromkeys(plans, S.COMPLETED)
    for number, h in hs.items():
        mine = sorted(by_household[h.id], key=lambda a: a.id)
        # Every attempt row is a call the carrier saw; one completed attempt per family.
        assert len(mine) == calls[number], (number, [(a.status, a.reason) for a in mine])
        assert [a.status for a in mine].count(S.COMPLETED) == 1, number
        if number not in flying:
            assert calls[number] == 1, number  # no household called twice for nothing
        else:
            # Cut before the message: failed (not "hung up") and called again; cut after
            # it: the family heard it, completed, not called again.
            assert all(a.status == S.FAILED and not a.message_completed for a in mine[:-1])
    # Only the households cut by the restart were called twice, each once more.
    assert sum(calls.values()) == len(plans) + len(again)
    assert len(cut) <= len(flying)
    assert again  # the family cut off in the message was called again
    # A survey answer for each family whose completed call was not cut before the question.
    assert len({a.child_id for a in answers}) == len(answers)
    assert len(answers) >= len(plans) - len(flying)
