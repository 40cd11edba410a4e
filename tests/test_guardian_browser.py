"""The guardian portal in a real headless Chromium: registration, login, reports, calendar."""

from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from models import AbsenceReport, FamilyEvent, Guardian, Guardianship, SurveyResponse
from models.db import transaction
from renraku.services import registration
from renraku.services.guardians import link_guardian
from tests.db_fixtures import Database
from tests.factories import make_guardian
from tests.prompts_fixtures import wait_name_rendered
from tests.web_fixtures import PORTAL_NOW, Portal, register_by_qr
from tests.web_world import PASSWORD, build_world

pytestmark = pytest.mark.browser


async def test_qr_registration_first_then_second_guardian(
    browser_portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    page = await register_by_qr(browser_portal, f"/r/{world.token_new}", "鈴木 洋子",
                                "090-3333-0001", "三郎", "yoko@example.jp")
    assert page.url.endswith(f"/c/{world.newkid}")
    await register_by_qr(browser_portal, f"/r/{world.token_new}", "鈴木 一郎", "080-3333-0002",
                         "三郎")
    async with sqlite_db.sessions() as s:
        links = list(await s.scalars(select(Guardianship).where(
            Guardianship.child_id == world.newkid).order_by(Guardianship.position)))
        first = await s.get_one(Guardian, links[0].guardian_id)
    assert [link.position for link in links] == [1, 2]
    assert first.name == "鈴木 洋子" and first.email_verified and first.language == "ja"
    # The absence line will say his name: rendered in the background at registration.
    await wait_name_rendered(browser_portal.app.settings, "すずき さぶろう")
    # The first one can now log in with email and password.
    page = await browser_portal.page()
    await browser_portal.login(page, "yoko@example.jp", "new-pass-123")
    await expect(page.locator("nav.children a[aria-current]")).to_contain_text("三郎")


async def test_fourth_guardian_refused_and_unknown_code(
    browser_portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    async with transaction(sqlite_db.sessions) as s:
        extra = await make_guardian(s, "祖母", "090-4444-0001")
        await link_guardian(s, world.taro, extra.id)  # Taro now has three
    page = await browser_portal.page()
    await page.goto(f"/r/{world.token_taro}")
    await expect(page.locator("#reg-full")).to_be_visible()
    assert await page.locator("#register-form").count() == 0
    await page.goto("/r/not-a-real-token")
    await expect(page.locator("#reg-invalid")).to_be_visible()
    async with transaction(sqlite_db.sessions) as s:  # a lost sheet: the code is replaced
        fresh = await registration.reissue(s, world.newkid, world.class1, PORTAL_NOW)
    await page.goto(f"/r/{world.token_new}")
    await expect(page.locator("#reg-invalid")).to_be_visible()
    await page.goto(f"/r/{fresh.token}")
    await expect(page.locator("#register-form")).to_be_visible()


async def test_landline_cannot_self_register(browser_portal: Portal, sqlite_db: Database) -> None:
    world = await build_world(sqlite_db)
    page = await browser_portal.page()
    await page.goto(f"/r/{world.token_new}")
    await page.fill("#name", "鈴木 家")
    await page.fill("#phone", "03-3000-1234")
    await page.fill("#password", "new-pass-123")
    await page.click("#register-form button[type=submit]")
    await expect(page.locator("#reg-landline")).to_contain_text("03-3000-1234")
    async with sqlite_db.sessions() as s:
        assert await s.scalar(select(Guardian).where(Guardian.name == "鈴木 家")) is None


async def test_login_and_password_reset(browser_portal: Portal, sqlite_db: Database) -> None:
    await build_world(sqlite_db)
    page = await browser_portal.page()
    await browser_portal.login(page, "hanako@example.jp", "wrong-password")
    await expect(page.locator(".flash.error")).to_be_visible()
    await page.click("a[href='/password/forgot']")
    await page.fill("#email", "hanako@example.jp")
    await page.click("#forgot-form button[type=submit]")
    await expect(page.locator("#reset-sent")).to_be_visible()
    mail = await browser_portal.mailbox.wait_for("hanako@example.jp")
    link = re.search(r"http://\S+/password/reset/\S+", browser_portal.mailbox.text(mail))
    assert link
    await page.goto(link.group(0))
    await page.fill("#password", "brand-new-pass")
    await page.click("#reset-form button[type=submit]")
    await expect(page.locator(".flash.ok")).to_be_visible()
    await browser_portal.login(page, "hanako@example.jp", PASSWORD)
    await expect(page.locator(".flash.error")).to_be_visible()  # the old one is gone
    await browser_portal.login(page, "hanako@example.jp", "brand-new-pass")
    await expect(page.locator("nav.children")).to_be_visible()
    await page.goto(link.group(0))  # a used link does not work twice
    await expect(page.locator("#reset-form")).to_have_count(0)


async def test_report_change_cancel_and_calendar(
    browser_portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    page = await browser_portal.page()
    await browser_portal.login(page, "hanako@example.jp", PASSWORD)
    await page.goto(f"/c/{world.taro}/absence/new")
    # A past day is refused (Friday 2026-12-04 09:30 now: from today on).
    await page.eval_on_selector("#day", "e => e.removeAttribute('min')")  # past the browser
    await page.fill("#day", "2026-12-03")
    await page.click("#absence-form button[type=submit]")
    await expect(page.locator(".flash.error")).to_be_visible()
    # Friday to Tuesday: three school days, three reports.
    await page.fill("#day", "2026-12-04")
    await page.fill("#until", "2026-12-08")
    await page.check("input[name=kind][value=absence]")
    await page.select_option("#reason", "illness")
    await page.fill("#memo", "熱があります")
    await page.click("#absence-form button[type=submit]")
    await expect(page.locator("#month-title")).to_contain_text("12")
    await expect(page.locator("td[data-day='2026-12-07'] .mark.report")).to_have_count(1)
    await expect(page.locator("td[data-day='2026-12-05'] .mark.report")).to_have_count(0)
    async with sqlite_db.sessions() as s:
        reports = list(await s.scalars(select(AbsenceReport).where(
            AbsenceReport.child_id == world.taro).order_by(AbsenceReport.day)))
    assert [r.day for r in reports] == [date(2026, 12, 4), date(2026, 12, 7), date(2026, 12, 8)]
    assert {r.channel for r in reports} == {"web"}
    # Change Monday to a late arrival at 10:30.
    await page.goto(f"/c/{world.taro}/absence/{reports[1].id}")
    await page.check("input[name=kind][value=late]")
    await page.fill("#at_time", "10:30")
    await page.click("#absence-form button[type=submit]")
    await expect(page.locator(".flash.ok")).to_be_visible()
    # Cancel Tuesday.
    await page.goto(f"/c/{world.taro}/absence/{reports[2].id}")
    await page.click("#cancel-form button[type=submit]")
    await expect(page.locator("td[data-day='2026-12-08'] .mark.report")).to_have_count(0)
    await expect(page.locator("td[data-day='2026-12-07'] .mark.report")).to_contain_text("遅刻")
    # The cancelled class event is marked; the next month is one click away.
    await expect(page.locator("td[data-day='2026-12-09'] .mark.cancelled")).to_have_count(1)
    await page.click("a[rel=next]")
    await expect(page.locator("#month-title")).to_contain_text("2027")
    async with sqlite_db.sessions() as s:
        rows = {r.id: r for r in await s.scalars(select(AbsenceReport).where(
            AbsenceReport.child_id == world.taro))}
        assert rows[reports[1].id].kind == "late" and rows[reports[1].id].at_time is not None
        assert rows[reports[2].id].status == "cancelled"


async def test_family_event_only_for_that_family(
    browser_portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    page = await browser_portal.page()
    await browser_portal.login(page, "hanako@example.jp", PASSWORD)
    await page.goto(f"/c/{world.taro}/family/new?day=2026-12-12")
    await page.fill("#title", "歯医者")
    await page.fill("#start", "15:00")
    await page.fill("#end", "16:00")
    await page.click("#family-form button[type=submit]")
    await expect(page.locator("td[data-day='2026-12-12'] .mark.family")).to_contain_text("歯医者")
    # The other guardian of Taro sees it; the other family does not.
    other = await browser_portal.page()
    await browser_portal.login(other, "ken@example.jp", PASSWORD)
    await other.goto(f"/c/{world.taro}/calendar")
    await expect(other.locator(".mark.family")).to_have_count(1)
    stranger = await browser_portal.page()
    await browser_portal.login(stranger, "sato@example.jp", PASSWORD)
    await stranger.goto(f"/c/{world.jiro}/calendar")
    await expect(stranger.locator(".mark.family")).to_have_count(0)
    async with sqlite_db.sessions() as s:
        assert await s.scalar(select(FamilyEvent.title)) == "歯医者"


async def test_switching_siblings(browser_portal: Portal, sqlite_db: Database) -> None:
    world = await build_world(sqlite_db)
    page = await browser_portal.page()
    await browser_portal.login(page, "hanako@example.jp", PASSWORD)
    await expect(page.locator("nav.children a")).to_have_count(2)
    await expect(page.locator("nav.children a[aria-current]")).to_contain_text("太郎")
    await page.click(f"nav.children a[data-child='{world.hana}']")
    await expect(page.locator("nav.children a[aria-current]")).to_contain_text("花")
    await expect(page.locator("h1")).to_contain_text("3年2組")
    await expect(page.locator(".notice")).to_contain_text(["3年生 校外学習", "冬休みのお知らせ"])
    await page.click(f"nav.children a[data-child='{world.taro}']")
    await expect(page.locator(".notice")).to_have_count(1)  # no grade-3 notice for Taro


async def test_survey_answered_by_primary(browser_portal: Portal, sqlite_db: Database) -> None:
    world = await build_world(sqlite_db)
    page = await browser_portal.page()
    await browser_portal.login(page, "hanako@example.jp", PASSWORD)
    await page.goto(f"/c/{world.taro}/surveys")
    await page.check(f"input[name=q{world.question}][value='1']")
    await page.click(".survey form button[type=submit]")
    await expect(page.locator(".flash.ok")).to_be_visible()
    second = await browser_portal.page()
    await browser_portal.login(second, "ken@example.jp", PASSWORD)
    await second.goto(f"/c/{world.taro}/surveys")
    await expect(second.locator(".survey form")).to_have_count(0)
    await expect(second.locator(".answer")).to_have_text("はい")
    async with sqlite_db.sessions() as s:
        response = await s.scalar(select(SurveyResponse))
    assert response is not None
    assert (response.child_id, response.guardian_id, response.channel) == (
        world.taro, world.hanako, "web")


async def test_sibling_code_joins_the_same_account(
    browser_portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    page = await browser_portal.page()
    await browser_portal.login(page, "sato@example.jp", PASSWORD)
    await page.goto(f"/r/{world.token_new}")
    await page.click("#add-child-form button[type=submit]")
    await expect(page.locator("nav.children a")).to_have_count(2)
    # Not signed in and the same email: asked to log in instead of a second account.
    fresh = await browser_portal.page()
    await fresh.goto(f"/r/{world.token_hana}")
    await fresh.fill("#name", "佐藤 良子")
    await fresh.fill("#email", "sato@example.jp")
    await fresh.fill("#phone", "090-2222-0009")
    await fresh.fill("#password", "whatever-123")
    await fresh.click("#register-form button[type=submit]")
    await expect(fresh.locator("#reg-existing")).to_be_visible()


async def test_360px_no_horizontal_overflow(browser_portal: Portal, sqlite_db: Database) -> None:
    world = await build_world(sqlite_db)
    page = await browser_portal.page(width=360, height=740)
    pages = ["/", "/login", "/password/forgot", "/staff/login", f"/r/{world.token_new}"]
    for path in pages:
        await page.goto(path)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360, path
    await browser_portal.login(page, "hanako@example.jp", PASSWORD)
    for path in [f"/c/{world.taro}", f"/c/{world.taro}/calendar", f"/c/{world.taro}/absence/new",
                 f"/c/{world.taro}/surveys", f"/c/{world.taro}/family/new",
                 f"/c/{world.taro}/profile", "/settings"]:
        for lang in ("en", "es"):  # the longest words
            await page.goto(f"/lang/{lang}?next={path}")
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, (path, lang, width)
    await page.screenshot(path=str(browser_portal.app.settings.data_dir / "calendar-360.png"))


async def test_keyboard_only_login_and_report(browser_portal: Portal, sqlite_db: Database) -> None:
    world = await build_world(sqlite_db)
    page = await browser_portal.page(width=360, height=740)
    await page.goto("/login")
    for _ in range(30):  # Tab from the top of the page to the first field of the form
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.id") == "identifier":
            break
    else:
        raise AssertionError("Tab never reached the login form")
    await page.keyboard.type("hanako@example.jp")
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.locator("nav.children")).to_be_visible()
    await page.goto(f"/c/{world.taro}/absence/new")
    await page.focus("#memo")
    await page.keyboard.type("keyboard")
    for _ in range(5):  # on to the submit button, then Enter
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.type") == "submit":
            break
    await page.keyboard.press("Enter")
    await expect(page.locator("#month-title")).to_be_visible()
    async with sqlite_db.sessions() as s:
        assert await s.scalar(select(AbsenceReport.memo)) == "keyboard"
