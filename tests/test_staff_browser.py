"""The staff portal in a real headless Chromium: live register, CSV, print, events, proxy.

Chromium and the SMTP server are the session fixtures of tests/web_fixtures.py.
"""

from __future__ import annotations

import asyncio
import re
from datetime import date
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from ivr.absence_flow import AbsenceCall
from models import Event
from models.db import transaction
from models.enums import EventStatus
from renraku.services import absences
from renraku.services import staff as staff_svc
from renraku.services.guardians import guardians_by_phone
from tests.absence_fakes import FakeHangup, FakeVoice, ScriptedChannel
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school
from tests.prompts_fixtures import wait_name_rendered
from tests.staff_fixtures import StaffPortal
from tests.web_fixtures import Mailbox

pytestmark = pytest.mark.browser


@pytest.fixture
async def school(sqlite_db: Database) -> dict[str, int]:
    async with transaction(sqlite_db.sessions) as s:
        school = await make_school(s, "さくら小学校")
        room = await make_class(s, school, "1年1組")
        kid = await make_child(s, school, "山田 太郎", "やまだ たろう", room)
        kid2 = await make_child(s, school, "佐藤 花", "さとう はな", room)
        await make_guardian(s, "Emily Smith", "070-1000-0005", "en", (kid,),
                            "emily@example.com")
        await staff_svc.create_staff(s, school.id, name="担任 森", email="mori@x.jp",
                                     role="teacher", password="teacher-pass-1",
                                     class_ids=[room.id])
        await staff_svc.create_staff(s, school.id, name="校長", email="admin@x.jp",
                                     role="admin", password="admin-pass-12", class_ids=[])
    return {"school": school.id, "room": room.id, "kid": kid.id, "kid2": kid2.id}


async def staff_page(portal: StaffPortal, browser: Browser, email: str, password: str) -> Page:
    return await portal.browser_login_staff(browser, email, password)


async def test_live_register_csv_and_print(
    staff_portal: StaffPortal, browser: Browser, school: dict[str, int], tmp_path: Path
) -> None:
    page = await staff_page(staff_portal, browser, "mori@x.jp", "teacher-pass-1")
    base = await staff_portal.base_url()
    await page.goto(f"{base}/staff/classes/{school['room']}/today")
    await expect(page.locator("#live-status")).to_have_attribute("data-live", "on")
    assert await page.locator("tr.report").count() == 0
    assert "⟦" not in await page.locator("main.staff").inner_html()  # all translated
    # A phone report, written the way the phone line writes it, while the page is open.
    async with transaction(staff_portal.app.sessions) as s:
        today = staff_portal.app.clock.now().date()
        assert today == date(2026, 12, 4)
        await absences.submit(
            s, absences.ReportDraft(school["kid"], today, "absence", "illness", memo="熱が38度"),
            channel="phone", guardian_id=None, now=staff_portal.app.clock.now())
    row = page.locator("tr.report[data-channel=phone]")
    await expect(row).to_contain_text("山田 太郎", timeout=5000)
    await expect(row).to_contain_text("熱が38度")
    # The teacher marks it seen.
    await row.get_by_role("button").click()
    await expect(page.locator("tr.report.unseen")).to_have_count(0)
    await expect(page.locator("tr.report")).to_contain_text("✓")
    # The month view, its CSV (Excel flavour, with BOM) and the print view.
    await page.goto(f"{base}/staff/classes/{school['room']}/month?ym=2026-12")
    cell = page.locator(f"#register tr[data-child='{school['kid']}'] td").nth(3)
    await expect(cell).to_have_text("欠")
    async with page.expect_download() as info:
        await page.click("#csv-bom")
    download = await info.value
    path = tmp_path / "register.csv"
    await download.save_as(path)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert "1年1組 2026年12月 出席簿" in text
    assert re.search(r"^山田 太郎,,,,欠,", text, re.M), text
    async with page.expect_download() as info:
        await page.click("#pdf")
    pdf_file = tmp_path / "register.pdf"
    await (await info.value).save_as(pdf_file)
    assert pdf_file.read_bytes().startswith(b"%PDF")
    async with page.context.expect_page() as popup:
        await page.click("#print-view")
    printed = await popup.value
    await printed.wait_for_load_state()
    await expect(printed.locator("h1")).to_contain_text("出席簿")
    css = await printed.evaluate(  # the page's stylesheet (a file: the CSP allows no <style>)
        "[...document.styleSheets].flatMap(s => [...s.cssRules].map(r => r.cssText)).join()")
    assert "size: a4 landscape" in css.lower()
    pdf = await printed.pdf(prefer_css_page_size=True)
    assert pdf.startswith(b"%PDF")


async def test_event_change_emails_the_family(
    staff_portal: StaffPortal, browser: Browser, school: dict[str, int],
    smtp_server: Mailbox,
) -> None:
    box = smtp_server
    box.messages.clear()
    staff_portal.use_smtp_port(box.port)
    page = await staff_page(staff_portal, browser, "admin@x.jp", "admin-pass-12")
    base = await staff_portal.base_url()
    await page.goto(f"{base}/staff/events/new")
    await page.fill("input[name=title]", "個人面談")
    await page.select_option("select[name=class_id]", str(school["room"]))
    await page.fill("input[name=date]", "2026-12-11")
    await page.fill("input[name=start]", "14:00")
    await page.fill("input[name=end]", "17:00")
    await page.fill("input[name=place]", "1年1組教室")
    await page.click("#event-form button[type=submit]")
    await expect(page.locator("#events")).to_contain_text("個人面談")
    assert box.messages == []  # a new event is no change
    await page.click("#events a.edit-event")
    await page.fill("input[name=date]", "2026-12-18")
    await page.click("#event-form button[type=submit]")
    await expect(page.locator("#events tr.changed")).to_contain_text("個人面談")
    for _ in range(50):
        if box.messages:
            break
        await asyncio.sleep(0.1)
    assert [m["To"] for m in box.messages] == ["emily@example.com"]
    body = box.messages[0].get_content()
    assert "Event changed" in box.messages[0]["Subject"]
    assert "December 18, 2026" in body and "December 11, 2026" in body
    async with staff_portal.app.sessions() as s:
        event = await s.scalar(select(Event).where(Event.title == "個人面談"))
        assert event is not None and event.status == EventStatus.CHANGED
    # The guardian's calendar (guardian portal) marks the event as changed on its new day.
    guardian = await staff_portal.browser_login_guardian(browser, "emily@example.com")
    await guardian.goto(f"{base}/c/{school['kid']}/calendar?m=2026-12")
    await expect(guardian.locator("td[data-day='2026-12-18'] .mark.changed")).to_contain_text(
        "個人面談")
    assert await guardian.locator("td[data-day='2026-12-11'] .mark").count() == 0
    await expect(guardian.locator("#month-items li.changed")).to_contain_text("Changed")


async def test_proxy_registration_of_a_landline_family(
    staff_portal: StaffPortal, browser: Browser, school: dict[str, int]
) -> None:
    page = await staff_page(staff_portal, browser, "mori@x.jp", "teacher-pass-1")
    base = await staff_portal.base_url()
    await page.goto(f"{base}/staff/classes/{school['room']}/guardians")
    await page.click("#proxy-link")
    await page.select_option("select[name=child_id]", str(school["kid2"]))
    await page.fill("input[name=name]", "佐藤 ハル")
    await page.fill("input[name=reading]", "さとう はる")
    await page.fill("input[name=relation]", "祖母")
    await page.fill("input[name=phone]", "03-3000-0001")
    await page.click("#proxy-form button[type=submit]")
    await expect(page.locator("#proxy-done")).to_contain_text("03-3000-0001")
    await page.goto(f"{base}/staff/classes/{school['room']}/guardians")
    row = page.locator(f"#guardians tr[data-child='{school['kid2']}']")
    await expect(row).to_contain_text("佐藤 ハル")
    async with staff_portal.app.sessions() as s:
        found = await guardians_by_phone(s, "+81330000001")
        assert [g.name for g in found] == ["佐藤 ハル"]
        assert found[0].proxy_registered
    await wait_name_rendered(staff_portal.app.settings, "さとう はな")  # for the phone menu
    # She calls the absence line from the landline at once (the real call flow on a scripted
    # channel), and the report shows up in the open register without a reload.
    await page.goto(f"{base}/staff/classes/{school['room']}/today")
    await expect(page.locator("#live-status")).to_have_attribute("data-live", "on")
    channel = ScriptedChannel("0330000001", [
        ("absence.main_menu", "1"), ("absence.kind_menu", "1"), ("absence.reason_menu", "1"),
        ("absence.symptom_menu", "#"), ("absence.confirm_keys", "1"), ("absence.after_menu", "2"),
    ])
    result = await AbsenceCall(channel, staff_portal.app, FakeVoice(), FakeHangup).run()
    assert result.outcome == "reported"
    row = page.locator("tr.report[data-channel=phone]")
    await expect(row).to_contain_text("佐藤 花", timeout=5000)
    await expect(row).to_contain_text("佐藤 ハル")
