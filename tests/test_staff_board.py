"""The staff board: a grade-team message read by one teacher and not another (browser),
attachments checked by size and type, pinning, email notices, who may open what."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from aiohttp import FormData

from models.db import transaction
from renraku.services import staff as staff_svc
from tests.db_fixtures import Database
from tests.factories import make_class
from tests.staff_fixtures import StaffPortal
from tests.staffroom_world import PASSWORD, World, build
from tests.web_fixtures import Mailbox

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def _grade2_teacher(db: Database, w: World) -> int:
    async with transaction(db.sessions) as s:
        from models import School
        school = await s.get_one(School, w.school)
        room = await make_class(s, school, "2年1組", grade=2)
        person = await staff_svc.create_staff(s, w.school, name="sato", email="sato@sakura.test",
                                              role="teacher", password=PASSWORD,
                                              class_ids=[room.id])
        return person.id


async def test_grade_team_message_read_by_one_teacher_not_another(
    staff_portal: StaffPortal, sqlite_db: Database, browser: Any, tmp_path: Path
) -> None:
    w = await build(sqlite_db.sessions)
    await _grade2_teacher(sqlite_db, w)
    pdf = tmp_path / "時間割.pdf"
    pdf.write_bytes(PDF)
    base = await staff_portal.base_url()
    author = await staff_portal.browser_login_staff(browser, "principal@sakura.test", PASSWORD)
    await author.goto(f"{base}/staff/board/new")
    await author.check("input[name=audience][value=grade]")
    await author.select_option("#grade", "1")
    await author.fill("#subject", "1年 遠足の打ち合わせ")
    await author.fill("#body", "金曜の放課後に集まってください。")
    await author.set_input_files("#files", str(pdf))
    await author.click("#board-form button[type=submit]")
    await author.wait_for_url(re.compile(r"/staff/board/\d+$"))
    message_url = author.url
    assert await author.locator("#read-status tr.unread").count() == 2  # the grade-1 team

    mori = await staff_portal.browser_login_staff(browser, "mori@sakura.test", PASSWORD)
    await mori.goto(f"{base}/staff/board")
    row = mori.locator("#board-list tr.message", has_text="1年 遠足の打ち合わせ")
    assert "unread" in (await row.get_attribute("class") or "")
    await row.locator("a").click()
    await mori.wait_for_url(message_url)
    assert "金曜の放課後" in await mori.inner_text("#message-body")
    async with mori.expect_download() as download:
        await mori.click("ul.attachments a")
    saved = await (await download.value).path()
    assert await asyncio.to_thread(Path(saved).read_bytes) == PDF

    kato = await staff_portal.browser_login_staff(browser, "kato@sakura.test", PASSWORD)
    await kato.goto(f"{base}/staff/board")
    row = kato.locator("#board-list tr.message", has_text="1年 遠足の打ち合わせ")
    assert "unread" in (await row.get_attribute("class") or "")  # kato has not opened it

    sato = await staff_portal.browser_login_staff(browser, "sato@sakura.test", PASSWORD)
    await sato.goto(f"{base}/staff/board")
    assert await sato.locator("#board-list", has_text="遠足の打ち合わせ").count() == 0
    response = await sato.goto(message_url)
    assert response is not None and response.status == 404  # not for the grade-2 teacher

    await author.reload()
    status = {(await r.locator("td").first.inner_text()): await r.get_attribute("class")
              for r in await author.locator("#read-status tr").all()}
    assert status == {"mori": "read", "kato": "unread"}


async def test_attachments_checked_pinned_first_and_email_notice(
    staff_portal: StaffPortal, sqlite_db: Database, smtp_server: Mailbox
) -> None:
    w = await build(sqlite_db.sessions)
    staff_portal.app.settings = staff_portal.app.settings.replace(
        smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_from="school@sakura.test")
    smtp_server.messages.clear()
    kato = await staff_portal.client_as_staff("kato@sakura.test", PASSWORD)
    r = await staff_portal.post(kato, "/staff/board/prefs", {"email_notice": "1"})
    assert r.status == 303
    mori = await staff_portal.client_as_staff("mori@sakura.test", PASSWORD)

    async def send(subject: str, files: list[tuple[str, bytes]], **fields: str) -> Any:
        form = FormData()
        form.add_field("csrf_token", mori.csrf_token)
        for key, value in {"audience": "people", "subject": subject, "body": "本文",
                           **fields}.items():
            form.add_field(key, value)
        form.add_field("people", str(w.staff["kato"]))
        for name, data in files:
            form.add_field("files", data, filename=name, content_type="application/pdf")
        return await mori.post("/staff/board/new", data=form, allow_redirects=False)

    bad_type = await send("exe", [("evil.pdf", b"MZ\x90\x00 not a pdf")])
    assert bad_type.status == 400 and "PDFと画像" in await bad_type.text()
    too_big = await send("big", [("big.pdf", b"%PDF-" + b"0" * (5 * 1024 * 1024))])
    assert too_big.status == 400 and "5MB" in await too_big.text()
    ok = await send("通常", [("a.pdf", PDF)])
    assert ok.status == 303
    pinned = await send("固定の連絡", [], pinned="1")
    assert pinned.status == 303
    page = await (await kato.get("/staff/board")).text()
    assert page.index("固定の連絡") < page.index("通常")  # pinned first
    mail = await smtp_server.wait_for("kato@sakura.test", count=2)
    assert "【職員連絡】" in str(mail["Subject"]) and "/staff/board/" in Mailbox.text(mail)
    assert not smtp_server.to("principal@sakura.test")  # not a recipient
    # Only the author or an admin pins; a recipient may not
    message_id = pinned.headers["Location"].rsplit("/", 1)[1]
    assert (await staff_portal.post(kato, f"/staff/board/{message_id}/pin", {})).status == 403
    nurse = await staff_portal.client_as_staff("nurse@sakura.test", PASSWORD)
    assert (await nurse.get(f"/staff/board/{message_id}")).status == 404
    guardian = await staff_portal.client_as_guardian(w.guardian_email)
    assert (await guardian.get(f"/staff/board/{message_id}",
                               allow_redirects=False)).status == 403
