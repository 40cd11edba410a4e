"""欠席履歴 in a real Chromium: every report of the school year, changes, the year selector;
and over HTTP: one family never sees another's history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from models import AbsenceReport
from models.db import transaction
from models.enums import Channel, ReportKind, ReportReason
from renraku.rules.school_year import school_year_days, school_year_of
from renraku.services import absences
from tests.db_fixtures import Database
from tests.test_guardian_authz import Client
from tests.web_fixtures import Portal
from tests.web_world import NOW, PASSWORD, World, build_world


def test_school_year_runs_april_to_march() -> None:
    assert school_year_of(date(2027, 3, 31)) == 2026
    assert school_year_of(date(2027, 4, 1)) == 2027
    assert school_year_days(2026) == (date(2026, 4, 1), date(2027, 3, 31))


def _draft(child: int, day: date, kind: ReportKind = ReportKind.ABSENCE,
           memo: str = "") -> absences.ReportDraft:
    return absences.ReportDraft(child, day, kind, ReportReason.ILLNESS, memo=memo)


async def _reports(db: Database, world: World) -> dict[str, int]:
    """Taro: a past phone report by Ken, an upcoming web one changed once, a cancelled one,
    one of the school year before; Hana: one; Jiro (another family): one with a memo."""
    ids: dict[str, int] = {}
    async with transaction(db.sessions) as s:
        past = await absences.submit(s, _draft(world.taro, date(2026, 12, 1)),
                                     channel=Channel.PHONE, guardian_id=world.ken,
                                     now=NOW - timedelta(days=3))
        upcoming = await absences.submit(
            s, _draft(world.taro, date(2026, 12, 7), memo="病院に寄ります"),
            channel=Channel.WEB, guardian_id=world.hanako, now=NOW)
        await absences.change(s, upcoming, absences.ReportDraft(
            world.taro, date(2026, 12, 7), ReportKind.LATE, ReportReason.INJURY,
            datetime(2026, 12, 7, 10, 30).time(), "病院に寄ります"),
            channel=Channel.WEB, guardian_id=world.hanako, now=NOW)
        dropped = await absences.submit(s, _draft(world.taro, date(2026, 12, 8)),
                                        channel=Channel.WEB, guardian_id=world.hanako, now=NOW)
        await absences.cancel(s, dropped, channel=Channel.PHONE, guardian_id=world.ken, now=NOW)
        old = await absences.submit(s, _draft(world.taro, date(2025, 10, 1)),
                                    channel=Channel.PHONE, guardian_id=world.hanako,
                                    now=datetime(2025, 9, 30, 23, 0, tzinfo=UTC))
        hana = await absences.submit(s, _draft(world.hana, date(2026, 12, 9)),
                                     channel=Channel.WEB, guardian_id=world.hanako, now=NOW)
        other = await absences.submit(s, _draft(world.jiro, date(2026, 12, 7),
                                                      memo="佐藤家のメモQZ"),
                                      channel=Channel.WEB, guardian_id=world.sato, now=NOW)
        for name, rep in (("past", past), ("upcoming", upcoming), ("dropped", dropped),
                          ("old", old), ("hana", hana), ("other", other)):
            ids[name] = rep.id
    return ids


@pytest.mark.browser
async def test_history_per_child_change_cancel_and_year(
    browser_portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    ids = await _reports(sqlite_db, world)
    page = await browser_portal.page()
    await browser_portal.login(page, "hanako@example.jp", PASSWORD)
    await page.goto(f"/c/{world.taro}")
    await page.click("nav.sections a[href$='/history']")
    rows = page.locator("#history > li")
    await expect(rows).to_have_count(3)  # this school year: past, upcoming, cancelled
    # Newest day first: the cancelled Tuesday, the changed Monday, the past Tuesday.
    assert [await r.get_attribute("data-report") for r in await rows.all()] == [
        str(ids["dropped"]), str(ids["upcoming"]), str(ids["past"])]
    upcoming = page.locator(f"li[data-report='{ids['upcoming']}']")
    await expect(upcoming.locator(".report-head")).to_contain_text("遅刻")
    await expect(upcoming.locator(".report-head")).to_contain_text("10:30")
    await expect(upcoming.locator(".reason")).to_contain_text("けが")
    await expect(upcoming.locator(".memo")).to_contain_text("病院に寄ります")
    await expect(upcoming.locator(".made")).to_contain_text("山田 花子")
    await expect(upcoming.locator(".changes li")).to_have_count(2)  # reported, changed
    past = page.locator(f"li[data-report='{ids['past']}']")
    await expect(past.locator(".made")).to_contain_text("電話")
    await expect(past.locator(".made")).to_contain_text("山田 健")
    await expect(past.locator(".cancel-form")).to_have_count(0)  # past: read only
    dropped = page.locator(f"li[data-report='{ids['dropped']}']")
    await expect(dropped.locator(".status")).to_contain_text("取り消し")
    await expect(dropped.locator(".cancel-form")).to_have_count(0)
    await dropped.locator("summary").click()
    await expect(dropped.locator(".changes li").nth(1)).to_contain_text("山田 健")
    # Cancel the upcoming one from here: back on the history, marked cancelled.
    await upcoming.locator(".cancel-form button").click()
    await expect(page.locator(".flash.ok")).to_be_visible()
    assert "/history" in page.url
    await expect(upcoming.locator(".status")).to_contain_text("取り消し")
    await expect(upcoming.locator(".changes li")).to_have_count(3)
    # The school year before.
    await page.select_option("#year", "2025")
    await expect(page.locator("#history > li")).to_have_count(1)
    await expect(page.locator(f"li[data-report='{ids['old']}']")).to_be_visible()
    await expect(page.locator(f"li[data-report='{ids['old']}'] .cancel-form")).to_have_count(0)
    async with sqlite_db.sessions() as s:
        report = await s.get_one(AbsenceReport, ids["upcoming"])
        assert report.status == "cancelled"
    # On My page: both children of the family, not the other family's report.
    await page.goto("/settings")
    await page.click("#history-link a")
    await expect(page.locator("#history > li")).to_have_count(4)
    await expect(page.locator(f"li[data-report='{ids['hana']}']")).to_contain_text("山田 花")
    assert await page.locator(f"li[data-report='{ids['other']}']").count() == 0


async def test_history_only_for_own_family(sqlite_db: Database, portal: Portal) -> None:
    world = await build_world(sqlite_db)
    ids = await _reports(sqlite_db, world)
    sato, nobody = Client(portal), Client(portal)
    try:
        await sato.login("sato@example.jp")
        for year in ("", "?year=2025"):
            assert (await sato.get(f"/c/{world.taro}/history{year}"))[0] == 404
        status, html = await sato.get("/history")
        assert status == 200 and "佐藤家のメモQZ" in html
        assert "病院に寄ります" not in html and f'data-report="{ids["past"]}"' not in html
        status, html = await sato.get(f"/c/{world.jiro}/history")
        assert status == 200 and f'data-report="{ids["upcoming"]}"' not in html
        # Cancelling another family's report through the history's form: not found.
        assert await sato.post(f"/c/{world.taro}/absence/{ids['upcoming']}/cancel",
                               {"next": "/history"}) == 404
        assert await sato.post(f"/c/{world.jiro}/absence/{ids['upcoming']}/cancel",
                               {"next": "/history"}) == 404
        assert (await nobody.get("/history"))[0] == 302  # to the login page
        # An open redirect through next= is not possible either.
        status = await sato.post(f"/c/{world.jiro}/absence/{ids['other']}/cancel",
                                 {"next": "https://evil.example/"})
        assert status == 302
    finally:
        await sato.http.close()
        await nobody.http.close()
    async with sqlite_db.sessions() as s:
        assert (await s.get_one(AbsenceReport, ids["upcoming"])).status == "active"
        assert await s.scalar(select(AbsenceReport.status).where(
            AbsenceReport.id == ids["other"])) == "cancelled"
