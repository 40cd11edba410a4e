"""An admin in Chromium: CP932 roster with a bad row, fixed and confirmed; then the rollover,
and last year's register still downloads."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import func, select

from models import Child, Classroom
from models.db import transaction
from models.enums import ReportKind, ReportReason
from renraku.services import absences
from renraku.services import staff as staff_svc
from tests.db_fixtures import Database
from tests.factories import make_school
from tests.fresh_school import BAD_ROSTER, BAD_ROW, ROSTER, preview_roster, write_roster
from tests.staff_fixtures import StaffPortal
from tests.web_fixtures import PORTAL_NOW, register_csv

pytestmark = pytest.mark.browser

async def children(db: Database) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count(Child.id))) or 0)


async def test_roster_import_then_rollover(staff_portal: StaffPortal, browser: Browser,
                                           sqlite_db: Database, tmp_path: Path) -> None:
    async with transaction(sqlite_db.sessions) as s:
        school = await make_school(s, "さくら小学校")
        await staff_svc.create_staff(s, school.id, name="教頭", email="admin@x.jp",
                                     role="admin", password="admin-pass-12", class_ids=[])
    page = await staff_portal.browser_login_staff(browser, "admin@x.jp", "admin-pass-12")
    base = await staff_portal.base_url()
    await page.click("text=クラスと名簿")
    await expect(page.locator("#classes")).to_contain_text("この年度のクラスはまだありません")

    await preview_roster(page, write_roster(tmp_path / "bad.csv", BAD_ROSTER))
    await expect(page.locator("#problems")).to_contain_text(BAD_ROW)
    await expect(page.locator("#counts")).to_contain_text("使用しない列：性別")
    await expect(page.locator("#confirm-form")).to_have_count(0)
    assert await children(sqlite_db) == 0

    await preview_roster(page, write_roster(tmp_path / "good.csv", ROSTER))
    await expect(page.locator("#counts")).to_contain_text("追加：5名")
    await expect(page.locator("#counts")).to_contain_text("新しいクラス：3")
    await expect(page.locator("#rows-add")).to_contain_text("千葉 三郎")
    await page.click("#confirm-form button")
    await expect(page.locator(".flash")).to_contain_text("追加5名")
    await expect(page.locator("#classes tr[data-class='1年2組']")).to_have_count(1)
    assert await children(sqlite_db) == 5

    async with transaction(sqlite_db.sessions) as s:
        hana = await s.scalar(select(Child).where(Child.student_number == "25001"))
        assert hana is not None
        await absences.submit(s, absences.ReportDraft(hana.id, date(2026, 12, 3),
                              ReportKind.ABSENCE, ReportReason.ILLNESS),
                              channel="staff", guardian_id=None, now=PORTAL_NOW)
        old_room = await s.scalar(select(Classroom).where(Classroom.name == "2年1組"))
        assert old_room is not None

    # 1 April, 09:30: the new year may start (months later, the admin signs in again).
    staff_portal.app.clock.set(datetime(2027, 4, 1, 0, 30, tzinfo=UTC))
    page = await staff_portal.browser_login_staff(browser, "admin@x.jp", "admin-pass-12")
    await page.click("text=クラスと名簿")
    await page.click("#rollover-link")
    await expect(page.locator("input[name=to]")).to_have_value("2027")
    await page.click("#rollover-form button[type=submit]")
    await expect(page.locator("#rollover-summary")).to_contain_text("卒業2名（2年）")
    await expect(page.locator("#graduates")).to_contain_text("土屋 花 (2年1組)")
    await page.click("#rollover-confirm button")
    await page.wait_for_url(f"{base}/staff/roster?year=2027")
    await expect(page.locator("#classes tr[data-class='2年2組']")).to_have_count(1)
    async with sqlite_db.sessions() as s:
        names = set(await s.scalars(select(Classroom.name).where(
            Classroom.academic_year == 2027)))
        assert names == {"2年1組", "2年2組"}
        assert await s.scalar(select(func.count(Child.id)).where(Child.active)) == 3

    await page.goto(f"{base}/staff/?year=2026")
    await expect(page.locator("table.grid")).to_contain_text("2年1組")
    await page.goto(f"{base}/staff/classes/{old_room.id}/month?ym=2026-12")
    text = await register_csv(page, tmp_path / "register.csv")
    assert "2年1組 2026年12月 出席簿" in text
    assert any(line.startswith("土屋 花,") and "欠" in line for line in text.splitlines())
