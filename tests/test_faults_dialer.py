"""The dialer's AMI connection cut mid-campaign, through real Asterisk.

The dialer reaches AMI through a TCP relay the test can cut (every connection dropped and
new ones refused for a few seconds), as a network fault or a restarting AMI would. The
dialer must reconnect and finish; events lost meanwhile (OriginateResponse, Hangup) are
made up for by reconciliation: no household is called twice and no call is counted
answered that the carrier did not answer.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from sqlalchemy import select

from ivr.ami import AMIClient
from ivr.dialer import Dialer, DialerConfig, PanoramiskPort
from models import CallAttempt, SurveyResponse
from models.enums import AttemptStatus as S
from renraku.app import App
from renraku.settings import ensure_secret
from tests.asterisk_harness import PhoneLines, free_port
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

pytestmark = pytest.mark.asterisk
ANSWERED = {S.ANSWERED, S.COMPLETED, S.HUNG_UP, S.LEFT_MESSAGE}


class Relay:
    """127.0.0.1:<port> → the AMI port, with ``cut()`` to drop everything for a while."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.StreamWriter] = set()
        self.cuts = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.pipes |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()
        self.pipes.discard(writer)

    async def cut(self, seconds: float) -> None:
        self.cuts += 1
        await self.stop()
        await asyncio.sleep(seconds)
        await self.start()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self.pipes):
            writer.transport.abort()  # a reset, not a polite close
        self.pipes.clear()


async def dialer_on_own_ami(app: App, port: int) -> tuple[AMIClient, Dialer]:
    """A dialer with an AMI connection of its own (to ``port``), which the test can break."""
    manager = await AMIClient("127.0.0.1", port, app.settings.ami_user,
                              ensure_secret(app.settings, "ami_secret")).start()
    return manager, Dialer(app, PanoramiskPort(manager),
                           DialerConfig(ring_timeout_s=4, answer_grace_s=1.0))


async def test_ami_cut_mid_campaign_dialer_reconnects_and_reconciles(
        lines: PhoneLines, sqlite_db: Database) -> None:
    app = _app(lines, sqlite_db, channels=3)
    _route(lines, app)
    plans = dict.fromkeys(_numbers("3300", 8), quick(1))
    cid = await _campaign(app, plans, lines)
    relay = Relay(app.settings.ami_port)
    await relay.start()
    manager, dialer = await dialer_on_own_ami(app, relay.port)
    stop = asyncio.Event()
    task = asyncio.ensure_future(dialer.run(stop))
    try:
        # Cut while some families have answered and others are on the line.
        await _mid_campaign(app, cid, done=1, flying=2, poll=0.1)
        await relay.cut(3.0)
        await _wait_done(app, cid, 150)
    finally:
        stop.set()
        await task
        manager.close()
        await relay.stop()
    assert manager.reconnects >= 1
    hs = await _households(app, cid)
    assert {n: h.status for n, h in hs.items()} == dict.fromkeys(plans, S.COMPLETED)
    for number in plans:  # each family was called once, however the cut fell
        assert await lines.household_attempts(number) == 1, number
    async with app.sessions() as s:
        attempts = list(await s.scalars(select(CallAttempt).where(
            CallAttempt.household_id.in_([h.id for h in hs.values()]))))
        answers = list(await s.scalars(select(SurveyResponse)))
    answered = [a for a in attempts if a.status in ANSWERED or a.answered_at is not None]
    assert len(answered) == len(plans)  # one answered attempt per family the carrier saw
    assert len(answers) == len(plans)  # no answer lost
    print(f"\n[faults] AMI cut: {len(plans)} households, {len(answered)} answered once, "
          f"{len(answers)} survey answers, {manager.reconnects} reconnect(s)")
