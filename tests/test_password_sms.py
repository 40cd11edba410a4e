"""Password reset by SMS code for guardians without email: in Chromium end to end; over HTTP
the same answer for unknown numbers, expiry, single use, limited tries, rate limits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.async_api import expect
from sqlalchemy import func, select

from models import Child, Guardian, SmsMessage
from models.db import transaction
from renraku.services.passwords import hash_password, verify_password
from tests.db_fixtures import Database
from tests.factories import make_guardian
from tests.test_guardian_authz import CSRF, Client
from tests.web_fixtures import Portal
from tests.web_world import World, build_world

PHONE, E164 = "080-7777-0001", "+818077770001"


async def _phone_only_guardian(db: Database, world: World) -> int:
    async with transaction(db.sessions) as s:
        child = await s.get_one(Child, world.newkid)
        guardian = await make_guardian(s, "鈴木 ハナ", PHONE, "ja", (child,))
        guardian.password_hash = hash_password("old-pass-123")
        return guardian.id


async def _sms_count(db: Database, e164: str) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(SmsMessage).where(
            SmsMessage.to_e164 == e164)) or 0)


@pytest.mark.browser
async def test_reset_by_sms_code_in_the_browser(browser_portal: Portal,
                                                 sqlite_db: Database) -> None:
    world = await build_world(sqlite_db)
    gid = await _phone_only_guardian(sqlite_db, world)
    page = await browser_portal.page()
    await page.goto("/login")
    await page.click("a[href='/password/forgot']")
    await page.click("#sms-reset-link a")
    await page.fill("#phone", "03-3000-0001")  # a landline gets no SMS: said so
    await page.click("#sms-number-form button[type=submit]")
    await expect(page.locator("#sms-error")).to_contain_text("070")
    await page.fill("#phone", PHONE)
    await page.click("#sms-number-form button[type=submit]")
    await expect(page.locator(".flash.ok")).to_contain_text("15")
    code = await browser_portal.sms_code(E164)
    await page.fill("#code", "000000" if code != "000000" else "111111")
    await page.fill("#password", "brand-new-pass")
    await page.click("#sms-code-form button[type=submit]")
    await expect(page.locator("#sms-error")).to_be_visible()
    await page.fill("#code", code)
    await page.fill("#password", "brand-new-pass")
    await page.click("#sms-code-form button[type=submit]")
    await expect(page.locator(".flash.ok")).to_be_visible()
    await browser_portal.login(page, PHONE, "old-pass-123")
    await expect(page.locator(".flash.error")).to_be_visible()
    await browser_portal.login(page, PHONE, "brand-new-pass")
    await expect(page.locator("nav.children")).to_contain_text("三郎")
    async with sqlite_db.sessions() as s:
        guardian = await s.get_one(Guardian, gid)
    assert guardian.email is None and verify_password(guardian.password_hash, "brand-new-pass")


async def _send(client: Client, phone: str) -> tuple[int, str]:
    assert await client.post("/password/sms", {"phone": phone}) == 303
    status, html = await client.get("/password/sms")
    return status, CSRF.sub("", html)


async def _verify(client: Client, code: str, password: str = "another-pass-1") -> int:
    return await client.post("/password/sms/verify", {"code": code, "password": password})


async def test_reset_by_sms_reveals_nothing_expires_and_is_limited(
    portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    await _phone_only_guardian(sqlite_db, world)
    known, unknown = Client(portal), Client(portal)
    try:
        # A registered and an unregistered mobile get the very same answer.
        assert await _send(known, PHONE) == await _send(unknown, "080-7777-0999")
        assert await _sms_count(sqlite_db, "+818077770999") == 0
        assert await _verify(unknown, "123456") == 400
        # Expired after 15 minutes.
        code = await portal.sms_code(E164)
        portal.clock.advance(timedelta(minutes=16))
        assert await _verify(known, code) == 400
        # A new code; five wrong tries use it up, then even the right one fails.
        await _send(known, PHONE)
        code = await portal.sms_code(E164)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        assert [await _verify(known, wrong) for _ in range(5)] == [400] * 5
        assert await _verify(known, code) == 400
        # The third code works, once.
        await _send(known, PHONE)
        code = await portal.sms_code(E164)
        assert await _verify(known, code) == 302
        # A fourth code for this number within the hour: refused, from anywhere.
        assert await unknown.post("/password/sms", {"phone": PHONE}) == 429
        assert await _sms_count(sqlite_db, E164) == 3
        # Ten numbers an hour from one address: Hanako's own is refused after that.
        for n in range(5):
            assert await unknown.post("/password/sms", {"phone": f"080-7777-10{n:02d}"}) == 303
        assert await unknown.post("/password/sms", {"phone": "090-1111-0001"}) == 429
        assert await _sms_count(sqlite_db, "+819011110001") == 0
    finally:
        await known.http.close()
        await unknown.http.close()
    async with sqlite_db.sessions() as s:
        guardian = await s.scalar(select(Guardian).where(Guardian.name == "鈴木 ハナ"))
        assert guardian is not None
        assert verify_password(guardian.password_hash, "another-pass-1")
