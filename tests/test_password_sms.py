"""Password reset by SMS code for guardians without email: in Chromium end to end; over HTTP
the same answer for unknown numbers, expiry, single use, limited tries, rate limits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.async_api import expect
from sqlalchemy import func, select
from yarl import URL

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


async def _verify_page(client: Client, code: str, password: str = "another-pass-1"
                       ) -> tuple[int, str]:
    status, html = await client.send("/password/sms/verify",
                                     {"code": code, "password": password})
    return status, CSRF.sub("", html)


async def test_reset_code_single_use_and_tries_limited_per_number_and_address(
    portal: Portal, sqlite_db: Database
) -> None:
    """A used code fails when the old session cookie is replayed; wrong codes lock the
    number after ten (across its codes: three codes of five tries would allow fifteen) and
    the address after fifty (across numbers, registered or not); a locked address still
    lets a right code in; unknown numbers get the same answers as registered ones."""
    world = await build_world(sqlite_db)
    gid = await _phone_only_guardian(sqlite_db, world)
    async with transaction(sqlite_db.sessions) as s:
        child = await s.get_one(Child, world.taro)
        other = await make_guardian(s, "山田 ケン", "080-7777-0002", "ja", (child,))
        other.password_hash = hash_password("old-pass-123")
    first, replay, guesser, prober, owner = (Client(portal) for _ in range(5))
    clients = (first, replay, guesser, prober, owner)
    try:
        # Single use: the session cookie from before the reset, replayed with the code.
        await _send(first, PHONE)
        code = await portal.sms_code(E164)
        replay.http.cookie_jar.update_cookies(
            first.http.cookie_jar.filter_cookies(URL(portal.base_url)))
        assert await _verify(first, code, "first-new-pass") == 302
        assert await _verify(replay, code, "attacker-pass-1") == 400
        # Ten wrong codes for one number (the replay was one), over two codes: the number
        # is locked, and the right code of the second is refused too.
        pages = []
        for tries in (5, 4):
            await _send(guesser, PHONE)
            code = await portal.sms_code(E164)
            wrong = f"{(int(code) + 1) % 1_000_000:06d}"
            pages += [await _verify_page(guesser, wrong) for _ in range(tries)]
        assert [status for status, _html in pages] == [400] * 8 + [429]
        assert await _verify(guesser, code) == 429
        assert await _sms_count(sqlite_db, E164) == 3  # and three codes an hour at most
        assert await guesser.post("/password/sms", {"phone": PHONE}) == 429
        # Unregistered numbers answer as a registered one does, and count the same: four
        # of them take this address to fifty failures.
        for n in range(4):
            await _send(prober, f"080-7777-20{n:02d}")
            probed = [await _verify_page(prober, "123456") for _ in range(10)]
            assert [status for status, _html in probed] == [400] * 9 + [429], n
            assert (probed[0], probed[-1]) == (pages[0], pages[-1]), n
        assert await _sms_count(sqlite_db, "+818077772000") == 0
        # The address is locked for wrong codes only: another family's right code gets in
        # (its ninth code request this hour: one more is allowed from here).
        await _send(owner, "080-7777-0002")
        other_code = await portal.sms_code("+818077770002")
        wrong = f"{(int(other_code) + 1) % 1_000_000:06d}"
        assert (await _verify_page(owner, wrong))[0] == 429
        assert await _verify(owner, other_code, "owner-new-pass") == 302
    finally:
        for client in clients:
            await client.http.close()
    async with sqlite_db.sessions() as s:
        first_guardian = await s.get_one(Guardian, gid)
        assert verify_password(first_guardian.password_hash, "first-new-pass")
        other_guardian = await s.scalar(select(Guardian).where(Guardian.name == "山田 ケン"))
        assert other_guardian is not None
        assert verify_password(other_guardian.password_hash, "owner-new-pass")
