"""Staff portal fixtures: the aiohttp app on a test database, clients logged in as someone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

import webportal.staff
from models import Guardian, Staff
from renraku.app import App
from renraku.clock import FakeClock
from renraku.settings import Settings
from tests.db_fixtures import Database
from webportal.staff import fw

PORTAL_NOW = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)  # Friday 09:30 in Tokyo


class StaffPortal:
    def __init__(self, app: App, web_app: web.Application) -> None:
        self.app = app
        self.web_app = web_app
        self._clients: list[TestClient] = []
        self._server: TestServer | None = None

    async def client(self) -> TestClient:
        if self._server is None:
            self._server = TestServer(self.web_app)
            await self._server.start_server()
        client = TestClient(self._server)
        await client.start_server()
        self._clients.append(client)
        return client

    async def client_as_staff(self, email: str, password: str) -> TestClient:
        client = await self.client()
        async with self.app.sessions() as s:
            staff = await s.scalar(select(Staff).where(Staff.email == email))
        assert staff is not None
        client.session.cookie_jar.update_cookies({"dev_staff": str(staff.id)})
        return client

    async def client_as_guardian(self, email: str) -> TestClient:
        client = await self.client()
        async with self.app.sessions() as s:
            guardian = await s.scalar(select(Guardian).where(Guardian.email == email))
        assert guardian is not None
        return client

    async def base_url(self) -> str:
        if self._server is None:
            await self.client()
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def browser_login_staff(self, browser: Any, email: str, password: str) -> Any:
        """A browser page logged in as this staff member."""
        base = await self.base_url()
        async with self.app.sessions() as s:
            staff = await s.scalar(select(Staff).where(Staff.email == email))
        assert staff is not None
        context = await browser.new_context(accept_downloads=True)
        await context.add_cookies([{"name": "dev_staff", "value": str(staff.id), "url": base}])
        return await context.new_page()

    def use_smtp_port(self, port: int) -> None:
        self.app.settings = self.app.settings.replace(smtp_port=port)

    async def check_guardian_calendar(self, browser: Any, email: str, title: str) -> None:
        """The guardian calendar belongs to the guardian portal; checked once it exists."""

    async def post(self, client: TestClient, path: str, data: dict[str, Any]) -> Any:
        return await client.post(path, data=data, allow_redirects=False)

    async def close(self) -> None:
        for client in self._clients:
            await client.close()


@pytest.fixture
async def staff_portal(sqlite_db: Database) -> AsyncIterator[StaffPortal]:
    settings = Settings(public_url="http://school.test", testing=True)
    app = App(settings, FakeClock(PORTAL_NOW), sqlite_db.engine, sqlite_db.sessions)
    web_app = web.Application()
    web_app[fw.APP_KEY] = app
    webportal.staff.setup(web_app)
    portal = StaffPortal(app, web_app)
    yield portal
    await portal.close()
