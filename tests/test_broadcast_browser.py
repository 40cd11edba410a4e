"""A teacher composes a broadcast in headless Chromium, sends it and watches it reach 100 %.

The calls here go through the dialer loop and a scripted AMI (tests/test_dialer_fake_ami);
the same flow over real Asterisk is tests/test_broadcast_asterisk.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright, expect

from ivr.dialer import Dialer, DialerConfig
from models.db import transaction
from renraku.services import broadcast as bc
from renraku.services import staff as staff_svc
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school
from tests.staff_fixtures import StaffPortal
from tests.test_dialer_fake_ami import FakeAmi

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = os.path.exists(CHROMIUM)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.skip("Debian chromium is not installed (make setup installs it)")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        await b.close()


async def test_teacher_sends_and_watches_progress(
    staff_portal: StaffPortal, browser: Browser, sqlite_db: Database
) -> None:
    async with transaction(sqlite_db.sessions) as s:
        school = await make_school(s, "さくら小学校")
        room = await make_class(s, school, "1年1組")
        numbers = []
        for n in range(1, 5):
            kid = await make_child(s, school, f"児童 {n}", f"じどう {n}", room)
            numbers.append(f"8190200000{n:02d}")
            await make_guardian(s, f"保護者 {n}", f"090-2000-00{n:02d}", children=(kid,))
        await staff_svc.create_staff(s, school.id, name="担任 森", email="mori@x.jp",
                                     role="teacher", password="teacher-pass-1",
                                     class_ids=[room.id])
    app = staff_portal.app
    page = await staff_portal.browser_login_staff(browser, "mori@x.jp", "teacher-pass-1")
    base = await staff_portal.base_url()
    await page.goto(f"{base}/staff/broadcasts")
    await page.click("#new-broadcast")
    await page.fill("#title", "遠足のお知らせ")
    await page.fill("#message_ja", "明日は遠足です。お弁当を持たせてください。")
    await page.check(f"input[name=classes][value='{room.id}']")
    await page.fill("#q1_text", "参加しますか")
    await page.fill("#q1_opt1", "はい")
    await page.fill("#q1_opt2", "いいえ")
    await page.click("#preview-button")
    await expect(page.locator("#preview")).to_contain_text("4")
    assert "⟦" not in await page.locator("main.staff").inner_html()
    await page.click("#send-button")
    await page.wait_for_url(f"{base}/staff/broadcasts/*")
    await expect(page.locator("#campaign-status")).to_have_attribute("data-status", "running")
    await expect(page.locator("#percent")).to_have_text("0")
    # The dialer picks the campaign up; every family answers and hears the message
    ami = FakeAmi(app, {n: ["press"] for n in numbers})
    dialer = Dialer(app, ami, DialerConfig(answer_grace_s=0.1))
    stop = asyncio.Event()
    task = asyncio.ensure_future(dialer.run(stop))
    try:
        await expect(page.locator("#percent")).to_have_text("100", timeout=20000)
        await expect(page.locator("#campaign-status")).to_have_attribute(
            "data-status", "completed", timeout=10000)
        await expect(page.locator("#counts td[data-key=completed]")).to_have_text("4")
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await task
    async with app.sessions() as s:
        cid = int(page.url.rsplit("/", 1)[1])
        assert (await bc.progress(s, cid)).counts["completed"] == 4
    await page.context.close()
