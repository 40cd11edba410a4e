"""The broadcast console over HTTP: compose, preview, send, progress JSON, pause, CSV, scope;
and the no-login survey link page."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from ivr.dialer import Dialer
from models import Campaign, EmailDelivery
from models.db import transaction
from prompts import store
from renraku.services import broadcast as bc
from renraku.services import staff as staff_svc
from renraku.services.broadcast_mail import send_due_emails
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school
from tests.staff_fixtures import StaffPortal
from tests.test_broadcast_mail import Inbox
from tests.test_dialer_fake_ami import FakeAmi

FORM = {
    "title": "遠足のお知らせ", "message_ja": "明日は遠足です。", "channel": "both",
    "target": "classes", "q1_text": "参加しますか", "q1_opt1": "はい", "q1_opt2": "いいえ",
    "send": "now", "window_start": "08:00", "window_end": "20:00",
}


@pytest.fixture
def mailbox() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server (aiosmtpd) on a free loopback port, collecting what it receives."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = Inbox()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield inbox, port
    finally:
        ctl.stop()


def _untranslated(page: str) -> list[str]:
    """Untranslated strings of the broadcast pages (in <main>; the shared header is not ours)."""
    return re.findall(r"⟦[^⟧]*⟧", page.split("<main", 1)[-1])


async def _world(db: Database) -> dict[str, int]:
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        mine = await make_class(s, school, "1年1組")
        theirs = await make_class(s, school, "1年2組")
        a = await make_child(s, school, "青木 一郎", "あおき", mine)
        b = await make_child(s, school, "馬場 二郎", "ばば", theirs)
        await make_guardian(s, "青木 母", "090-1111-0001", "en", (a,), "aoki@example.jp")
        await make_guardian(s, "青木 父", "090-1111-0002", "ja", (a,))
        await make_guardian(s, "馬場 母", "090-1111-0003", "ja", (b,))
        await staff_svc.create_staff(s, school.id, name="森", email="mori@x.jp", role="teacher",
                                     password="teacher-pass-1", class_ids=[mine.id])
        await staff_svc.create_staff(s, school.id, name="校長", email="admin@x.jp",
                                     role="admin", password="admin-pass-12", class_ids=[])
        return {"mine": mine.id, "theirs": theirs.id, "a": a.id}


async def test_compose_preview_send_progress(staff_portal: StaffPortal, sqlite_db: Database
                                             ) -> None:
    w = await _world(sqlite_db)
    client = await staff_portal.client_as_staff("mori@x.jp", "teacher-pass-1")
    page = await (await client.get("/staff/broadcasts/new")).text()
    assert "1年1組" in page and "1年2組" not in page  # only the teacher's classes
    assert not _untranslated(page)
    r = await staff_portal.post(client, "/staff/broadcasts",
                                {**FORM, "classes": str(w["mine"]), "action": "preview"})
    text = await r.text()
    assert r.status == 200, text
    assert 'id="preview"' in text and not _untranslated(text)
    # A teacher cannot address another class (nor the school)
    r = await staff_portal.post(client, "/staff/broadcasts",
                                {**FORM, "classes": str(w["theirs"]), "action": "send"})
    assert r.status == 400
    r = await staff_portal.post(client, "/staff/broadcasts",
                                {**FORM, "target": "school", "action": "send"})
    assert r.status == 400
    r = await staff_portal.post(client, "/staff/broadcasts",
                                {**FORM, "classes": str(w["mine"]), "action": "send"})
    assert r.status == 303, await r.text()
    url = r.headers["Location"]
    cid = int(url.rsplit("/", 1)[1])
    show = await (await client.get(url)).text()
    assert "遠足のお知らせ" in show and not _untranslated(show)
    data = await (await client.get(f"{url}/progress.json")).json()
    assert data["households"] == 2 and data["emails"] == 1 and data["counts"]["queued"] == 2
    assert data["tally"][0]["options"][0]["label"] == "はい"
    r = await staff_portal.post(client, f"{url}/pause", {})
    assert r.status == 303
    async with sqlite_db.sessions() as s:
        assert (await s.get(Campaign, cid)).status == "paused"
    assert (await staff_portal.post(client, f"{url}/resume", {})).status == 303
    csv_body = await (await client.get(f"{url}/results.csv")).read()
    assert csv_body.startswith(b"\xef\xbb\xbf") and b"+819011110001" in csv_body
    # The admin sees it; another teacher's campaign list is their own only
    admin = await staff_portal.client_as_staff("admin@x.jp", "admin-pass-12")
    assert (await admin.get(url)).status == 200
    # The survey link: no login needed, answer lands in the tally
    async with sqlite_db.sessions() as s:
        token = (await s.scalar(select(EmailDelivery.token)))
    anon = await staff_portal.client()
    form_page = await (await anon.get(f"/s/{token}")).text()
    assert "参加しますか" in form_page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form_page).group(1)
    qid = re.search(r'name="q(\d+)" value="1"', form_page).group(1)
    r = await anon.post(f"/s/{token}", data={"csrf_token": csrf, f"q{qid}": "2"})
    assert r.status == 200 and 'id="survey-saved"' in await r.text()
    async with sqlite_db.sessions() as s:
        tally = await bc.tally(s, (await s.get(Campaign, cid)).survey_id)
    assert [o.count for o in tally[0].options] == [0, 1]
    assert (await anon.get("/s/not-a-token")).status == 404


async def test_email_link_answer_reaches_console_tally(
    staff_portal: StaffPortal, sqlite_db: Database, mailbox: tuple[Inbox, int]
) -> None:
    inbox, port = mailbox
    staff_portal.use_smtp_port(port)
    await _world(sqlite_db)
    client = await staff_portal.client_as_staff("admin@x.jp", "admin-pass-12")
    r = await staff_portal.post(client, "/staff/broadcasts",
                                {**FORM, "channel": "email", "target": "school",
                                 "action": "send"})
    assert r.status == 303, await r.text()
    url = r.headers["Location"]
    app = staff_portal.app
    # The dialer's mail step (what `renraku dialer` runs for email campaigns)
    dialer = Dialer(app, FakeAmi(app, {}), mailer=lambda c: send_due_emails(app, c))
    await dialer.tick()
    assert len(inbox.messages) == 1 and inbox.messages[0]["To"] == "aoki@example.jp"
    link = re.search(r"http://school\.test(/s/\S+)", inbox.messages[0].get_content())
    assert link is not None
    anon = await staff_portal.client()
    page = await (await anon.get(link.group(1))).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    qid = re.search(r'name="q(\d+)" value="1"', page).group(1)
    r = await anon.post(link.group(1), data={"csrf_token": csrf, f"q{qid}": "1"})
    assert 'id="survey-saved"' in await r.text()
    await dialer.tick()  # every email sent: the campaign completes
    data = await (await client.get(f"{url}/progress.json")).json()
    assert data["status"] == "completed" and data["percent"] == 100
    assert [o["count"] for o in data["tally"][0]["options"]] == [1, 0]


async def test_uploaded_recording_becomes_the_message(
    staff_portal: StaffPortal, sqlite_db: Database, tmp_path: Path
) -> None:
    await _world(sqlite_db)
    wav = tmp_path / "msg.wav"
    await asyncio.to_thread(subprocess.run, ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16",
                            str(wav), "synth", "2", "sine", "440", "vol", "0.5"], check=True)
    client = await staff_portal.client_as_staff("admin@x.jp", "admin-pass-12")
    form = aiohttp.FormData()
    for k, v in {**FORM, "message_ja": "", "channel": "voice", "target": "school",
                 "action": "send", "csrf_token": client.csrf_token}.items():  # type: ignore[attr-defined]
        form.add_field(k, v)
    form.add_field("recording", wav.read_bytes(), filename="msg.wav", content_type="audio/wav")
    r = await client.post("/staff/broadcasts", data=form, allow_redirects=False)
    assert r.status == 303, await r.text()
    async with sqlite_db.sessions() as s:
        camp = await s.scalar(select(Campaign))
        key = camp.recorded_prompt_key
        prompt = await store.active(s, key, "ja")
    assert key.startswith("broadcast.upload-") and prompt is not None
    assert prompt.source == "recorded"
    # A file that is not audio is refused with a message, nothing sent
    form = aiohttp.FormData()
    for k, v in {**FORM, "target": "school", "action": "send",
                 "csrf_token": client.csrf_token}.items():  # type: ignore[attr-defined]
        form.add_field(k, v)
    form.add_field("recording", b"not audio", filename="x.wav", content_type="audio/wav")
    r = await client.post("/staff/broadcasts", data=form, allow_redirects=False)
    assert r.status == 400 and not _untranslated(await r.text())
