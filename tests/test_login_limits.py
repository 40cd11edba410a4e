"""Sign-in and code limits count failures, per account and per address, in the database.

Families share addresses (a parents' evening on the school Wi-Fi, carrier NAT): everyone
with the right password gets in; only wrong passwords lock, and the lock is shown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web

from models import Staff
from models.db import transaction
from renraku.services.passwords import hash_password
from renraku.services.throttle import ACCOUNT_FAILURES, ADDRESS_FAILURES
from tests.db_fixtures import Database
from tests.factories import make_guardian, make_school
from tests.test_guardian_authz import Client
from tests.web_fixtures import Portal, free_port
from webportal.app import create_app

PASSWORD = "family-pass-1"
LOCKED = "試行回数が多すぎます"  # the lock message in Japanese, the default language


async def _families(db: Database, count: int) -> list[str]:
    pw = hash_password(PASSWORD)
    emails = [f"parent{i}@example.jp" for i in range(count)]
    async with transaction(db.sessions) as s:
        for i, email in enumerate(emails):
            g = await make_guardian(s, f"保護者{i}", f"090-3000-{i:04d}", email=email)
            g.password_hash = pw
    return emails


@pytest.fixture
async def client(portal: Portal) -> AsyncIterator[Client]:
    c = Client(portal)
    yield c
    await c.http.close()


async def _login(client: Client, ident: str, password: str = PASSWORD) -> tuple[int, str]:
    client.http.cookie_jar.clear()  # each attempt as a fresh browser on the same address
    return await client.send("/login", {"identifier": ident, "password": password})


async def test_twelve_families_on_one_address_all_get_in(
    sqlite_db: Database, portal: Portal, client: Client
) -> None:
    emails = await _families(sqlite_db, 12)
    for email in emails:
        for _ in range(2):  # signing in again later the same evening
            assert (await _login(client, email))[0] == 302, email


async def test_wrong_passwords_lock_the_account_not_its_neighbours(
    sqlite_db: Database, portal: Portal, client: Client
) -> None:
    victim, neighbour = await _families(sqlite_db, 2)
    for _ in range(ACCOUNT_FAILURES.events - 1):
        status, _page = await _login(client, victim, "guess")
        assert status == 401
    status, page = await _login(client, victim, "guess")
    assert status == 429 and LOCKED in page and "15 分後" in page
    # Locked: even the right password waits; the family next to them gets in.
    status, page = await _login(client, victim)
    assert status == 429 and LOCKED in page
    assert (await _login(client, neighbour))[0] == 302
    portal.clock.advance(ACCOUNT_FAILURES.window + timedelta(seconds=1))
    assert (await _login(client, victim))[0] == 302


async def test_a_success_forgets_the_accounts_failures(
    sqlite_db: Database, portal: Portal, client: Client
) -> None:
    (email,) = await _families(sqlite_db, 1)
    for _ in range(3):  # a parent who mistypes now and then is never locked out
        for _ in range(ACCOUNT_FAILURES.events - 1):
            assert (await _login(client, email, "typo"))[0] == 401
        assert (await _login(client, email))[0] == 302


async def test_a_guessing_address_is_refused_wrong_passwords_but_right_ones_get_in(
    sqlite_db: Database, portal: Portal, client: Client
) -> None:
    email, other = await _families(sqlite_db, 2)
    per_name = ACCOUNT_FAILURES.events - 1
    for i in range(ADDRESS_FAILURES.events):  # a spray over many names, none locked alone
        status, _page = await _login(client, f"name{i // per_name}@example.jp", "123456")
    assert status == 429
    status, page = await _login(client, email, "wrong")
    assert status == 429 and LOCKED in page
    assert (await _login(client, other))[0] == 302
    assert (await _login(client, email))[0] == 302


async def test_every_worker_sees_the_same_lock(
    sqlite_db: Database, portal: Portal, client: Client
) -> None:
    (email,) = await _families(sqlite_db, 1)
    port = free_port()
    runner = web.AppRunner(create_app(portal.app), access_log=None)  # a second worker
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    other = Client(portal)
    other.base = f"http://127.0.0.1:{port}"
    try:
        for worker in [client, other] * (ACCOUNT_FAILURES.events // 2):
            await _login(worker, email, "guess")
        assert (await _login(other, email))[0] == 429
        assert (await _login(client, email))[0] == 429
    finally:
        await other.http.close()
        await runner.cleanup()


async def test_staff_login_counts_failures(
    sqlite_db: Database, portal: Portal, client: Client
) -> None:
    async with transaction(sqlite_db.sessions) as s:
        school = await make_school(s)
        for name in ("mori", "kato"):
            s.add(Staff(school_id=school.id, name=name, email=f"{name}@school.test",
                        password_hash=hash_password("staff-pass-1"), role="teacher"))

    async def login(email: str, password: str = "staff-pass-1") -> tuple[int, str]:
        client.http.cookie_jar.clear()
        return await client.send("/staff/login", {"email": email, "password": password})

    for _ in range(12):
        assert (await login("kato@school.test"))[0] == 302
    for _ in range(ACCOUNT_FAILURES.events - 1):
        assert (await login("mori@school.test", "guess"))[0] == 401
    assert (await login("mori@school.test", "guess"))[0] == 429
    status, page = await login("mori@school.test")
    assert status == 429 and LOCKED in page
    assert (await login("kato@school.test"))[0] == 302


async def test_wrong_codes_lock_code_entry(
    sqlite_db: Database, portal: Portal, client: Client
) -> None:
    (email,) = await _families(sqlite_db, 1)
    assert (await _login(client, email))[0] == 302
    for _ in range(ACCOUNT_FAILURES.events - 1):
        status, _page = await client.send("/settings/phone/verify", {"code": "000000"})
        assert status == 400
    status, page = await client.send("/settings/phone/verify", {"code": "000000"})
    assert status == 429 and LOCKED in page
