"""Families in a real Chromium (issue 15): siblings at two schools, a child in two classes.

A mother with a son at the elementary school and a daughter at the junior high switches
between them and sees each one's school notices and calendar, never the other school's;
her son is also in the elementary school's special-needs class, whose notice and event he
gets as well.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.async_api import expect

from models import Enrolment, Notice
from models.db import transaction
from renraku.services import events
from renraku.services.passwords import hash_password
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school
from tests.web_fixtures import PORTAL_NOW, Portal

pytestmark = pytest.mark.browser
PASSWORD = "family-pass-1"


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 12, day, hour, 0, tzinfo=UTC)


async def _families(db: Database) -> tuple[int, int]:
    async with transaction(db.sessions) as s:
        elementary = await make_school(s, "さくら小学校")
        junior = await make_school(s, "ひまわり中学校")
        regular = await make_class(s, elementary, "2年1組", 2)
        special = await make_class(s, elementary, "たんぽぽ学級", 0)
        special.special_needs = True
        other_class = await make_class(s, elementary, "2年2組", 2)
        jh_class = await make_class(s, junior, "1年3組", 1)
        son = await make_child(s, elementary, "山田 太郎", "やまだ たろう", regular)
        s.add(Enrolment(child_id=son.id, class_id=special.id))
        daughter = await make_child(s, junior, "山田 美咲", "やまだ みさき", jh_class)
        mum = await make_guardian(s, "山田 花子", "090-1111-0001", children=(son, daughter),
                                  email="hanako@example.jp")
        mum.password_hash = hash_password(PASSWORD)
        for school, scope, room, title in (
            (elementary, "school", None, "さくら小 冬休みのお知らせ"),
            (elementary, "class", special.id, "たんぽぽ学級 クリスマス会"),
            (elementary, "class", other_class.id, "2年2組 学級通信"),
            (junior, "school", None, "ひまわり中 期末テスト"),
        ):
            s.add(Notice(school_id=school.id, scope=scope, class_id=room, title=title,
                         body=title, publish_at=PORTAL_NOW, created_at=PORTAL_NOW))
        for school, room, title, day in (
            (elementary, None, "さくら小 持久走大会", 10),
            (elementary, special.id, "たんぽぽ学級 調理実習", 15),
            (junior, None, "ひまわり中 合唱コンクール", 11),
        ):
            await events.create_event(s, school.id, events.EventDraft(
                title, _at(day, 0), _at(day, 3), class_id=room), None, PORTAL_NOW)
        return son.id, daughter.id


async def test_siblings_at_two_schools_each_see_their_own_school(
    browser_portal: Portal, sqlite_db: Database
) -> None:
    son, daughter = await _families(sqlite_db)
    page = await browser_portal.page()
    await browser_portal.login(page, "hanako@example.jp", PASSWORD)
    children = page.locator("nav.children a")
    await expect(children).to_have_count(2)

    async def open_child(child: int, school: str) -> None:
        await page.click(f"nav.children a[data-child='{child}']")
        await expect(page.locator("nav.children a[aria-current]")).to_have_attribute(
            "data-child", str(child))
        await expect(page.locator("h1")).to_contain_text(school)

    # The son: his school's notice and his special-needs class's, not the junior high's
    await open_child(son, "さくら小学校")
    await expect(page.locator("h1")).to_contain_text("たんぽぽ学級")
    notices = page.locator("article.notice h3")
    # (not 2年2組's, not the junior high's)
    await expect(notices).to_have_text(["たんぽぽ学級 クリスマス会", "さくら小 冬休みのお知らせ"])
    # The daughter: the junior high's notice only
    await open_child(daughter, "ひまわり中学校")
    await expect(notices).to_have_text(["ひまわり中 期末テスト"])

    # The calendar, switching children while on it
    await page.click("nav.sections a[href$='/calendar']")
    month = page.locator("#month-items")
    await expect(month).to_contain_text("ひまわり中 合唱コンクール")
    await expect(month).not_to_contain_text("さくら小")
    await expect(month).not_to_contain_text("たんぽぽ")
    await page.click(f"nav.children a[data-child='{son}']")
    await expect(page).to_have_url(f"{browser_portal.base_url}/c/{son}/calendar")
    await expect(month).to_contain_text("さくら小 持久走大会")
    await expect(month).to_contain_text("たんぽぽ学級 調理実習")
    await expect(month).not_to_contain_text("ひまわり中")
    # and back: the daughter's calendar is the junior high's again
    await page.click(f"nav.children a[data-child='{daughter}']")
    await expect(month).to_contain_text("ひまわり中 合唱コンクール")
    await expect(month).not_to_contain_text("さくら小")
