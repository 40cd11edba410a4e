"""The follow-up call through real Asterisk, end to end.

A teacher marks a child absent that nobody reported and presses the follow-up button on
the register; the dialer calls the family over AMI (dialplan renraku-broadcast with
RENRAKU_FLOW=followup → FastAGI /followup); the family's virtual phone answers and presses
3 ("did not know"); the register shows it, and the principal gets the alert on the summary
page and by email through a real SMTP server.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import select

from ivr.dialer import Dialer, DialerConfig, PanoramiskPort
from ivr.fastagi import AGIChannel, Hangup
from ivr.followup_flow import FollowUpCall
from models import FollowUp
from renraku.app import App
from renraku.clock import FakeClock
from tests.asterisk_harness import PhoneLines
from tests.db_fixtures import Database
from tests.prompts_fixtures import OFFLINE
from tests.staff_fixtures import PORTAL_NOW, StaffPortal
from tests.staffroom_world import DAY, PASSWORD, build
from tests.test_broadcast_asterisk import ToneVoice
from tests.web_fixtures import Mailbox
from webportal.app import create_app

pytestmark = pytest.mark.asterisk


async def test_family_presses_3_register_and_principal_are_alerted(
    lines: PhoneLines, sqlite_db: Database, smtp_server: Mailbox
) -> None:
    smtp_server.messages.clear()
    settings = lines.settings.replace(
        database_url=sqlite_db.url, public_url="http://school.test", secret_key="test-secret",
        smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_from="school@sakura.test",
        dialer_max_channels=2, dialer_originates_per_second=4.0, **OFFLINE)
    app = App(settings, FakeClock(PORTAL_NOW), sqlite_db.engine, sqlite_db.sessions)
    w = await build(sqlite_db.sessions, baba_phone="090-3316-0001")
    voice = ToneVoice(settings.sounds_dir)

    async def followup_route(agi: AGIChannel) -> None:
        await FollowUpCall(agi, app, voice, Hangup).run()

    lines.route("followup", followup_route)
    number = w.baba_mother_phone.lstrip("+")
    await lines.household(number, "answer:6:3")
    portal = StaffPortal(app, create_app(app))
    dialer = Dialer(app, PanoramiskPort(lines.ivr_ami),
                    DialerConfig(ring_timeout_s=8, answer_grace_s=1.0))
    stop = asyncio.Event()
    task = asyncio.ensure_future(dialer.run(stop))
    try:
        teacher = await portal.client_as_staff("mori@sakura.test", PASSWORD)
        await portal.post(teacher, f"/staff/classes/{w.mine}/roll",
                          {"day": DAY.isoformat(), f"mark-{w.baba}": "absent"})
        r = await portal.post(teacher, f"/staff/classes/{w.mine}/followup",
                              {"day": DAY.isoformat()})
        assert r.status == 303
        async with asyncio.timeout(60):
            while True:
                async with app.sessions() as s:
                    up = await s.scalar(select(FollowUp).where(FollowUp.child_id == w.baba))
                if up is not None and up.answer is not None:
                    break
                await asyncio.sleep(0.3)
        assert up.answer == "did_not_know"
        # The register shows it at once
        rows = await (await teacher.get(f"/staff/classes/{w.mine}/roll/rows")).text()
        assert re.search(rf'class="roll unexplained did-not-know" data-child="{w.baba}"', rows)
        assert "保護者は知らなかった" in rows
        # The principal: an alert on the summary page and an email
        principal = await portal.client_as_staff("principal@sakura.test", PASSWORD)
        page = await (await principal.get("/staff/summary")).text()
        assert "馬場 二郎: 保護者は欠席を把握していませんでした" in page
        mail = await smtp_server.wait_for("principal@sakura.test", seconds=20)
        assert "馬場 二郎" in str(mail["Subject"]) and "/staff/summary" in Mailbox.text(mail)
        await smtp_server.wait_for("mori@sakura.test")
    finally:
        stop.set()
        await task
        await portal.close()
    # One call, to the primary guardian, in Japanese, with the follow-up phrases
    assert await lines.household_attempts(number) == 1
    assert await lines.household_attempts("819020000002") == 0
    heard = [p for call in lines.calls for p in call.agi.streamed]
    assert "bt/followup_not_arrived-ja" in heard and "bt/followup_thanks_did_not_know-ja" in heard
