"""Voicemail reports: the spool Asterisk writes alone → imported once → heard and confirmed
by the class's teacher in the portal (the calls themselves: tests/test_voicemail_calls.py)."""

from __future__ import annotations

import asyncio
import os
import time
import wave
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from models import AbsenceReport, Voicemail
from models.db import transaction
from renraku.app import App
from renraku.services import staff as staff_svc
from renraku.services import voicemail
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school
from tests.staff_fixtures import StaffPortal

# Thursday 2026-12-03 19:30 and 20:30 in Tokyo: before and after the 20:00 cutoff.
BEFORE_CUTOFF = int(datetime(2026, 12, 3, 10, 30, tzinfo=UTC).timestamp())
AFTER_CUTOFF = int(datetime(2026, 12, 3, 11, 30, tzinfo=UTC).timestamp())


def spool(folder: Path, epoch: int, caller: str, lang: str = "xx", done: bool = True,
          seconds: float = 1.0, uniqueid: str = "") -> Path:
    """A recording as the dialplan files it (8 kHz mono WAV) and its .done marker."""
    folder.mkdir(parents=True, exist_ok=True)
    uniqueid = uniqueid or f"{epoch}.{len(list(folder.glob('*.wav')))}"
    path = folder / f"vm-{epoch}-{uniqueid}-{lang}-{caller}.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x10\x00" * int(8000 * seconds))
    if done:
        path.with_suffix(".done").write_text(caller)
    return path


def test_only_finished_recordings_with_our_names_count(tmp_path: Path) -> None:
    done = spool(tmp_path, BEFORE_CUTOFF, "09011110001", "en")
    recording = spool(tmp_path, BEFORE_CUTOFF, "09011110002", done=False)
    orphan = spool(tmp_path, BEFORE_CUTOFF, "09011110003", done=False)
    old = time.time() - voicemail.STALE_S - 5
    os.utime(orphan, (old, old))  # Asterisk stopped mid-call: no .done, long untouched
    (tmp_path / "vm-1-x-ja-1.wav").write_bytes(b"")  # not a name the dialplan makes
    (tmp_path / "notes.txt").write_text("")
    found = {f.name: f for f in voicemail.finished_files(tmp_path)}
    assert set(found) == {done.name, orphan.name}
    assert recording.name not in found
    first = found[done.name]
    assert (first.caller, first.language, first.received_at) == (
        "09011110001", "en", datetime.fromtimestamp(BEFORE_CUTOFF, UTC))
    assert found[orphan.name].language == ""  # "xx": the dialplan did not know it


@pytest.fixture
async def school(sqlite_db: Database, staff_portal: StaffPortal) -> AsyncIterator[dict]:
    async with transaction(sqlite_db.sessions) as s:
        school = await make_school(s)
        mine = await make_class(s, school, "1年1組")
        theirs = await make_class(s, school, "1年2組")
        kid = await make_child(s, school, "青木 一郎", "あおき", mine)
        sibling = await make_child(s, school, "青木 二郎", "あおき", theirs)
        guardian = await make_guardian(s, "青木 母", "090-1111-0001", "zh",
                                       children=(kid, sibling))
        await staff_svc.create_staff(s, school.id, name="森", email="mori@x.jp", role="teacher",
                                     password="teacher-pass-1", class_ids=[mine.id])
        await staff_svc.create_staff(s, school.id, name="林", email="hayashi@x.jp",
                                     role="teacher", password="teacher-pass-1", class_ids=[])
        await staff_svc.create_staff(s, school.id, name="校長", email="admin@x.jp",
                                     role="admin", password="admin-pass-12", class_ids=[])
    yield {"mine": mine.id, "theirs": theirs.id, "kid": kid.id, "sibling": sibling.id,
           "guardian": guardian.id}


async def _count(app: App) -> int:
    async with app.sessions() as s:
        return int(await s.scalar(select(func.count(Voicemail.id))) or 0)


async def test_import_links_the_callers_children_and_never_twice(
        staff_portal: StaffPortal, school: dict) -> None:
    app = staff_portal.app
    folder = app.settings.voicemail_dir
    spool(folder, BEFORE_CUTOFF, "09011110001", "xx", seconds=2.5)
    spool(folder, BEFORE_CUTOFF + 60, "", "xx")  # caller ID withheld
    spool(folder, BEFORE_CUTOFF + 120, "09099990000", "ja")  # not registered
    spool(folder, BEFORE_CUTOFF + 180, "09011110001", "en", done=False)  # still recording
    # Two importers at once (e.g. `renraku run` and the CLI) and a third later: one row each.
    counts = await asyncio.gather(voicemail.import_spool(app), voicemail.import_spool(app))
    assert sum(counts) == 3
    assert await voicemail.import_spool(app) == 0
    assert await _count(app) == 3
    async with app.sessions() as s:
        rows = list(await s.scalars(select(Voicemail).order_by(Voicemail.received_at)
                                    .options(selectinload(Voicemail.children))))
    children = [sorted(c.id for c in r.children) for r in rows]
    known, withheld, stranger = rows
    assert children == [sorted([school["kid"], school["sibling"]]), [], []]
    assert (known.guardian_id, known.caller_e164, known.language, known.duration_ms) == (
        school["guardian"], "+819011110001", "zh", 2500)  # language: the guardian's
    assert (withheld.caller, withheld.guardian_id, stranger.language) == ("", None, "ja")
    assert known.school_id == withheld.school_id == stranger.school_id  # the one school
    # The last one's call ends: the next import takes it, and only it.
    folder.joinpath(sorted(p.name for p in folder.glob("*.wav"))[-1]).with_suffix(
        ".done").write_text("")
    assert await voicemail.import_spool(app) == 1


async def test_teacher_hears_and_confirms_with_one_click(
        staff_portal: StaffPortal, school: dict) -> None:
    app = staff_portal.app
    spool(app.settings.voicemail_dir, AFTER_CUTOFF, "09011110001", "ja")
    spool(app.settings.voicemail_dir, BEFORE_CUTOFF, "09099990000", "ja")
    assert await voicemail.import_spool(app) == 2
    async with app.sessions() as s:
        mine, stranger = (await s.scalars(select(Voicemail.id).order_by(
            Voicemail.caller))).all()

    teacher = await staff_portal.client_as_staff("mori@x.jp", "teacher-pass-1")
    page = await (await teacher.get(f"/staff/classes/{school['mine']}/today")).text()
    assert f'data-voicemail="{mine}"' in page and "青木 一郎" in page
    sound = await teacher.get(f"/staff/voicemail/{mine}.wav")
    assert sound.status == 200 and sound.content_type == "audio/wav"
    assert (await sound.read())[:4] == b"RIFF"
    # The unknown caller is the school-wide inbox's: not this teacher's to hear.
    assert (await teacher.get(f"/staff/voicemail/{stranger}.wav")).status == 404
    inbox = await (await teacher.get("/staff/voicemail")).text()
    assert f'data-voicemail="{mine}"' in inbox and f'data-voicemail="{stranger}"' not in inbox

    other = await staff_portal.client_as_staff("hayashi@x.jp", "teacher-pass-1")
    assert (await other.get(f"/staff/voicemail/{mine}.wav")).status == 404
    denied = await staff_portal.post(other, f"/staff/voicemail/{mine}/confirm",
                                     {"child_id": school["kid"], "reason": "illness"})
    assert denied.status == 404
    admin = await staff_portal.client_as_staff("admin@x.jp", "admin-pass-12")
    assert (await admin.get(f"/staff/voicemail/{stranger}.wav")).status == 200

    # Not the caller's child: refused; the right one: one absence for Friday (the call came
    # after Thursday's 20:00 cutoff), seen by the teacher, the message marked confirmed.
    wrong = await staff_portal.post(teacher, f"/staff/voicemail/{mine}/confirm",
                                    {"child_id": 999999, "reason": "illness"})
    assert wrong.status == 409
    ok = await staff_portal.post(teacher, f"/staff/voicemail/{mine}/confirm?class="
                                 f"{school['mine']}", {"child_id": school["kid"],
                                                       "reason": "injury"})
    assert ok.status == 303 and ok.headers["Location"].endswith(f"/{school['mine']}/today")
    again = await staff_portal.post(teacher, f"/staff/voicemail/{mine}/confirm",
                                    {"child_id": school["kid"], "reason": "illness"})
    assert again.status == 409
    async with app.sessions() as s:
        [report] = (await s.scalars(select(AbsenceReport))).all()
        message = await s.get(Voicemail, mine)
    assert (report.child_id, report.day, report.kind, report.reason, report.channel,
            report.guardian_id) == (school["kid"], date(2026, 12, 4), "absence", "injury",
                                    "phone", school["guardian"])
    assert report.seen_at is not None
    assert message is not None and (message.status, message.report_id) == (
        "confirmed", report.id)
    page = await (await teacher.get(f"/staff/classes/{school['mine']}/today")).text()
    assert f'data-voicemail="{mine}"' not in page  # handled: off the class's list

    done = await staff_portal.post(admin, f"/staff/voicemail/{stranger}/done", {})
    assert done.status == 303
    async with app.sessions() as s:
        assert (await s.get(Voicemail, stranger)).status == "done"  # type: ignore[union-attr]


@pytest.mark.browser
async def test_the_message_plays_in_the_browser_and_one_click_confirms(
        staff_portal: StaffPortal, school: dict, browser: object) -> None:
    app = staff_portal.app
    spool(app.settings.voicemail_dir, BEFORE_CUTOFF, "09011110001", "ja", seconds=1.5)
    assert await voicemail.import_spool(app) == 1
    page = await staff_portal.browser_login_staff(browser, "mori@x.jp", "teacher-pass-1")
    base = await staff_portal.base_url()
    await page.goto(f"{base}/staff/classes/{school['mine']}/today")
    # Chromium fetches the audio with the teacher's session and decodes it.
    duration = await page.evaluate("""() => new Promise((ok, fail) => {
        const a = document.querySelector('#class-voicemail audio');
        a.addEventListener('loadedmetadata', () => ok(a.duration));
        a.addEventListener('error', () => fail(new Error('audio error ' + a.error.code)));
        a.load();
    })""")
    assert abs(duration - 1.5) < 0.05
    await page.click("#class-voicemail form.confirm-absence button")
    await page.wait_for_url(f"{base}/staff/classes/{school['mine']}/today")
    assert await page.locator("#class-voicemail").count() == 0
    async with app.sessions() as s:
        [report] = (await s.scalars(select(AbsenceReport))).all()
    assert (report.child_id, report.day, report.reason) == (school["kid"], date(2026, 12, 3),
                                                           "illness")
