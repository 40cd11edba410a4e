"""Sessions: cookie flags, idle and absolute timeouts, sign-out everywhere, new ids on access."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from models import Staff
from models.db import transaction
from renraku.app import App
from renraku.clock import FakeClock
from renraku.services import verification
from renraku.services.passwords import hash_password
from renraku.settings import Settings, ensure_secret
from tests.db_fixtures import Database
from tests.test_guardian_authz import Client
from tests.web_fixtures import PORTAL_NOW, Portal
from tests.web_world import World, build_world
from webportal.app import create_app
from webportal.security import unsign

STAFF_PW = "staff-pass-123"


@pytest.fixture
async def world(sqlite_db: Database) -> World:
    world = await build_world(sqlite_db)
    async with transaction(sqlite_db.sessions) as s:
        for name, role in (("admin", "admin"), ("mori", "teacher")):
            s.add(Staff(school_id=world.school, name=name, email=f"{name}@school.test",
                        password_hash=hash_password(STAFF_PW), role=role))
    return world


@pytest.fixture
async def clients(portal: Portal) -> AsyncIterator[Any]:
    made: list[Client] = []

    def make() -> Client:
        made.append(Client(portal))
        return made[-1]

    yield make
    for c in made:
        await c.http.close()


def _session(portal: Portal, client: Client) -> dict[str, Any]:
    cookie = client.http.cookie_jar.filter_cookies(URL(portal.base_url))["renraku_session"]
    data = unsign(portal.app.settings.secret_key.encode(), cookie.value)
    assert data is not None
    return data


async def test_cookie_and_headers_secure_over_https(sqlite_db: Database) -> None:
    for url, secure in (("https://school.example", True), ("http://127.0.0.1:8080", False)):
        app = App(Settings(public_url=url, testing=True, secret_key="k"),
                  FakeClock(PORTAL_NOW), sqlite_db.engine, sqlite_db.sessions)
        async with TestClient(TestServer(create_app(app))) as client:
            resp = await client.get("/login")
            cookie = resp.cookies["renraku_session"]
            assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
            assert bool(cookie["secure"]) is secure, url
            assert ("Strict-Transport-Security" in resp.headers) is secure, url
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.headers["Referrer-Policy"] == "same-origin"
            assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


async def test_staff_sessions_end_after_30_idle_minutes_and_12_hours(
    world: World, portal: Portal, clients: Any
) -> None:
    staff = clients()
    await staff.login("mori@school.test", STAFF_PW, "/staff/login", "email")
    portal.clock.advance(timedelta(minutes=29))
    assert (await staff.get("/staff/"))[0] == 200
    portal.clock.advance(timedelta(minutes=31))
    status, _page = await staff.get("/staff/")
    assert status == 302  # to the staff login page
    await staff.login("mori@school.test", STAFF_PW, "/staff/login", "email")
    for _ in range(12 * 3):  # busy all day: a request every 20 minutes
        portal.clock.advance(timedelta(minutes=20))
        if (await staff.get("/staff/"))[0] != 200:
            break
    assert portal.clock.now() - PORTAL_NOW >= timedelta(hours=12 + 1)
    assert (await staff.get("/staff/"))[0] == 302


async def test_guardian_sessions_last_longer_but_not_forever(
    world: World, portal: Portal, clients: Any
) -> None:
    family = clients()
    await family.login("hanako@example.jp")
    portal.clock.advance(timedelta(hours=8))  # the next morning
    assert (await family.get("/settings"))[0] == 200
    portal.clock.advance(timedelta(days=15))
    assert (await family.get("/settings"))[0] == 302
    await family.login("hanako@example.jp")
    for _ in range(3):
        portal.clock.advance(timedelta(days=9))
        assert (await family.get("/settings"))[0] == 200
    portal.clock.advance(timedelta(days=4))
    assert (await family.get("/settings"))[0] == 302  # 31 days after signing in


async def test_a_new_password_signs_out_every_browser(
    sqlite_db: Database, world: World, portal: Portal, clients: Any
) -> None:
    phone, laptop, fresh = clients(), clients(), clients()
    for c in (phone, laptop):
        await c.login("hanako@example.jp")
        assert (await c.get("/settings"))[0] == 200
    async with transaction(sqlite_db.sessions) as s:
        row, code = await verification.issue(
            s, world.hanako, "reset", "hanako@example.jp", portal.clock.now(),
            ensure_secret(portal.app.settings, "secret_key"))
    assert await fresh.post(f"/password/reset/{row.id}/{code}",
                            {"password": "kumo-no-ue-8"}) == 302
    for c in (phone, laptop):
        assert (await c.get("/settings"))[0] == 302
    await phone.login("hanako@example.jp", "kumo-no-ue-8")
    assert (await phone.get("/settings"))[0] == 200


async def test_changed_access_means_a_new_session(
    world: World, portal: Portal, clients: Any
) -> None:
    admin, teacher, family = clients(), clients(), clients()
    await admin.login("admin@school.test", STAFF_PW, "/staff/login", "email")
    await teacher.login("mori@school.test", STAFF_PW, "/staff/login", "email")
    async with portal.app.sessions() as s:
        from sqlalchemy import select

        mori = await s.scalar(select(Staff.id).where(Staff.email == "mori@school.test"))
        admin_id = await s.scalar(select(Staff.id).where(Staff.email == "admin@school.test"))
    status, _page = await admin.get("/staff/accounts")
    assert status == 200
    assert await admin.post(f"/staff/accounts/{mori}/classes",
                            {"class_id": str(world.class1)}) == 303
    assert (await teacher.get("/staff/"))[0] == 302  # signs in again, with the new classes
    before = _session(portal, admin)["sid"]
    assert await admin.post(f"/staff/accounts/{admin_id}/classes",
                            {"class_id": str(world.class3)}) == 303
    assert _session(portal, admin)["sid"] != before  # their own: a new id, still signed in
    assert (await admin.get("/staff/accounts"))[0] == 200

    await family.login("hanako@example.jp")
    before = _session(portal, family)["sid"]
    assert await family.post(f"/r/{world.token_new}/add", {"relation": "mother"}) == 302
    assert _session(portal, family)["sid"] != before
