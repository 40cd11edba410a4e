"""The absence line without the app, through real Asterisk: with FastAGI unreachable the
dialplan alone plays the pre-rendered voicemail prompt, records after the beep and files
the message; once the app is back the import puts it in the right class's register.

(FastAGI killed mid-call and PostgreSQL stopped: tests/test_faults_calls.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from models import Voicemail
from models.db import transaction
from renraku.services import voicemail
from renraku.settings import LANGUAGES
from tests.absence_fakes import ToneVoice
from tests.asterisk_harness import PhoneLines, VirtualPhone
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school
from tests.test_absence_calls import QUICK_ABSENCE, Line, follow
from tests.test_absence_calls import line as line  # the fixture, shared

pytestmark = pytest.mark.asterisk


async def voicemail_ready(lines: PhoneLines) -> None:
    """The static prompts `renraku prompts build` renders, as tones in each language, and
    an empty spool (the folder is the session's; earlier tests' messages are theirs)."""
    voice = ToneVoice(lines.settings)
    for key in ("voicemail.intro", "voicemail.thanks"):
        for lang in LANGUAGES:
            await voice.phrase(key, lang)
    for old in lines.settings.voicemail_dir.glob("vm-*"):
        old.unlink()


async def eventually(predicate, within: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    while not (result := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)
    return result


async def leave_message(lines: PhoneLines, phone: VirtualPhone) -> Path:
    """Once recording starts, the caller speaks (a 4 s sound) for a moment and hangs up;
    → the recording, finished (its .done file written by the dialplan's h extension)."""
    folder = lines.settings.voicemail_dir
    wav = await eventually(lambda: next(folder.glob(f"vm-*-{phone.number}.wav"), None))
    await phone.play("greeting")
    await asyncio.sleep(1.5)
    await phone.hang_up()
    await eventually(lambda: wav.with_suffix(".done").exists(), 15)
    return wav


class AppDown:
    """FastAGI stops listening (every app node down); back on the same port afterwards."""

    def __init__(self, lines: PhoneLines) -> None:
        self.lines = lines

    async def __aenter__(self) -> None:
        await self.lines.fastagi.stop(grace_s=0)

    async def __aexit__(self, *_exc: object) -> None:
        await self.lines.fastagi.start("127.0.0.1", self.lines.settings.fastagi_port)


@pytest.fixture
async def school(line: Line, sqlite_db: Database) -> AsyncIterator[dict[str, int]]:
    await voicemail_ready(line.lines)
    async with transaction(sqlite_db.sessions) as s:
        school = await make_school(s)
        room = await make_class(s, school, "2年1組")
        kid = await make_child(s, school, "ジョン 太郎", "じょんたろう", room)
        await make_guardian(s, "Mary", "09031000002", "en", (kid,))
    yield {"class": room.id, "kid": kid.id}


async def test_app_unreachable_the_caller_leaves_a_message_in_their_language(
        line: Line, school: dict[str, int]) -> None:
    lines = line.lines
    # The log is the session's: only this test's lines count (another file's call may
    # have fallen to voicemail before any test rendered its prompts).
    logged = lines.ivr.log_file.stat().st_size
    # A normal call first: the flow keeps the caller's language (en) in Asterisk's AstDB.
    known = line.phone("09031000002")
    await known.call()
    await known.wait_prompt("absence.main_menu")
    await known.hang_up()
    await known.wait_end()
    async with AppDown(lines):
        stranger = line.phone("09031000001")
        await stranger.dial()
        unknown_wav = await leave_message(lines, stranger)
        again = line.phone("09031000002")
        await again.dial()
        known_wav = await leave_message(lines, again)
    # Unknown caller: all four languages (file marked xx); the known one: English alone.
    assert unknown_wav.name.endswith("-xx-09031000001.wav")
    assert known_wav.name.endswith("-en-09031000002.wav")
    assert known_wav.stat().st_size > 8000  # about a second of 8 kHz speech at least
    assert known_wav.with_suffix(".done").read_text() == "09031000002"  # caller ID as sent
    with lines.ivr.log_file.open("rb") as log:
        log.seek(logged)
        missing = [ln for ln in log.read().decode(errors="replace").splitlines()
                   if "voicemail." in ln]
    assert missing == []  # every prompt Playback() asked for was found

    # The app is back: one import takes both, a second nothing.
    assert await voicemail.import_spool(line.app) == 2
    assert await voicemail.import_spool(line.app) == 0
    async with line.app.sessions() as s:
        rows = {v.caller: v for v in await s.scalars(
            select(Voicemail).options(selectinload(Voicemail.children)))}
    assert [c.id for c in rows["09031000002"].children] == [school["kid"]]
    assert rows["09031000002"].language == "en" and rows["09031000002"].duration_ms >= 1000
    assert rows["09031000001"].children == [] and rows["09031000001"].language == ""
    # The next call reaches the app again.
    after = line.phone("09031000002")
    await after.call()
    await follow(after, QUICK_ABSENCE)
    await after.wait_end()
