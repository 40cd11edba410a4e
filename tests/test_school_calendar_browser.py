"""The school calendar in a real headless Chromium: a teacher marks a class closure, the
register shows 閉 (not absences) on screen and in its download; an admin's terms are
checked with a clear error; the guardian's web form refuses a closed day.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from models.db import transaction
from renraku.services import absences
from renraku.services import staff as staff_svc
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school
from tests.staff_fixtures import CSRF, PORTAL_NOW, StaffPortal
from tests.web_fixtures import register_csv

pytestmark = pytest.mark.browser


@pytest.fixture
async def school(sqlite_db: Database) -> dict[str, int]:
    async with transaction(sqlite_db.sessions) as s:
        school = await make_school(s, "さくら小学校")
        room = await make_class(s, school, "3年1組", grade=3)
        other = await make_class(s, school, "3年2組", grade=3)
        kid = await make_child(s, school, "山田 太郎", "やまだ たろう", room)
        await make_child(s, school, "佐藤 花", "さとう はな", room)
        sibling = await make_child(s, school, "山田 次郎", "やまだ じろう", other)
        await make_guardian(s, "山田 花子", "090-1000-0001", "ja", (kid, sibling),
                            "hanako@example.jp")
        await staff_svc.create_staff(s, school.id, name="担任 森", email="mori@x.jp",
                                     role="teacher", password="teacher-pass-1",
                                     class_ids=[room.id])
        await staff_svc.create_staff(s, school.id, name="校長", email="admin@x.jp",
                                     role="admin", password="admin-pass-12", class_ids=[])
        # Reported before the closure was known: kept, but no 欠 on a closed day.
        await absences.submit(s, absences.ReportDraft(kid.id, date(2026, 12, 7), "absence",
                                                      "illness"),
                              channel="web", guardian_id=None, now=PORTAL_NOW)
    return {"room": room.id, "other": other.id, "kid": kid.id, "sibling": sibling.id}


async def test_teacher_marks_a_class_closure_and_the_register_shows_it(
    staff_portal: StaffPortal, browser: Browser, school: dict[str, int], tmp_path: Path
) -> None:
    base = await staff_portal.base_url()
    page = await staff_portal.browser_login_staff(browser, "mori@x.jp", "teacher-pass-1")
    await page.click("nav.staff-nav a[href='/staff/calendar']")
    await expect(page.locator("h1")).to_have_text("学校暦")
    assert await page.locator("#term-form").count() == 0  # terms are the admin's
    assert await page.locator("#change-scope option").count() == 1  # class closures only
    await expect(page.locator("#holidays")).to_contain_text("国民の休日")  # 2026-09-22
    await page.select_option("#change-class", str(school["room"]))
    await page.fill("#change-start", "2026-12-07")
    await page.fill("#change-end", "2026-12-08")
    await page.fill("#change-name", "インフルエンザ")
    await page.click("#change-form button[type=submit]")
    row = page.locator("#changes tr.change")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("3年1組")
    await expect(row).to_contain_text("インフルエンザ")

    # The month register: 閉 for every child on the 7th and 8th, and the report is no 欠.
    await page.goto(f"{base}/staff/classes/{school['room']}/month?ym=2026-12")
    for child_row in await page.locator("#register tbody tr").all():
        cells = child_row.locator("td")
        await expect(cells.nth(6)).to_have_text("閉")
        await expect(cells.nth(7)).to_have_text("閉")
    kid_row = page.locator(f"#register tr[data-child='{school['kid']}']")
    await expect(kid_row.locator("td.total.absent")).to_have_text("0")
    await expect(page.locator("#register thead th.closed")).to_have_count(2)
    text = await register_csv(page, tmp_path / "register.csv")
    assert "山田 太郎,,,,,,,閉,閉," in text, text
    await page.goto(f"{base}/staff/classes/{school['room']}/today?day=2026-12-07")
    await expect(page.locator("#class-closed")).to_contain_text("インフルエンザ")

    # The guardian's form explains the closure and refuses it; the sibling's class is open.
    client = await staff_portal.client_as_guardian("hanako@example.jp")
    form = await (await client.get(f"/c/{school['kid']}/absence/new")).text()
    assert "学級閉鎖（インフルエンザ）" in form
    found = CSRF.search(form)
    assert found is not None
    token = found.group(1)
    refused = await client.post(f"/c/{school['kid']}/absence/new", data={
        "csrf_token": token, "day": "2026-12-07", "until": "2026-12-08", "kind": "absence",
        "reason": "illness"}, allow_redirects=False)
    assert refused.status == 400
    assert "学級閉鎖（インフルエンザ）" in await refused.text()
    sibling = await client.post(f"/c/{school['sibling']}/absence/new", data={
        "csrf_token": token, "day": "2026-12-07", "kind": "absence", "reason": "illness"},
        allow_redirects=False)
    assert sibling.status == 302
    # The family calendar shows the closed days as days off for that child only.
    month = await (await client.get(f"/c/{school['kid']}/calendar?m=2026-12")).text()
    assert 'noschool" data-day="2026-12-07"' in month
    month = await (await client.get(f"/c/{school['sibling']}/calendar?m=2026-12")).text()
    assert 'noschool" data-day="2026-12-07"' not in month
    assert 'noschool" data-day="2026-12-06"' in month  # a Sunday, for comparison


async def test_admin_terms_are_checked(
    staff_portal: StaffPortal, browser: Browser, school: dict[str, int]
) -> None:
    base = await staff_portal.base_url()
    page = await staff_portal.browser_login_staff(browser, "admin@x.jp", "admin-pass-12")
    await page.goto(f"{base}/staff/calendar?year=2026")
    form = page.locator("#term-form")
    await form.locator("input[name=name]").fill("2学期")
    await form.locator("input[name=start]").fill("2026-09-01")
    await form.locator("input[name=end]").fill("2026-12-24")
    await form.locator("button").click()
    await expect(page.locator("#terms tr.term")).to_have_count(1)
    form = page.locator("#term-form")
    await form.locator("input[name=name]").fill("3学期")
    await form.locator("input[name=start]").fill("2027-01-08")
    await form.locator("input[name=end]").fill("2027-04-10")
    await form.locator("button").click()
    await expect(page.locator("#calendar-error")).to_have_text(
        "学期は1つの年度（4月〜翌年3月）の中に収めてください。")
    await expect(page.locator("#terms tr.term")).to_have_count(1)
    # A grade closure (admin only) and a Saturday school day.
    await page.select_option("#change-scope", "grade")
    await page.fill("#change-grade", "3")
    await page.fill("#change-start", "2026-12-10")
    await page.fill("#change-name", "学年閉鎖")
    await page.click("#change-form button[type=submit]")
    await expect(page.locator("#changes tr.change")).to_contain_text("3年")
    await page.goto(f"{base}/staff/classes/{school['other']}/month?ym=2026-12")
    await expect(page.locator("#register tbody tr").first.locator("td").nth(9)).to_have_text("閉")
