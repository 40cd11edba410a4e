"""Web portal fixtures: headless Chromium, a local SMTP server, the portal on a live port.

* ``browser`` (session): Debian's /usr/bin/chromium through Playwright; tests that use it
  are skipped (with the reason) when it is missing. Never downloads a browser.
* ``smtp_server`` (session): aiosmtpd on a free loopback port, collecting every message.
* ``portal``: the whole web app (guardian + staff) on a free loopback port over the test
  SQLite database, with a FakeClock at PORTAL_NOW, the SMS outbox and ``smtp_server``.
  ``portal.page()`` opens a fresh browser context (own cookies) closed after the test.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from sqlalchemy import select

from models import SmsMessage
from renraku.app import App
from renraku.clock import FakeClock
from renraku.settings import Settings
from tests.db_fixtures import Database
from tests.prompts_fixtures import OFFLINE

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
]
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
PORTAL_NOW = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)  # Friday 09:30 in Tokyo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mailbox:
    """What the SMTP server received, newest last."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]

    async def wait_for(self, address: str, count: int = 1, seconds: float = 10) -> EmailMessage:
        for _ in range(int(seconds * 20)):
            found = self.to(address)
            if len(found) >= count:
                return found[-1]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no email #{count} to {address}; got {len(self.to(address))}")

    @staticmethod
    def text(message: EmailMessage) -> str:
        part = message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[Mailbox]:
    box = Mailbox()
    box.port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if not HAVE_CHROMIUM:
        pytest.skip(f"headless Chromium not installed at {CHROMIUM} (make setup installs it)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


class Portal:
    def __init__(self, app: App, base_url: str, mailbox: Mailbox) -> None:
        self.app = app
        self.base_url = base_url
        self.mailbox = mailbox
        self.browser: Any = None
        self._contexts: list[Any] = []

    @property
    def clock(self) -> FakeClock:
        assert isinstance(self.app.clock, FakeClock)
        return self.app.clock

    async def page(self, width: int = 1000, height: int = 900) -> Any:
        """A page in a fresh browser context: its own cookies, i.e. another person."""
        assert self.browser is not None, "use the browser_portal fixture"
        context = await self.browser.new_context(
            viewport={"width": width, "height": height}, base_url=self.base_url,
            locale="ja-JP")
        context.set_default_timeout(10_000)
        self._contexts.append(context)
        return await context.new_page()

    async def login(self, page: Any, identifier: str, password: str) -> None:
        await page.goto("/login")
        await page.fill("#identifier", identifier)
        await page.fill("#password", password)
        await page.click("#login-form button[type=submit]")
        await page.wait_for_load_state()

    async def login_staff(self, page: Any, email: str, password: str) -> None:
        await page.goto("/staff/login")
        await page.fill("#email", email)
        await page.fill("#password", password)
        await page.click("#staff-login-form button[type=submit]")
        await page.wait_for_load_state()

    async def sms_code(self, e164: str) -> str:
        """The six-digit code in the newest SMS to this number (the outbox backend)."""
        async with self.app.sessions() as s:
            body = await s.scalar(select(SmsMessage.body).where(SmsMessage.to_e164 == e164)
                                  .order_by(SmsMessage.id.desc()))
        assert body, f"no SMS to {e164}"
        match = re.search(r"\b(\d{6})\b", body)
        assert match, body
        return match.group(1)

    async def close(self) -> None:
        for context in self._contexts:
            await context.close()


async def _start_portal(db: Database, mailbox: Mailbox, data_dir: Path) -> tuple[Portal, Any]:
    from webportal.app import create_app

    port = free_port()
    settings = Settings(
        data_dir=data_dir, testing=True, secret_key="test-secret-key", web_port=port,
        public_url=f"http://127.0.0.1:{port}", smtp_host="127.0.0.1", smtp_port=mailbox.port,
        smtp_from="school@renraku.test", sms_backend="outbox", **OFFLINE,
    )
    app = App(settings, FakeClock(PORTAL_NOW), db.engine, db.sessions)
    runner = web.AppRunner(create_app(app), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return Portal(app, settings.base_url, mailbox), runner


@pytest.fixture
async def portal(sqlite_db: Database, smtp_server: Mailbox,
                 tmp_path: Path) -> AsyncIterator[Portal]:
    """The portal on a live loopback port (for HTTP clients; see browser_portal)."""
    smtp_server.messages.clear()
    live, runner = await _start_portal(sqlite_db, smtp_server, tmp_path)
    try:
        yield live
    finally:
        await live.close()
        await runner.cleanup()


@pytest.fixture
async def browser_portal(portal: Portal, browser: Any) -> Portal:
    portal.browser = browser
    return portal
