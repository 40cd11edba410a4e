"""Staff portal fixtures: the real portal (webportal.app.create_app) on a test database,
with HTTP clients and browser pages that log in through the real login forms.

(tests/web_fixtures.py from the framework has the general ``portal``/``browser`` fixtures;
these add what the staff tests need: a fake clock at a school-day morning and helpers to
log in as a given staff member or guardian.)
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from models import Guardian
from models.db import transaction
from renraku.app import App
from renraku.clock import FakeClock
from renraku.services.passwords import hash_password
from renraku.settings import Settings
from tests.db_fixtures import Database
from tests.prompts_fixtures import OFFLINE
from tests.web_fixtures import staff_sign_in
from webportal.app import create_app

PORTAL_NOW = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)  # Friday 09:30 in Tokyo
GUARDIAN_PASSWORD = "guardian-pass-1"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class StaffPortal:
    def __init__(self, app: App, web_app: web.Application, host: str = "127.0.0.1",
                 port: int | None = None) -> None:
        self.app = app
        self.web_app = web_app
        self.host, self.port = host, port  # an app node of a city has its own address
        self._clients: list[TestClient] = []
        self._contexts: list[Any] = []
        self._server: TestServer | None = None

    async def _started(self) -> TestServer:
        if self._server is None:
            self._server = TestServer(self.web_app, host=self.host, port=self.port)
            await self._server.start_server()
        return self._server

    async def client(self) -> TestClient:
        client = TestClient(await self._started())
        await client.start_server()
        self._clients.append(client)
        return client

    async def base_url(self) -> str:
        return str((await self._started()).make_url("")).rstrip("/")

    @staticmethod
    async def csrf(client: TestClient, path: str = "/staff/login") -> str:
        page = await (await client.get(path)).text()
        found = CSRF.search(page)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    async def client_as_staff(self, email: str, password: str) -> TestClient:
        client = await self.client()
        token = await self.csrf(client)
        r = await client.post("/staff/login", data={
            "csrf_token": token, "email": email, "password": password, "next": "/staff/"},
            allow_redirects=False)
        assert r.status in (302, 303), await r.text()
        client.csrf_token = await self.csrf(client, "/staff/")  # type: ignore[attr-defined]
        return client

    async def client_as_guardian(self, email: str) -> TestClient:
        async with transaction(self.app.sessions) as s:
            guardian = await s.scalar(select(Guardian).where(Guardian.email == email))
            assert guardian is not None
            guardian.password_hash = hash_password(GUARDIAN_PASSWORD)
        client = await self.client()
        token = await self.csrf(client, "/login")
        r = await client.post("/login", data={
            "csrf_token": token, "identifier": email, "password": GUARDIAN_PASSWORD,
            "next": "/"}, allow_redirects=False)
        assert r.status in (302, 303), await r.text()
        return client

    async def post(self, client: TestClient, path: str, data: dict[str, Any]) -> ClientResponse:
        """A form POST with the session's CSRF token, as the page's form would send it."""
        token = getattr(client, "csrf_token", "")
        return await client.post(path, data={"csrf_token": token, **data},
                                 allow_redirects=False)

    async def browser_login_staff(self, browser: Any, email: str, password: str) -> Any:
        """A browser page logged in as this staff member through the login form."""
        base = await self.base_url()
        context = await browser.new_context(accept_downloads=True, locale="ja-JP")
        context.set_default_timeout(10_000)
        self._contexts.append(context)
        page = await context.new_page()
        await staff_sign_in(page, base, email, password)
        return page

    async def browser_login_guardian(self, browser: Any, email: str) -> Any:
        async with transaction(self.app.sessions) as s:
            guardian = await s.scalar(select(Guardian).where(Guardian.email == email))
            assert guardian is not None
            guardian.password_hash = hash_password(GUARDIAN_PASSWORD)
        base = await self.base_url()
        context = await browser.new_context()
        context.set_default_timeout(10_000)
        self._contexts.append(context)
        page = await context.new_page()
        await page.goto(f"{base}/login")
        await page.fill("#identifier", email)
        await page.fill("#password", GUARDIAN_PASSWORD)
        await page.click("#login-form button[type=submit]")
        await page.wait_for_load_state()
        return page

    def use_smtp_port(self, port: int) -> None:
        self.app.settings = self.app.settings.replace(smtp_port=port)

    async def close(self) -> None:
        for context in self._contexts:  # first: ends the pages' live streams
            await context.close()
        for client in self._clients:
            await client.close()
        if self._server is not None:
            await self._server.close()


@pytest.fixture
async def staff_portal(sqlite_db: Database, tmp_path: Any) -> AsyncIterator[StaffPortal]:
    settings = Settings(public_url="http://school.test", testing=True, data_dir=tmp_path,
                        **OFFLINE)
    app = App(settings, FakeClock(PORTAL_NOW), sqlite_db.engine, sqlite_db.sessions)
    portal = StaffPortal(app, create_app(app))
    yield portal
    await portal.close()
