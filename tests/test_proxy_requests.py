"""Proxy registration requests (代理登録依頼): the public form in Chromium with bad input,
a repeated submission and the confirmation; the class teacher's queue, one click into the
pre-filled proxy registration, a rejection with a reason; over HTTP: CSRF, the rate limit,
a form that reads nothing back, and another class's teacher kept out."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import func, select

from models import Guardian, GuardianPhone, Guardianship, ProxyRequest, Staff
from models.db import transaction
from renraku.rules.proxy_request import check_request
from renraku.services import proxy_requests
from renraku.services import staff as staff_svc
from tests.db_fixtures import Database
from tests.test_guardian_authz import Client
from tests.web_fixtures import Portal
from tests.web_world import World, build_world


async def _teachers(db: Database, world: World) -> None:
    async with transaction(db.sessions) as s:
        await staff_svc.create_staff(s, world.school, name="担任 森", email="mori@x.jp",
                                     role="teacher", password="teacher-pass-1",
                                     class_ids=[world.class1])
        await staff_svc.create_staff(s, world.school, name="担任 林", email="hayashi@x.jp",
                                     role="teacher", password="teacher-pass-1",
                                     class_ids=[world.class3])


async def _fill(page: Any, class_id: int, child: str, guardian: str, phone: str) -> None:
    await page.select_option("#class_id", str(class_id))
    await page.fill("#child_name", child)
    await page.fill("#guardian_name", guardian)
    await page.fill("#phone", phone)


async def _count(db: Database) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(ProxyRequest)) or 0)


def test_check_request_codes() -> None:
    good = {"class_id": "7", "child_name": " 鈴木  三郎 ", "guardian_name": "鈴木 ハナ",
            "relation": "grandmother", "phone": "03-3000-4444", "language": "en", "note": ""}
    clean, errors = check_request(good, {7})
    assert errors == {} and clean is not None
    assert (clean.child_name, clean.phone_e164, clean.phone_kind, clean.email) == (
        "鈴木 三郎", "+81330004444", "landline", None)
    _, errors = check_request({**good, "class_id": "8", "phone": "12", "email": "a@b",
                               "guardian_name": "<script>x</script>", "note": "x" * 1001,
                               "relation": "boss", "language": "fr"}, {7})
    assert errors == {"class_id": "required", "phone": "invalid", "email": "invalid",
                      "guardian_name": "markup", "note": "too_long", "relation": "required",
                      "language": "required"}
    _, errors = check_request({**good, "child_name": "鈴木\x00三郎", "note": "a\x1bb"}, {7})
    assert errors == {"child_name": "control", "note": "control"}
    _, errors = check_request({}, {7})
    assert set(errors) == {"class_id", "child_name", "guardian_name", "relation", "language",
                           "phone"}


@pytest.mark.browser
async def test_family_requests_teacher_registers_or_rejects(
    browser_portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    await _teachers(sqlite_db, world)
    family = await browser_portal.page()
    await family.goto("/")
    await family.click("#proxy-request-link")
    form = family.locator("#proxy-request-form")
    # Empty: every required field says what is missing; nothing stored.
    await form.locator("button[type=submit]").click()
    await expect(family.locator("#request-notice")).to_be_visible()
    for field in ("class_id", "child_name", "guardian_name", "phone"):
        await expect(family.locator(f"#error-{field}")).to_be_visible()
    # Script tags, a wrong number, a note past the limit (the browser's maxlength lifted).
    await _fill(family, world.class1, "鈴木三郎", "<script>alert(1)</script>", "12-34")
    await family.eval_on_selector("#note", "e => e.removeAttribute('maxlength')")
    await family.fill("#note", "長" * 1001)
    await form.locator("button[type=submit]").click()
    await expect(family.locator("#error-guardian_name")).to_contain_text("<")
    await expect(family.locator("#error-phone")).to_contain_text("03-1234-5678")
    await expect(family.locator("#error-note")).to_contain_text("1000")
    await expect(family.locator("#child_name")).to_have_value("鈴木三郎")  # kept
    assert await family.evaluate("() => typeof window.alertFired") == "undefined"
    assert await _count(sqlite_db) == 0
    # A proper request from a landline, in English.
    await family.fill("#guardian_name", "鈴木 ハナ")
    await family.select_option("#relation", "grandmother")
    await family.fill("#phone", "03-3000-4444")
    await family.select_option("#language", "en")
    await family.fill("#note", "夕方なら電話に出られます")
    await form.locator("button[type=submit]").click()
    await expect(family.locator("#request-sent")).to_be_visible()
    # The same request again (sent twice by mistake): recognised, not stored twice.
    await family.goto("/proxy-request")
    await _fill(family, world.class1, "鈴木三郎", "鈴木 ハナ", "03-3000-4444")
    await family.locator("#proxy-request-form button[type=submit]").click()
    await expect(family.locator("#request-notice")).to_contain_text("すでに受け付けて")
    assert await _count(sqlite_db) == 1
    # Another request, to be rejected.
    await family.goto("/proxy-request")
    await _fill(family, world.class1, "いたずら", "だれか", "090-9999-0000")
    await family.locator("#proxy-request-form button[type=submit]").click()
    await expect(family.locator("#request-sent")).to_be_visible()
    # The class teacher: the queue, one click, the form filled in.
    teacher = await browser_portal.page()
    await browser_portal.login_staff(teacher, "mori@x.jp", "teacher-pass-1")
    await teacher.goto("/staff/")  # the home page points at the waiting requests
    await expect(teacher.locator("a.proxy-requests")).to_contain_text("2")
    await teacher.click("a.proxy-requests")
    queue = teacher.locator("#proxy-queue .proxy-request")
    await expect(queue).to_have_count(2)
    first = queue.first
    await expect(first).to_contain_text("鈴木 ハナ")
    await expect(first).to_contain_text("夕方なら電話に出られます")
    await first.locator(".open-request").click()
    await expect(teacher.locator("#proxy-from-request")).to_be_visible()
    await expect(teacher.locator("select[name=child_id]")).to_have_value(str(world.newkid))
    await expect(teacher.locator("input[name=name]")).to_have_value("鈴木 ハナ")
    await expect(teacher.locator("input[name=phone]")).to_have_value("03-3000-4444")
    await expect(teacher.locator("select[name=language]")).to_have_value("en")
    await teacher.fill("input[name=reading]", "すずき はな")
    await teacher.click("#proxy-form button[type=submit]")
    await expect(teacher.locator("#proxy-done")).to_contain_text("03-3000-4444")
    await expect(queue).to_have_count(1)
    await queue.first.locator("input[name=reason]").fill("在籍していない児童名です")
    await queue.first.locator(".reject-form button").click()
    await expect(teacher.locator(".flash.ok")).to_be_visible()
    await expect(queue).to_have_count(0)
    async with sqlite_db.sessions() as s:
        rows = {r.child_name: r for r in await s.scalars(select(ProxyRequest))}
        guardian = await s.scalar(select(Guardian).join(GuardianPhone).where(
            GuardianPhone.e164 == "+81330004444"))
        assert guardian is not None
        link = await s.scalar(select(Guardianship).where(
            Guardianship.guardian_id == guardian.id))
    assert guardian.proxy_registered and guardian.language == "en"
    assert link is not None and (link.child_id, link.relation) == (world.newkid, "grandmother")
    assert (rows["鈴木三郎"].status, rows["鈴木三郎"].guardian_id) == ("registered", guardian.id)
    assert (rows["いたずら"].status, rows["いたずら"].reject_reason) == (
        "rejected", "在籍していない児童名です")


async def test_form_needs_csrf_is_rate_limited_and_reads_nothing(
    portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    await _teachers(sqlite_db, world)
    good = {"class_id": str(world.class1), "child_name": "鈴木 三郎", "guardian_name": "鈴木 ハナ",
            "relation": "mother", "phone": "03-3000-5555", "language": "ja",
            "note": "秘密のメモXQ"}
    family, stranger, other_teacher = Client(portal), Client(portal), Client(portal)
    try:
        assert await family.post("/proxy-request", good, csrf=False) == 403
        assert await _count(sqlite_db) == 0
        assert await family.post("/proxy-request", good) == 303
        # Nothing stored is shown back, to anybody.
        for path in ("/proxy-request", "/proxy-request/sent", "/proxy-request?id=1",
                     "/proxy-request/1"):
            status, html = await stranger.get(path)
            assert "秘密のメモXQ" not in html and "03-3000-5555" not in html, path
        assert (await stranger.get("/proxy-request/1"))[0] == 404
        # A teacher of another class sees no queue and cannot reject this one.
        await other_teacher.login("hayashi@x.jp", "teacher-pass-1", "/staff/login", "email")
        assert (await other_teacher.get(f"/staff/classes/{world.class1}/proxy"))[0] in (403, 404)
        status, html = await other_teacher.get(f"/staff/classes/{world.class3}/proxy")
        assert status == 200 and "秘密のメモXQ" not in html
        async with sqlite_db.sessions() as s:
            rid = await s.scalar(select(ProxyRequest.id))
        for room in (world.class1, world.class3):
            assert await other_teacher.post(
                f"/staff/classes/{room}/proxy/requests/{rid}/reject", {"reason": "x"}) in (
                403, 404)
        # Five an hour per address: the sixth (of any content) is refused.
        statuses = [await stranger.post("/proxy-request", {**good, "child_name": f"子{i}"})
                    for i in range(5)]
        assert statuses == [303, 303, 303, 303, 429]  # the family's one counted too
        assert await _count(sqlite_db) == 5
    finally:
        for client in (family, stranger, other_teacher):
            await client.http.close()
    async with sqlite_db.sessions() as s:
        assert await s.scalar(select(ProxyRequest.status).where(ProxyRequest.id == rid)) == (
            "pending")


async def test_a_double_submit_at_the_same_moment_stores_one_request(db: Database) -> None:
    """Two clicks (or two tabs) at once: one request waits in the queue, the other is told
    it is there already. On PostgreSQL both would pass a check-then-insert; the database's
    unique index on the pending requests decides."""
    world = await build_world(db)
    await _teachers(db, world)
    clean, _errors = check_request(
        {"class_id": str(world.class1), "child_name": "鈴木 三郎", "guardian_name": "鈴木 ハナ",
         "relation": "mother", "phone": "03-3000-5555", "language": "ja"}, {world.class1})
    assert clean is not None
    now = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)

    async def click() -> str:
        try:
            async with transaction(db.sessions) as s:
                await proxy_requests.submit(s, clean, now)
        except proxy_requests.AlreadyRequested:
            return "already"
        return "stored"

    for child in ("鈴木 三郎", "鈴木 四郎", "鈴木 五郎"):  # a race: a few tries to meet it
        clean = replace(clean, child_name=child)
        results = await asyncio.gather(*(click() for _ in range(6)))
        assert sorted(results) == ["already"] * 5 + ["stored"], results
    assert await _count(db) == 3
    # Once handled, the same family may ask again (say, with a corrected name).
    async with transaction(db.sessions) as s:
        row = await s.scalar(select(ProxyRequest).where(ProxyRequest.child_name == "鈴木 五郎"))
        teacher = await s.scalar(select(Staff.id).where(Staff.email == "mori@x.jp"))
        assert row is not None and teacher is not None
        proxy_requests.rejected(row, "名前の確認をお願いします", teacher, now)
    assert await click() == "stored"
    assert await _count(db) == 4


async def test_bad_input_over_http_is_refused_with_a_message_or_kept_as_text(
    portal: Portal, sqlite_db: Database
) -> None:
    """What the browser's maxlength does not stop (a script, a 300-character name, a NUL),
    refused with a message by the field and nothing stored; text that only looks like
    markup (entities, quotes) stored as typed and shown escaped in the teacher's queue;
    the teacher's rejection checked the same way."""
    world = await build_world(sqlite_db)
    await _teachers(sqlite_db, world)
    good = {"class_id": str(world.class1), "child_name": "鈴木 三郎", "guardian_name": "鈴木 ハナ",
            "relation": "mother", "phone": "03-3000-5555", "language": "ja"}
    family, teacher = Client(portal), Client(portal)
    try:
        refused = [
            ({"child_name": "長" * 300}, "child_name", "100"),
            ({"guardian_name": "x\x00y"}, "guardian_name", "制御文字"),
            ({"note": "<img src=x onerror=alert(1)>"}, "note", "&lt;"),
            ({"email": "a" * 250 + "@x.jp"}, "email", "メールアドレス"),
            ({"phone": "0" * 40}, "phone", "03-1234-5678"),
            ({"class_id": "99999"}, "class_id", "学校とクラス"),
        ]
        for change, field, says in refused:
            status, html = await family.send("/proxy-request", {**good, **change})
            assert status == 400, change
            error = re.search(rf'id="error-{field}">([^<]*)<', html)
            assert error and says in error.group(1), (change, error)
            assert "onerror=alert" not in html.replace("onerror=alert(1)&gt;", ""), change
        assert await _count(sqlite_db) == 0  # nothing half-written
        lookalike = {**good, "guardian_name": 'ハナ "&amp; O\'Neil',
                     "note": "&lt;script&gt;alert(1)&lt;/script&gt; 夕方 & 週末"}
        # Six mistakes cost nothing against the five an hour: the request goes through.
        assert await family.post("/proxy-request", lookalike) == 303
        assert await family.post("/proxy-request", lookalike) == 409  # sent twice: one
        async with sqlite_db.sessions() as s:
            row = await s.scalar(select(ProxyRequest))
        assert row is not None and await _count(sqlite_db) == 1
        assert (row.guardian_name, row.note) == (lookalike["guardian_name"], lookalike["note"])
        await teacher.login("mori@x.jp", "teacher-pass-1", "/staff/login", "email")
        status, html = await teacher.get(f"/staff/classes/{world.class1}/proxy")
        assert status == 200
        assert "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt; 夕方 &amp; 週末" in html
        assert "ハナ &#34;&amp;amp; O&#39;Neil" in html
        assert "<script>alert" not in html and "&lt;script&gt;alert" not in html
        reject = f"/staff/classes/{world.class1}/proxy/requests/{row.id}/reject"
        for reason in ("", "   ", "理" * 501):
            status, html = await teacher.send(reject, {"reason": reason})
            assert status == 400 and "500" in html, len(reason)
        assert await teacher.post(reject, {"reason": "在籍していません"}) == 303
        status, html = await teacher.send(reject, {"reason": "二度目"})
        assert status == 409 and "すでに処理" in html
    finally:
        await family.http.close()
        await teacher.http.close()
    async with sqlite_db.sessions() as s:
        assert await s.scalar(select(ProxyRequest.reject_reason)) == "在籍していません"
