"""The completion notice after a proxy registration: an email where the family gave one
(real SMTP sink), otherwise one automated call in the family's language through the dialer
(real Asterisk), to the new number only."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Campaign, CampaignHousehold
from models.db import transaction
from models.enums import AttemptStatus
from renraku.services import proxy
from renraku.services import staff as staff_svc
from tests.asterisk_harness import PhoneLines
from tests.db_fixtures import Database
from tests.factories import make_child, make_guardian, make_school, morning_zone
from tests.test_broadcast_asterisk import _app, _route, dial_until_done
from tests.test_guardian_authz import Client
from tests.web_fixtures import Portal
from tests.web_world import build_world
from webportal.staff.families import completion_call_text

MOTHER, GRANDMA = "819035000001", "81335000002"  # a mobile and a Tokyo landline


@pytest.mark.asterisk
async def test_completion_call_in_the_family_language_to_the_new_number_only(
    lines: PhoneLines, sqlite_db: Database
) -> None:
    app = _app(lines, sqlite_db)
    voice = _route(lines, app)
    now = app.clock.now()
    async with transaction(app.sessions) as s:
        school = await make_school(s, "さくら小学校", timezone=morning_zone(now))
        kid = await make_child(s, school, "鈴木 三郎")
        await make_guardian(s, "鈴木 洋子", "+" + MOTHER, "ja", (kid,))
        done = await proxy.proxy_register(s, proxy.ProxyForm(
            kid.id, "Hana Suzuki", "", "grandmother", "03-3500-0002", "en"))
        campaign = await proxy.queue_completion_call(
            s, app.settings, school_id=school.id, child_id=kid.id, number=done.number,
            title="登録完了", message=completion_call_text("Sakura School"), now=now)
        cid = campaign.id
    await lines.household(GRANDMA, "answer:0:")
    await lines.household(MOTHER, "answer:0:")
    first_call = len(lines.calls)  # the session's phone lines keep earlier tests' calls
    await dial_until_done(app, lines, cid)
    async with app.sessions() as s:
        households = list(await s.scalars(select(CampaignHousehold).where(
            CampaignHousehold.campaign_id == cid)))
    assert [(h.phone_e164, h.language, h.status) for h in households] == [
        ("+" + GRANDMA, "en", AttemptStatus.COMPLETED)]
    assert await lines.household_attempts(GRANDMA) == 1
    assert await lines.household_attempts(MOTHER) == 0  # the family's other guardian: no call
    english = completion_call_text("Sakura School")["en"]
    assert "registered" in english and "Sakura School" in english
    heard = [p for r in lines.calls[first_call:] for p in r.agi.streamed]
    assert f"bt/{voice.names[english]}-en" in heard  # the English text, in English


async def test_staff_page_emails_or_queues_the_call(portal: Portal, sqlite_db: Database) -> None:
    world = await build_world(sqlite_db)
    async with transaction(sqlite_db.sessions) as s:
        await staff_svc.create_staff(s, world.school, name="担任 森", email="mori@x.jp",
                                     role="teacher", password="teacher-pass-1",
                                     class_ids=[world.class1])
    teacher = Client(portal)
    try:
        await teacher.login("mori@x.jp", "teacher-pass-1", "/staff/login", "email")
        form = {"child_id": str(world.newkid), "name": "鈴木 ハナ", "reading": "",
                "relation": "grandmother", "phone": "03-3500-0003", "language": "zh"}
        async with teacher.http.post(
                f"{teacher.base}/staff/classes/{world.class1}/proxy",
                data={**form, "csrf_token": await teacher.token()}) as resp:
            assert resp.status == 200 and 'id="proxy-call-queued"' in await resp.text()
        await teacher.post(f"/staff/classes/{world.class1}/proxy",
                           {**form, "name": "鈴木 一郎", "relation": "father",
                            "phone": "03-3500-0004", "email": "ichiro@example.jp",
                            "language": "es"})
        mail = await portal.mailbox.wait_for("ichiro@example.jp")
        assert "registro" in str(mail["Subject"]).lower()
    finally:
        await teacher.http.close()
    async with sqlite_db.sessions() as s:
        campaigns = list(await s.scalars(select(Campaign)))
        calls = list(await s.scalars(select(CampaignHousehold).where(
            CampaignHousehold.campaign_id.in_([c.id for c in campaigns]))))
    queued = [c for c in campaigns if c.target == {"children": [world.newkid]}]
    assert len(queued) == 1 and queued[0].status == "running" and queued[0].voice
    assert "登録しました" in queued[0].message["ja"] and "登记" in queued[0].message["zh"]
    assert [(h.phone_e164, h.language) for h in calls if h.campaign_id == queued[0].id] == [
        ("+81335000003", "zh")]
