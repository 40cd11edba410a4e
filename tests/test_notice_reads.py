"""Read receipts of notices in Chromium: a family opening a notice marks it read for that
child; the teacher sees read / unread per family of their classes and resends to the unread
in one click (email where there is one, a call otherwise); families never see receipts."""

from __future__ import annotations

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from models import Campaign, CampaignHousehold, Child, EmailDelivery, Notice, NoticeRead
from models.db import transaction
from tests.db_fixtures import Database
from tests.factories import make_guardian
from tests.test_guardian_authz import Client
from tests.test_proxy_requests import _teachers
from tests.web_fixtures import Portal
from tests.web_world import PASSWORD, build_world


@pytest.mark.browser
async def test_reads_per_family_and_resend_to_unread(browser_portal: Portal,
                                                     sqlite_db: Database) -> None:
    world = await build_world(sqlite_db)
    await _teachers(sqlite_db, world)
    async with transaction(sqlite_db.sessions) as s:
        newkid = await s.get_one(Child, world.newkid)
        await make_guardian(s, "鈴木 家", "03-3000-7777", "en", (newkid,))  # no email
        notice_id = await s.scalar(select(Notice.id).where(Notice.title == "冬休みのお知らせ"))
    # Hanako opens Taro's page (not Hana's); Ken opens it later: Hanako stays the reader.
    for email in ("hanako@example.jp", "ken@example.jp"):
        family = await browser_portal.page()
        await browser_portal.login(family, email, PASSWORD)
        await family.goto(f"/c/{world.taro}")
        await expect(family.locator(".notice").first).to_be_visible()
        assert await family.locator("text=既読").count() == 0  # families never see receipts
    async with sqlite_db.sessions() as s:
        rows = list(await s.scalars(select(NoticeRead).where(NoticeRead.notice_id == notice_id)))
    assert [(r.child_id, r.guardian_id) for r in rows] == [(world.taro, world.hanako)]
    # The teacher of 1年1組: her three families; Hana (3年2組) is not hers.
    teacher = await browser_portal.page()
    await browser_portal.login_staff(teacher, "mori@x.jp", "teacher-pass-1")
    await teacher.goto("/staff/notices")
    await teacher.click(f"tr[data-notice='{notice_id}'] .reads-link")
    await expect(teacher.locator("#read-count")).to_contain_text("3家庭中1家庭")
    await expect(teacher.locator(f"tr[data-child='{world.taro}']")).to_contain_text("山田 花子")
    await expect(teacher.locator(f"tr[data-child='{world.jiro}'].unread")).to_be_visible()
    assert await teacher.locator(f"tr[data-child='{world.hana}']").count() == 0
    await teacher.click("#resend-form button")
    await expect(teacher.locator(".flash.ok")).to_contain_text("2家庭")
    async with sqlite_db.sessions() as s:
        campaign = await s.scalar(select(Campaign).order_by(Campaign.id.desc()))
        assert campaign is not None
        emails = [d.address for d in await s.scalars(select(EmailDelivery).where(
            EmailDelivery.campaign_id == campaign.id))]
        calls = [(h.phone_e164, h.language) for h in await s.scalars(select(
            CampaignHousehold).where(CampaignHousehold.campaign_id == campaign.id))]
    assert campaign.target == {"children": sorted([world.jiro, world.newkid])}
    assert "12月25日から冬休みです。" in campaign.message["ja"]
    assert emails == ["sato@example.jp"]  # Jiro's family by email...
    assert calls == [("+81330007777", "en")]  # ...the family without email by a call


async def test_receipts_only_for_staff_in_scope(portal: Portal, sqlite_db: Database) -> None:
    world = await build_world(sqlite_db)
    await _teachers(sqlite_db, world)
    async with sqlite_db.sessions() as s:
        grade3 = await s.scalar(select(Notice.id).where(Notice.title == "3年生 校外学習"))
    hanako, other = Client(portal), Client(portal)
    try:
        await hanako.login("hanako@example.jp")
        assert (await hanako.get(f"/staff/notices/{grade3}/reads"))[0] == 403
        assert await hanako.post(f"/staff/notices/{grade3}/resend", {}) == 403
        await other.login("mori@x.jp", "teacher-pass-1", "/staff/login", "email")
        status, html = await other.get(f"/staff/notices/{grade3}/reads")
        # A grade-3 notice reaches none of 1年1組's families.
        assert status == 200 and f'data-child="{world.hana}"' not in html
        assert (await other.get("/staff/notices/99999/reads"))[0] == 404
    finally:
        await hanako.http.close()
        await other.http.close()
