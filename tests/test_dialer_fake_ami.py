"""The dialer loop against a scripted in-process AMI: caps, pacing, retries, restart.

The real-Asterisk acceptance tests are in test_broadcast_asterisk.py; this one pins the
loop's logic in a second, and runs on SQLite only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from ivr.dialer import Dialer, DialerConfig
from models import CallAttempt, CampaignHousehold
from models.db import transaction
from models.enums import AttemptStatus as S
from renraku.app import App
from renraku.clock import SystemClock
from renraku.services import broadcast as bc
from renraku.settings import Settings
from tests.db_fixtures import Database
from tests.factories import make_child, make_guardian, make_school, morning_zone


class FakeAmi:
    """Plays each number's script; the 'call flow' writes answers like the FastAGI one would."""

    def __init__(self, app: App, scripts: dict[str, list[str]]) -> None:
        self.app = app
        self.scripts = scripts  # digits-only number → behaviour per attempt
        self.connected = True
        self.channels: set[str] = set()
        self.max_seen = 0
        self.calls: dict[str, int] = {}
        self.hangup_cb: Callable[[Any], Any] | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def on_event(self, pattern: str, callback: Callable[[Any], Any]) -> None:
        self.hangup_cb = callback

    def _hangup(self, uid: str, cause: int) -> None:
        self.channels.discard(uid)
        if self.hangup_cb is not None:
            self.hangup_cb({"Event": "Hangup", "Uniqueid": uid, "Cause": str(cause)})

    async def action(self, fields: dict[str, Any], wait_s: float) -> list[Any]:
        if fields["Action"] == "CoreShowChannels":
            return [{"Event": "CoreShowChannel", "Uniqueid": u} for u in self.channels]
        if fields["Action"] == "CoreStatus":  # one Asterisk, never restarted
            return [{"Response": "Success", "CoreStartupDate": "2026-12-04",
                     "CoreStartupTime": "07:00:00"}]
        # The call lives in "Asterisk", independent of whoever asked for it
        result: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(self._call(fields, result))
        self.tasks.add(task)
        return await asyncio.shield(result)

    async def _call(self, fields: dict[str, Any], result: asyncio.Future[list[Any]]) -> None:
        uid = fields["ChannelId"]
        number = fields["Channel"].split("/")[1].split("@")[0]
        n = self.calls[number] = self.calls.get(number, 0) + 1
        script = self.scripts[number]
        what = script[min(n, len(script)) - 1]
        self.channels.add(uid)
        self.max_seen = max(self.max_seen, len(self.channels))
        ok = [{"Response": "Success", "Message": "Originate successfully queued"}]
        await asyncio.sleep(0.05)
        if what in ("busy", "noanswer"):
            self._hangup(uid, 17 if what == "busy" else 19)
            result.set_result([*ok, {"Event": "OriginateResponse", "Response": "Failure",
                                     "Reason": "5" if what == "busy" else "3"}])
            return
        attempt_id = int(next(v for v in fields["Variable"] if "ATTEMPT" in v).split("=")[1])
        result.set_result(
            [*ok, {"Event": "OriginateResponse", "Response": "Success", "Reason": "4"}]
        )
        await self._flow(uid, attempt_id, what)

    async def _flow(self, uid: str, attempt_id: int, what: str) -> None:
        now = self.app.clock.now
        async with transaction(self.app.sessions) as s:
            await bc.mark_answered(s, attempt_id, now())
        await asyncio.sleep(0.2)
        if what.startswith("press"):
            async with transaction(self.app.sessions) as s:
                await bc.mark_message_completed(s, attempt_id)
                await bc.finish_attempt(s, self.app.settings, attempt_id, S.COMPLETED, now())
        await asyncio.sleep(0.05)
        self._hangup(uid, 16)


def _app(db: Database, **kw: Any) -> App:
    settings = Settings(**{
        "dialer_max_channels": 3, "dialer_originates_per_second": 20,
        "dialer_retry_delay_s": 0, "dialer_max_attempts": 3, **kw,
    })
    return App(settings, SystemClock(), db.engine, db.sessions)


SCRIPTS = {
    "819010000001": ["press"],
    "819010000002": ["busy", "press"],
    "819010000003": ["noanswer"],
    "819010000004": ["hangup"],
    "819010000005": ["press"],
    "819010000006": ["busy", "busy", "press"],  # answered at the third and last attempt
    "819010000007": ["press"],
}


async def _campaign(app: App, scripts: dict[str, list[str]] = SCRIPTS) -> int:
    async with transaction(app.sessions) as s:
        school = await make_school(s, timezone=morning_zone(app.clock.now()))
        for n in scripts:
            child = await make_child(s, school, f"子 {n[-2:]}")
            await make_guardian(s, f"保護者 {n[-2:]}", "+" + n, children=(child,))
        camp = await bc.create_campaign(
            s, app.settings, school_id=school.id, title="t", target={"school": True},
            now=app.clock.now(), message={"ja": "お知らせ"},
        )
        await bc.launch(s, app.settings, camp, app.clock.now())
        return camp.id


async def _run_until_done(dialer: Dialer, app: App, cid: int, limit: float = 20) -> None:
    stop = asyncio.Event()
    task = asyncio.ensure_future(dialer.run(stop))
    try:
        async with asyncio.timeout(limit):
            while True:
                async with app.sessions() as s:
                    if (await bc.progress(s, cid)).status == "completed":
                        return
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task


async def _outcomes(app: App) -> dict[str, tuple[str, int]]:
    async with app.sessions() as s:
        rows = await s.scalars(select(CampaignHousehold))
        return {h.phone_e164.lstrip("+"): (h.status, h.attempts) for h in rows}


EXPECTED = {
    "819010000001": (S.COMPLETED, 1),
    "819010000002": (S.COMPLETED, 2),
    "819010000003": (S.NO_ANSWER, 3),
    "819010000004": (S.HUNG_UP, 1),
    "819010000005": (S.COMPLETED, 1),
    "819010000006": (S.COMPLETED, 3),
    "819010000007": (S.COMPLETED, 1),
}


async def test_dialer_outcomes_and_cap(sqlite_db: Database) -> None:
    app = _app(sqlite_db)
    cid = await _campaign(app)
    ami = FakeAmi(app, SCRIPTS)
    dialer = Dialer(app, ami, DialerConfig(answer_grace_s=0.1))
    await _run_until_done(dialer, app, cid)
    assert await _outcomes(app) == EXPECTED
    assert ami.max_seen <= 3
    assert sum(ami.calls.values()) == sum(a for _, a in EXPECTED.values())


async def test_restart_mid_campaign_adopts_and_never_recalls(sqlite_db: Database) -> None:
    app = _app(sqlite_db)
    cid = await _campaign(app)
    ami = FakeAmi(app, SCRIPTS)
    first = Dialer(app, ami, DialerConfig(answer_grace_s=0.1, reconcile_after_s=0.5))
    stop = asyncio.Event()
    task = asyncio.ensure_future(first.run(stop))
    for _ in range(500):
        if sum(ami.calls.values()) >= 3:
            break
        await asyncio.sleep(0.01)
    # "Kill": the loop stops and its in-memory state vanishes; calls in Asterisk go on.
    # (In-process, a stop between ticks stands in for SIGKILL, which the real-Asterisk test
    # does to a `renraku dialer` process: cancelling mid-transaction would leave SQLite's
    # write lock to the garbage collector, which a dead process never does.)
    stop.set()
    await task
    ami.hangup_cb = None
    second = Dialer(app, ami, DialerConfig(answer_grace_s=0.1, reconcile_after_s=0.5))
    await _run_until_done(second, app, cid)
    outcomes = await _outcomes(app)
    for number, (status, _attempts) in EXPECTED.items():
        assert outcomes[number][0] == status, number
    # Nobody who completed was called again
    async with app.sessions() as s:
        for h in await s.scalars(select(CampaignHousehold)):
            calls = list(await s.scalars(
                select(CallAttempt).where(CallAttempt.household_id == h.id)
                .order_by(CallAttempt.id)
            ))
            done = [c for c in calls if c.status == S.COMPLETED]
            assert len(done) <= 1 and (not done or done[0].id == calls[-1].id)
    assert ami.max_seen <= 3


def test_originate_fields() -> None:
    from ivr.dialer import Live

    settings = Settings()
    app = App(settings, SystemClock(), None, None)  # type: ignore[arg-type]
    d = Dialer(app, FakeAmi(app, {}))
    h = CampaignHousehold(id=5, phone_e164="+819012345678", language="en")
    f = d.originate_fields(Live(7, "rk-x", 3), h)
    assert f["ChannelId"] == f["ActionID"] == "rk-x"
    assert f["Channel"] == "PJSIP/819012345678@carrier"
    assert "CHANNEL(language)=en" in f["Variable"] and "RENRAKU_ATTEMPT=7" in f["Variable"]


async def test_a_city_dialer_waits_at_random_before_taking_a_freed_channel(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On one box a Hangup's channel is taken at once; in a city (the app node has a name)
    the dialer first waits up to a tick at random, so the other nodes' dialers, which see
    the channel at their tick, get it as often."""
    waited: list[float] = []
    monkeypatch.setattr("ivr.dialer.random.uniform", lambda a, b: waited.append(b) or b / 5)
    for node, expected in (("", []), ("app1", [0.25])):
        app = App(Settings(node_name=node), SystemClock(), None, None)  # type: ignore[arg-type]
        dialer = Dialer(app, FakeAmi(app, {}), DialerConfig(tick_s=0.25))
        dialer._slot_freed.set()  # a Hangup freed a channel
        waited.clear()
        started = time.monotonic()
        await dialer._pause(asyncio.Event())
        assert waited == expected, node
        assert (time.monotonic() - started >= 0.05) == bool(node)


async def test_ami_down_campaign_waits_then_goes_on(sqlite_db: Database) -> None:
    app = _app(sqlite_db)
    cid = await _campaign(app)
    ami = FakeAmi(app, SCRIPTS)
    ami.connected = False  # Asterisk restarting: nothing may be dialled, nothing fails
    dialer = Dialer(app, ami, DialerConfig(answer_grace_s=0.1, reconcile_after_s=0.5))
    stop = asyncio.Event()
    task = asyncio.ensure_future(dialer.run(stop))
    await asyncio.sleep(1.0)
    assert sum(ami.calls.values()) == 0
    async with app.sessions() as s:
        p = await bc.progress(s, cid)
    assert p.status == "running" and p.counts["queued"] == len(SCRIPTS)
    ami.connected = True  # back: the same loop reconciles and carries on
    try:
        async with asyncio.timeout(20):
            while True:
                async with app.sessions() as s:
                    if (await bc.progress(s, cid)).status == "completed":
                        break
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task
    assert await _outcomes(app) == EXPECTED


async def test_campaign_is_prepared_once_before_its_first_call(sqlite_db: Database) -> None:
    app = _app(sqlite_db)
    cid = await _campaign(app)
    ami = FakeAmi(app, SCRIPTS)
    prepared: list[tuple[int, int]] = []  # (campaign, calls already made)

    async def prepare(campaign: Any) -> None:
        prepared.append((campaign.id, sum(ami.calls.values())))
        raise OSError("TTS engine missing")  # a failed render must not stop the calls

    dialer = Dialer(app, ami, DialerConfig(answer_grace_s=0.1), prepare=prepare)
    await _run_until_done(dialer, app, cid)
    assert prepared == [(cid, 0)]  # once, over many ticks, and before anyone was called
    assert await _outcomes(app) == EXPECTED


async def test_hangup_frees_the_channel_for_the_next_household_at_once(
    sqlite_db: Database,
) -> None:
    # One channel, a tick and a closing grace far longer than the test may take: the
    # campaign can only finish if each Hangup frees the slot and wakes the loop itself.
    app = _app(sqlite_db, dialer_max_channels=1)
    scripts = {f"81902000000{i}": ["press"] for i in range(4)}
    cid = await _campaign(app, scripts)
    ami = FakeAmi(app, scripts)
    dialer = Dialer(app, ami, DialerConfig(tick_s=60, answer_grace_s=60))
    await _run_until_done(dialer, app, cid, limit=15)
    assert await _outcomes(app) == {n: (S.COMPLETED, 1) for n in scripts}
    assert ami.max_seen == 1


def test_morning_zone_is_nine_oclock_at_every_hour() -> None:
    from zoneinfo import ZoneInfo

    for hour in range(24):
        now = datetime(2026, 11, 29, hour, 59, tzinfo=UTC)
        assert now.astimezone(ZoneInfo(morning_zone(now))).hour == 9
