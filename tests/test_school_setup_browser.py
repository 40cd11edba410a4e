"""A school from an EMPTY database in real Chromium: ``renraku db upgrade``, ``school
create`` and ``staff create --admin`` on the command line; the admin follows the printed
set-password link, logs in and sets the school's reading and cutoff on the settings page."""

from __future__ import annotations

from datetime import time

import pytest
from playwright.async_api import expect
from sqlalchemy import func, select

from models import Child, School
from tests.fresh_school import first_admin, set_reading_and_cutoff
from tests.web_fixtures import Portal

pytestmark = pytest.mark.browser


async def test_first_admin_sets_up_the_school(fresh_portal: Portal) -> None:
    portal = fresh_portal
    page, link = await first_admin(portal, ["--name", "さくら市立さくら小学校"],
                                   "head@sakura.example.jp", "head-password-1")
    await page.click("nav.staff-nav a[href='/staff/school']")
    await expect(page.locator("#school-name")).to_have_value("さくら市立さくら小学校")
    await expect(page.locator("#school-cutoff")).to_have_value("20:00")  # the default
    await set_reading_and_cutoff(page, "さくらしりつさくらしょうがっこう", "19:30")
    assert "⟦" not in await page.content()
    # The link was for one use only.
    again = await (await portal.page()).goto(link)
    assert again is not None and again.status == 410
    async with portal.app.sessions() as s:
        school = await s.get_one(School, 1)
        assert (school.reading, school.phone_cutoff) == (
            "さくらしりつさくらしょうがっこう", time(19, 30))
        assert await s.scalar(select(func.count()).select_from(Child)) == 0  # no demo
