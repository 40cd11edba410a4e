"""Broadcast read receipts in Chromium: a family follows the link of the email it received
(real SMTP server) and reads the message without login; the teacher sees read / unread per
family with how, and resends to the unread with one click (clicked twice): the email
arrives once, only for the unread family, and the family without email gets a call."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from ivr.dialer import Dialer
from models import Campaign, CampaignHousehold, EmailDelivery
from renraku.services.broadcast_mail import send_due_emails
from tests.db_fixtures import Database
from tests.staff_fixtures import StaffPortal
from tests.test_broadcast_console import mailbox  # noqa: F401 (the SMTP server fixture)
from tests.test_broadcast_mail import Inbox
from tests.test_broadcast_reads import LINK, _world
from tests.test_dialer_fake_ami import FakeAmi

pytestmark = pytest.mark.browser


async def test_teacher_sees_who_read_and_resends_to_the_unread(
    staff_portal: StaffPortal, browser: Any, sqlite_db: Database,
    mailbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    inbox, port = mailbox
    staff_portal.use_smtp_port(port)
    w = await _world(sqlite_db)
    app = staff_portal.app
    base = await staff_portal.base_url()
    teacher = await staff_portal.browser_login_staff(browser, "mori@x.jp", "teacher-pass-1")
    await teacher.goto(f"{base}/staff/broadcasts/new")
    await teacher.fill("#title", "運動会の延期")
    await teacher.fill("#message_ja", "運動会は来週に延期します。")
    await teacher.check("input[name=channel][value=email]")
    await teacher.check(f"input[name=classes][value='{w['mine']}']")
    await teacher.click("#send-button")
    await teacher.wait_for_url(re.compile(r".*/staff/broadcasts/\d+$"))
    cid = int(teacher.url.rsplit("/", 1)[1])
    mailer = Dialer(app, FakeAmi(app, {}), mailer=lambda c: send_due_emails(app, c))
    await mailer.tick()
    assert sorted(m["To"] for m in inbox.messages) == ["aoki@example.jp", "baba@example.jp"]

    # Aoki's mum opens the link of her email in her browser: no login, the message
    aoki_mail = next(m for m in inbox.messages if m["To"] == "aoki@example.jp")
    link = LINK.search(aoki_mail.get_content())
    assert link is not None
    family = await (await browser.new_context(locale="en-US")).new_page()
    try:
        await family.goto(base + link.group(1))
        await expect(family.locator("#message-text")).to_have_text("運動会は来週に延期します。")
        await expect(family.locator("#message-read")).to_contain_text("Thank you")
        assert "⟦" not in await family.content()
        body = await family.locator("main").inner_text()
        assert "馬場" not in body and "千葉" not in body  # nothing about other families
    finally:
        await family.context.close()

    # The teacher: 青木 read by the email link, 馬場 and 千葉 not yet
    await teacher.reload()
    await expect(teacher.locator("#read-count")).to_contain_text("3家庭中1家庭")
    await expect(teacher.locator(f"tr[data-child='{w['a']}'].read")).to_contain_text(
        "メールのリンク")
    await expect(teacher.locator(f"tr[data-child='{w['b']}'].unread")).to_be_visible()
    await expect(teacher.locator(f"tr[data-child='{w['c']}'].unread")).to_be_visible()
    assert "⟦" not in await teacher.locator("main").inner_html()
    await teacher.dblclick("#resend-button")  # an impatient double click
    await teacher.wait_for_url(re.compile(r".*/staff/broadcasts/\d+$"))
    await expect(teacher.locator(".flash")).to_be_visible()
    async with app.sessions() as s:
        resent = list(await s.scalars(select(Campaign).where(Campaign.resend_of == cid)))
        assert len(resent) == 1
        mails = [d.address for d in await s.scalars(select(EmailDelivery).where(
            EmailDelivery.campaign_id == resent[0].id))]
        calls = [h.phone_e164 for h in await s.scalars(select(CampaignHousehold).where(
            CampaignHousehold.campaign_id == resent[0].id))]
    assert mails == ["baba@example.jp"] and calls == ["+81330000004"]
    assert teacher.url.endswith(f"/staff/broadcasts/{resent[0].id}")
    await mailer.tick()
    # At the SMTP server: the resend only to the unread family with email, once
    assert [m["To"] for m in inbox.messages[2:]] == ["baba@example.jp"]
    # The resend's page links back to the broadcast, whose receipts it feeds
    await teacher.click("#resend-of a")
    await expect(teacher.locator("#resends a")).to_have_count(1)
