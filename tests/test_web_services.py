"""Services behind the web portal: primary handover, codes, SMS and mail senders, icons, feed."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image
from sqlalchemy import select

from models import Guardian, GuardianPhone, Guardianship, SmsMessage
from models.db import transaction
from renraku.app import App
from renraku.clock import FakeClock
from renraku.services import portal as portal_svc
from renraku.services import verification
from renraku.services.mail import MailError, send_mail
from renraku.services.sms import SmsError, send_sms
from renraku.settings import Settings
from tests.db_fixtures import Database
from tests.factories import make_child, make_guardian, make_school
from tests.test_guardian_authz import Client
from tests.web_fixtures import PORTAL_NOW, Portal, free_port
from tests.web_world import build_world
from webportal.guardian.account import ICON_SIZE, resize_icon

SECRET = "s3cret"


async def test_hand_primary_with_three_guardians(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        child = await make_child(s, school)
        a = await make_guardian(s, "A", "090-1000-0001", children=(child,))
        b = await make_guardian(s, "B", "090-1000-0002", children=(child,))
        c = await make_guardian(s, "C", "090-1000-0003", children=(child,))
    async with transaction(db.sessions) as s:  # all three places taken: nowhere to park
        await portal_svc.hand_primary(s, child.id, a.id, c.id)
    async with db.sessions() as s:
        rows = {g.guardian_id: g.position for g in await s.scalars(select(Guardianship))}
    assert rows == {c.id: 1, b.id: 2, a.id: 3}
    async with transaction(db.sessions) as s:
        with pytest.raises(portal_svc.NotPrimary):
            await portal_svc.hand_primary(s, child.id, a.id, b.id)


async def test_codes_expire_and_count_attempts(db: Database) -> None:
    async with transaction(db.sessions) as s:
        guardian = await make_guardian(s)
        _row, code = await verification.issue(s, guardian.id, "phone", "+819012345678",
                                              PORTAL_NOW, SECRET)
        assert re.fullmatch(r"\d{6}", code)
        wrong = "000000" if code != "000000" else "111111"
        for _ in range(verification.MAX_ATTEMPTS):
            assert await verification.check(s, guardian.id, "phone", wrong, PORTAL_NOW,
                                            SECRET) is None
        # Five wrong tries burn the code even for the right answer.
        assert await verification.check(s, guardian.id, "phone", code, PORTAL_NOW,
                                        SECRET) is None
        _row, code = await verification.issue(s, guardian.id, "phone", "+819012345678",
                                              PORTAL_NOW, SECRET)
        late = PORTAL_NOW + verification.TTL["phone"] + timedelta(seconds=1)
        assert await verification.check(s, guardian.id, "phone", code, late, SECRET) is None
        assert await verification.check(s, guardian.id, "phone", code, PORTAL_NOW,
                                        SECRET) is not None
        assert await verification.check(s, guardian.id, "phone", code, PORTAL_NOW,
                                        SECRET) is None  # used once


async def _gateway(status: int) -> tuple[web.AppRunner, int, list[dict]]:
    got: list[dict] = []

    async def handle(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.Response(status=status, text="gateway says hi")

    gw = web.Application()
    gw.router.add_post("/sms", handle)
    runner = web.AppRunner(gw, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port, got


async def test_sms_http_backend_records_success_and_failure(sqlite_db: Database) -> None:
    for status, outcome in ((200, "sent"), (500, "failed")):
        runner, port, got = await _gateway(status)
        settings = Settings(sms_backend="http", sms_gateway_url=f"http://127.0.0.1:{port}/sms")
        app = App(settings, FakeClock(PORTAL_NOW), sqlite_db.engine, sqlite_db.sessions)
        try:
            if outcome == "failed":
                with pytest.raises(SmsError):
                    await send_sms(app, "+819012345678", "code 123456")
            else:
                await send_sms(app, "+819012345678", "code 123456")
        finally:
            await runner.cleanup()
        assert got == [{"to": "+819012345678", "body": "code 123456"}]
        async with sqlite_db.sessions() as s:
            row = await s.scalar(select(SmsMessage).order_by(SmsMessage.id.desc()))
        assert row is not None and row.status == outcome
        assert ("500" in row.error) == (outcome == "failed")


async def test_sms_misconfigured_is_recorded_not_dropped(sqlite_db: Database) -> None:
    app = App(Settings(sms_backend="http"), FakeClock(PORTAL_NOW), sqlite_db.engine,
              sqlite_db.sessions)
    with pytest.raises(SmsError):
        await send_sms(app, "+819012345678", "hello")
    async with sqlite_db.sessions() as s:
        row = await s.scalar(select(SmsMessage))
    assert row is not None and row.status == "failed" and "sms_gateway_url" in row.error


async def test_mail_failure_raises() -> None:
    settings = Settings(smtp_host="127.0.0.1", smtp_port=free_port())
    with pytest.raises(MailError):
        await send_mail(settings, "x@example.jp", "subject", "body", now=PORTAL_NOW)


async def test_mail_plain_and_html(portal: Portal) -> None:
    await send_mail(portal.app.settings, "x@example.jp", "件名", "本文", "<p>本文</p>",
                    now=portal.app.clock.now())
    msg = await portal.mailbox.wait_for("x@example.jp")
    assert msg["Subject"] == "件名" and msg["From"] == "school@renraku.test"
    assert portal.mailbox.text(msg).strip() == "本文"
    html = msg.get_body(("html",))
    assert html is not None and "<p>本文</p>" in str(html.get_content())


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def test_icon_resized_and_garbage_refused() -> None:
    icon = Image.open(io.BytesIO(resize_icon(_png(1200, 800))))
    assert icon.format == "JPEG" and icon.size == (ICON_SIZE, ICON_SIZE)
    with pytest.raises(Exception):  # noqa: B017 - Pillow raises several kinds
        resize_icon(b"<svg xmlns='http://www.w3.org/2000/svg'></svg>")


async def _multipart(client: Client, path: str, fields: dict[str, str], file: bytes) -> int:
    import aiohttp

    form = aiohttp.FormData()
    for key, value in {**fields, "csrf_token": await client.token()}.items():
        form.add_field(key, value)
    form.add_field("icon", file, filename="me.png", content_type="image/png")
    async with client.http.post(client.base + path, data=form, allow_redirects=False) as r:
        return r.status


async def test_profile_icon_upload_served_to_own_guardians_only(
    portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    hanako, ken, sato = Client(portal), Client(portal), Client(portal)
    try:
        await hanako.login("hanako@example.jp")
        await ken.login("ken@example.jp")
        await sato.login("sato@example.jp")
        path = f"/c/{world.taro}/profile"
        assert await _multipart(hanako, path, {"display_name": "たろちゃん"}, b"not a pic") == 400
        assert await _multipart(hanako, path, {"display_name": "たろちゃん"}, _png(900, 600)) == 302
        async with ken.http.get(f"{portal.base_url}/c/{world.taro}/icon") as resp:
            assert resp.status == 200 and resp.content_type == "image/jpeg"
            assert Image.open(io.BytesIO(await resp.read())).size == (ICON_SIZE, ICON_SIZE)
        assert (await sato.get(f"/c/{world.taro}/icon"))[0] == 404
        _status, html = await ken.get(f"/c/{world.taro}")
        assert "たろちゃん" in html and f"/c/{world.taro}/icon" in html
        files = list((portal.app.settings.data_dir / "icons").iterdir())
        assert len(files) == 1
    finally:
        for c in (hanako, ken, sato):
            await c.http.close()


async def test_settings_change_phone_email_language_and_feed(
    portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    hanako = Client(portal)
    try:
        await hanako.login("hanako@example.jp")
        # A landline cannot be confirmed by SMS.
        assert await hanako.post("/settings/phone", {"phone": "03-1234-5678"}) == 400
        assert await hanako.post("/settings/phone", {"phone": "080-9999-0001"}) == 302
        code = await portal.sms_code("+818099990001")
        assert await hanako.post("/settings/phone/verify", {"code": code}) == 302
        assert await hanako.post("/settings/email", {"email": "ken@example.jp"}) == 409
        assert await hanako.post("/settings/email", {"email": "hanako2@example.jp"}) == 302
        mail = await portal.mailbox.wait_for("hanako2@example.jp")
        link = re.search(r"http://\S+/verify/email/\S+", portal.mailbox.text(mail))
        assert link
        status, _html = await hanako.get(link.group(0).removeprefix(portal.base_url))
        assert status == 200
        assert await hanako.post("/settings/language", {"language": "es"}) == 302
        assert await hanako.post("/settings/calendar", {}) == 302
        async with sqlite_db.sessions() as s:
            guardian = await s.get_one(Guardian, world.hanako)
            phones = list(await s.scalars(select(GuardianPhone.e164).where(
                GuardianPhone.guardian_id == world.hanako)))
        assert phones == ["+818099990001"]
        assert (guardian.email, guardian.email_verified, guardian.language) == (
            "hanako2@example.jp", True, "es")
        status, ics = await hanako.get(f"/ical/{guardian.calendar_token}.ics")
        assert status == 200 and "運動会" in ics and "STATUS:CANCELLED" in ics
        assert (await hanako.get("/ical/wrong-token.ics"))[0] == 404
    finally:
        await hanako.http.close()


async def test_unfinished_registration_cannot_log_in_nor_block_a_retry(
    portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    form = {"name": "途中 さん", "email": "halfway@example.jp", "phone": "090-5555-0001",
            "password": "halfway-pass-1", "language": "ja"}
    first, second = Client(portal), Client(portal)
    try:
        assert await first.post(f"/r/{world.token_new}", form) == 302
        assert await first.post("/login", {"identifier": "halfway@example.jp",
                                           "password": "halfway-pass-1"}) == 401
        status, _html = await first.get(f"/c/{world.newkid}")
        assert status == 302  # no account session before the SMS code
        assert await second.post(f"/r/{world.token_new}", form) == 302  # not "already taken"
        async with sqlite_db.sessions() as s:
            rows = list(await s.scalars(select(Guardian).where(
                Guardian.email == "halfway@example.jp")))
            assert len(rows) == 1
            assert await s.scalar(select(Guardianship).where(
                Guardianship.child_id == world.newkid)) is None
    finally:
        for c in (first, second):
            await c.http.close()


async def test_require_staff_role_decorator(sqlite_db: Database, tmp_path: Path) -> None:
    """The helper the staff portal builds on: role check, guardians refused, login redirect."""
    from aiohttp.test_utils import TestClient, TestServer

    from renraku.services import staff as staff_svc
    from webportal.app import create_app
    from webportal.security import require_staff, signed_staff

    world = await build_world(sqlite_db)
    async with transaction(sqlite_db.sessions) as s:
        for role in ("teacher", "admin"):
            await staff_svc.create_staff(s, world.school, name=role, email=f"{role}@x.jp",
                                         role=role, password="staff-pass-123", class_ids=[])

    @require_staff("admin")
    async def admin_only(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {signed_staff(request).name}")

    settings = Settings(data_dir=tmp_path, testing=True, secret_key="k")
    web_app = create_app(App(settings, FakeClock(PORTAL_NOW), sqlite_db.engine,
                             sqlite_db.sessions))
    web_app.router.add_get("/staff/admin-only", admin_only)

    async def login(client: TestClient, path: str, data: dict[str, str]) -> None:
        html = await (await client.get(path)).text()
        token = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert token
        resp = await client.post(path, data={**data, "csrf_token": token.group(1)},
                                 allow_redirects=False)
        assert resp.status == 302

    server = TestServer(web_app)
    clients = [TestClient(server) for _ in range(4)]
    anonymous, guardian, teacher, admin = clients
    try:
        for c in clients:
            await c.start_server()
        await login(guardian, "/login", {"identifier": "hanako@example.jp",
                                         "password": "family-pass-1"})
        await login(teacher, "/staff/login", {"email": "teacher@x.jp",
                                              "password": "staff-pass-123"})
        await login(admin, "/staff/login", {"email": "admin@x.jp", "password": "staff-pass-123"})
        resp = await anonymous.get("/staff/admin-only", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"].startswith("/staff/login?next=")
        assert (await guardian.get("/staff/admin-only")).status == 403
        assert (await teacher.get("/staff/admin-only")).status == 403
        resp = await admin.get("/staff/admin-only")
        assert resp.status == 200 and await resp.text() == "hello admin"
    finally:
        for c in clients:
            await c.close()
