"""A school from an EMPTY database, as an installer starts one: ``renraku db upgrade``,
``school create`` and ``staff create --admin`` on the command line, then the first admin
follows the printed set-password link and signs in. Shared by the setup and journey tests.

``fresh_portal``: the web portal (web_fixtures) over a brand-new, migrated SQLite file in
its own data directory, with headless Chromium; ``portal.app.settings.data_dir`` is it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from models.db import create_engine, session_factory
from tests.db_fixtures import Database
from tests.test_cli import renraku
from tests.web_fixtures import Mailbox, Portal, _start_portal

ROSTER_HEADER = "学籍番号,学年,組,出席番号,氏,名,ふりがな,生年月日,性別"
# Three classes: 1年1組 (two children), 1年2組, 2年1組 (two).
ROSTER = [
    "26001,1,1,1,青木,一郎,あおき いちろう,2020-05-01,男",
    "26002,1,1,2,馬場,二郎,ばば じろう,2020-06-01,男",
    "26003,1,2,1,千葉,三郎,ちば さぶろう,2020-07-01,男",
    "25001,2,1,1,土屋,花,つちや はな,2019-08-01,女",
    "25002,2,1,2,夏目,葵,なつめ あおい,2019-09-01,女",
]

# The same with 千葉 三郎's reading left empty (line 4 of the file): refused at the preview.
BAD_ROSTER = [*ROSTER[:2], "26003,1,2,1,千葉,三郎,,2020-07-01,男", *ROSTER[3:]]
BAD_ROW = "4行目：学籍番号26003のふりがなが空欄です"


def write_roster(path: Path, rows: list[str]) -> Path:
    """A roster CSV as a Japanese school-affairs system exports it: CP932, CRLF."""
    path.write_bytes(("\r\n".join([ROSTER_HEADER, *rows]) + "\r\n").encode("cp932"))
    return path


async def preview_roster(page: Any, path: Path) -> None:
    """On the roster page: upload a file for its preview, creating the classes it names."""
    await page.set_input_files("#import-form input[name=file]", str(path))
    await page.check("#import-form input[name=create_classes]")
    await page.click("#import-form button[type=submit]")


@pytest.fixture
async def fresh_portal(tmp_path: Path, browser: Any,
                       smtp_server: Mailbox) -> AsyncIterator[Portal]:
    data = tmp_path / "var"
    upgraded = renraku("db", "upgrade", data_dir=data)
    assert upgraded.returncode == 0, upgraded.stderr
    url = f"sqlite+aiosqlite:///{data / 'renraku.db'}"
    engine = create_engine(url)
    smtp_server.messages.clear()
    portal, runner = await _start_portal(Database("sqlite", url, engine, session_factory(engine)),
                                         smtp_server, data)
    portal.browser = browser
    try:
        yield portal
    finally:
        await portal.close()
        await runner.cleanup()
        await engine.dispose()


def cli(portal: Portal, *args: str) -> str:
    """``renraku ARGS`` on the portal's database, sharing its secret, address and clock."""
    done = renraku(*args, data_dir=portal.app.settings.data_dir, secret_key="test-secret-key",
                   public_url=portal.base_url, testing="1",
                   fake_now=portal.clock.now().isoformat())
    assert done.returncode == 0, done.stderr
    return done.stdout


async def first_admin(portal: Portal, school: list[str], email: str,
                      password: str) -> tuple[Any, str]:
    """School 1 made with ``school create SCHOOL-ARGS`` and its first admin, who sets a
    password through the printed link and signs in: (their page on /staff/, the link)."""
    made = cli(portal, "school", "create", *school)
    assert "school 1 created" in made, made
    printed = cli(portal, "staff", "create", "--admin", email, "--school", "1",
                  "--name", "校長 佐々木")
    [link] = re.findall(r"http://\S+/password/reset/\d+/\S+", printed)
    page = await portal.page()
    await page.goto(link)
    await page.fill("#password", password)
    await page.click("#reset-form button[type=submit]")
    await page.wait_for_url(f"{portal.base_url}/staff/login")
    await portal.login_staff(page, email, password)
    return page, link


async def set_reading_and_cutoff(page: Any, reading: str, cutoff: str) -> None:
    """On the admin's settings page (from the staff menu): saved and shown back."""
    await page.click("nav.staff-nav a[href='/staff/school']")
    await page.fill("#school-reading", reading)
    await page.fill("#school-cutoff", cutoff)
    await page.click("#school-form button[type=submit]")
    await expect(page.locator("#settings-saved")).to_be_visible()
    await expect(page.locator("#school-reading")).to_have_value(reading)
    await expect(page.locator("#school-cutoff")).to_have_value(cutoff)
