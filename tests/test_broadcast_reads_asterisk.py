"""Broadcast read receipts through real Asterisk: a household that hears the whole message
has read it ("call heard", every child reached on that number); one that hangs up during
the message has not, and neither has an answering machine ("left message")."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import BroadcastRead, Campaign
from models.db import transaction
from models.enums import AttemptStatus as S
from renraku.services import broadcast as bc
from renraku.services import broadcast_reads as reads
from tests.asterisk_harness import PhoneLines
from tests.db_fixtures import Database
from tests.factories import make_child, make_guardian, make_school, morning_zone
from tests.test_broadcast_asterisk import _app, _households, _numbers, _route, dial_until_done

pytestmark = pytest.mark.asterisk


async def test_whole_message_heard_is_read_hung_up_during_it_is_not(
    lines: PhoneLines, sqlite_db: Database
) -> None:
    app = _app(lines, sqlite_db, channels=3)
    _route(lines, app)
    heard, hung_up, machine = _numbers("3400", 3)
    now = app.clock.now()
    async with transaction(app.sessions) as s:
        school = await make_school(s, "既読小", timezone=morning_zone(now))
        # Siblings on one landline: one call, both families of the number have heard it
        ichiro = await make_child(s, school, "一郎")
        jiro = await make_child(s, school, "次郎")
        await make_guardian(s, "聞く 家", "+" + heard, "ja", (ichiro, jiro))
        saburo = await make_child(s, school, "三郎")
        await make_guardian(s, "切る 家", "+" + hung_up, "ja", (saburo,))
        shiro = await make_child(s, school, "四郎")
        await make_guardian(s, "留守 家", "+" + machine, "ja", (shiro,))
        camp = await bc.create_campaign(
            s, app.settings, school_id=school.id, title="延期", target={"school": True},
            now=now, message={"ja": "運動会は延期です"})
        await bc.launch(s, app.settings, camp, now)
        cid = camp.id
    # Hears the ~2.6 s message and stays on (presses 5 long after the flow said goodbye);
    # hangs up 2 s after answering, inside the message; an answering machine.
    await lines.household(heard, "answer:20:5")
    await lines.household(hung_up, "hangup:2")
    await lines.household(machine, "machine")
    await dial_until_done(app, lines, cid, within=120)
    households = await _households(app, cid)
    assert {n: h.status for n, h in households.items()} == {
        heard: S.COMPLETED, hung_up: S.HUNG_UP, machine: S.LEFT_MESSAGE}
    async with app.sessions() as s:
        rows = {r.child_id: r for r in await s.scalars(
            select(BroadcastRead).where(BroadcastRead.campaign_id == cid))}
        table = await reads.family_reads(s, await s.get_one(Campaign, cid))
    assert sorted(rows) == sorted([ichiro.id, jiro.id])
    assert {r.channel for r in rows.values()} == {"call"}
    assert {(r.child.id, r.channel) for r in table} == {
        (ichiro.id, "call"), (jiro.id, "call"), (saburo.id, ""), (shiro.id, "")}
