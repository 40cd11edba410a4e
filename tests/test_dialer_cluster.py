"""Two app nodes' dialers work one campaign (scripted AMI, one database): the trunk's
channel cap holds for both together, every household is called once, and when one dialer
dies the other finishes the campaign and closes what the dead one left in flight."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from ivr.dialer import Dialer, DialerConfig
from models import CallAttempt
from models.enums import AttemptStatus as S
from tests.db_fixtures import Database
from tests.test_dialer_fake_ami import FakeAmi, _app, _campaign, _outcomes

CAP = 3
PRESS = {f"8190200000{i:02d}": ["press"] for i in range(12)}


async def _sample_trunk(amis: list[FakeAmi], peaks: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peaks.append(sum(len(a.channels) for a in amis))
        await asyncio.sleep(0.005)


async def _until_completed(app, cid: int, limit: float = 30) -> None:  # type: ignore[no-untyped-def]
    from renraku.services import broadcast as bc

    async with asyncio.timeout(limit):
        while True:
            async with app.sessions() as s:
                if (await bc.progress(s, cid)).status == "completed":
                    return
            await asyncio.sleep(0.05)


async def test_two_dialers_share_the_trunk_cap_and_call_each_household_once(
        sqlite_db: Database) -> None:
    apps = [_app(sqlite_db, dialer_max_channels=CAP, node_name=n) for n in ("app1", "app2")]
    cid = await _campaign(apps[0], PRESS)
    amis = [FakeAmi(app, PRESS) for app in apps]
    dialers = [Dialer(app, ami, DialerConfig(answer_grace_s=0.1))
               for app, ami in zip(apps, amis, strict=True)]
    stop, peaks = asyncio.Event(), []
    tasks = [asyncio.ensure_future(d.run(stop)) for d in dialers]
    sampler = asyncio.ensure_future(_sample_trunk(amis, peaks, stop))
    try:
        await _until_completed(apps[0], cid)
    finally:
        stop.set()
        await asyncio.gather(*tasks, sampler)
    assert max(peaks) == CAP  # the trunk was used to the full, never beyond
    calls = [a.calls for a in amis]
    assert all(calls), "both nodes' dialers placed calls"
    merged = [n for c in calls for n, k in c.items() for _ in range(k)]
    assert sorted(merged) == sorted(PRESS)  # each household once, by one node or the other
    assert await _outcomes(apps[0]) == {n.lstrip("+"): (S.COMPLETED, 1) for n in PRESS}


async def test_a_dead_dialers_calls_are_closed_and_the_other_finishes(
        sqlite_db: Database) -> None:
    # Called first, by the doomed dialer; its flow leaves the row for the dialer to close.
    scripts = {"819020000099": ["hangup"], **PRESS}
    apps = [_app(sqlite_db, dialer_max_channels=CAP, node_name=n) for n in ("app1", "app2")]
    cid = await _campaign(apps[0], scripts)
    amis = [FakeAmi(app, scripts) for app in apps]
    config = DialerConfig(answer_grace_s=0.1, foreign_unanswered_s=1.0,
                          foreign_answered_s=1.0, reconcile_after_s=0.5)
    doomed, survivor = (Dialer(app, ami, config) for app, ami in zip(apps, amis, strict=True))
    stop, peaks = asyncio.Event(), []
    dying = asyncio.Event()
    killed = asyncio.ensure_future(doomed.run(dying))
    sampler = asyncio.ensure_future(_sample_trunk(amis, peaks, stop))
    while doomed.originated < 2:  # noqa: ASYNC110 - a counter, not an event, to watch
        await asyncio.sleep(0.01)
    # "Kill": its loop stops between two steps and it hears nothing more; its calls live on
    # in "Asterisk". (In-process, cancelling it mid-transaction would leave SQLite's write
    # lock behind, which a dead process never does; test_dialer_fake_ami does the same.)
    dying.set()
    amis[0].hangup_cb = None
    await killed
    task = asyncio.ensure_future(survivor.run(stop))
    try:
        await _until_completed(apps[1], cid)
    finally:
        stop.set()
        await asyncio.gather(task, sampler)
    assert max(peaks) <= CAP
    merged = [n for a in amis for n, k in a.calls.items() for _ in range(k)]
    assert sorted(merged) == sorted(scripts)  # nobody called twice
    outcomes = await _outcomes(apps[1])
    assert outcomes.pop("819020000099") == (S.HUNG_UP, 1)
    assert outcomes == {n: (S.COMPLETED, 1) for n in PRESS}
    async with apps[1].sessions() as s:
        left = await s.scalar(select(CallAttempt).where(CallAttempt.node == "app1",
                                                        CallAttempt.status == S.HUNG_UP))
    assert left is not None and left.reason == "reconciled: node app1 gone"
