"""A school from an EMPTY database in real Chromium: ``renraku db upgrade``, ``school
create`` and ``staff create --admin`` on the command line; the admin follows the printed
set-password link, logs in and sets the school's reading and cutoff on the settings page."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import func, select

from models import Child, School
from models.db import create_engine, session_factory
from tests.db_fixtures import Database
from tests.test_cli import renraku
from tests.web_fixtures import PORTAL_NOW, Mailbox, _start_portal

pytestmark = pytest.mark.browser


async def test_first_admin_sets_up_the_school(tmp_path: Path, browser: Any,
                                              smtp_server: Mailbox) -> None:
    data = tmp_path / "var"
    assert renraku("db", "upgrade", data_dir=data).returncode == 0
    url = f"sqlite+aiosqlite:///{data / 'renraku.db'}"
    engine = create_engine(url)
    portal, runner = await _start_portal(Database("sqlite", url, engine, session_factory(engine)),
                                         smtp_server, tmp_path)
    portal.browser = browser
    try:
        # The CLI as the installer runs it, sharing the portal's secret, clock and address.
        cli_env = {"secret_key": "test-secret-key", "public_url": portal.base_url,
                   "testing": "1", "fake_now": PORTAL_NOW.isoformat()}
        made = renraku("school", "create", "--name", "さくら市立さくら小学校", data_dir=data,
                       **cli_env)
        assert made.returncode == 0 and "school 1 created" in made.stdout, made.stderr
        admin = renraku("staff", "create", "--admin", "head@sakura.example.jp", "--school",
                        "1", "--name", "校長 佐々木", data_dir=data, **cli_env)
        assert admin.returncode == 0, admin.stderr
        [link] = re.findall(r"http://\S+/password/reset/\d+/\S+", admin.stdout)

        page = await portal.page()
        await page.goto(link)
        await page.fill("#password", "head-password-1")
        await page.click("#reset-form button[type=submit]")
        await page.wait_for_url(f"{portal.base_url}/staff/login")
        await page.fill("#email", "head@sakura.example.jp")
        await page.fill("#password", "head-password-1")
        await page.click("#staff-login-form button[type=submit]")
        await page.wait_for_url(f"{portal.base_url}/staff/")
        await page.click("nav.staff-nav a[href='/staff/school']")
        await expect(page.locator("#school-name")).to_have_value("さくら市立さくら小学校")
        await expect(page.locator("#school-cutoff")).to_have_value("20:00")  # the default
        await page.fill("#school-reading", "さくらしりつさくらしょうがっこう")
        await page.fill("#school-cutoff", "19:30")
        await page.click("#school-form button[type=submit]")
        await expect(page.locator("#settings-saved")).to_be_visible()
        await expect(page.locator("#school-reading")).to_have_value(
            "さくらしりつさくらしょうがっこう")
        assert "⟦" not in await page.content()
        # The link was for one use only.
        again = await (await portal.page()).goto(link)
        assert again is not None and again.status == 410
        async with portal.app.sessions() as s:
            school = await s.get_one(School, 1)
            assert (school.reading, school.phone_cutoff) == (
                "さくらしりつさくらしょうがっこう", time(19, 30))
            assert await s.scalar(select(func.count()).select_from(Child)) == 0  # no demo
    finally:
        await portal.close()
        await runner.cleanup()
        await engine.dispose()
