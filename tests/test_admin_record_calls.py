"""The admin recording line through real Asterisk: caller ID + PIN, record, keep, rollback."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ivr import admin_record_flow
from ivr.fastagi import AGIChannel
from models import Prompt
from models.db import transaction
from prompts import store
from prompts.catalog import catalog
from renraku.app import App
from renraku.clock import FakeClock
from renraku.rules.school_settings import parse_school_settings
from renraku.services import staff as staff_svc
from renraku.services.schools import create_school
from tests.absence_fakes import ToneVoice
from tests.asterisk_harness import PhoneLines, rerecord_by_phone
from tests.db_fixtures import Database

pytestmark = pytest.mark.asterisk

KEY = "absence.welcome"
ADMIN = "09090000001"


def tone(path: Path, seconds: str, freq: str) -> Path:
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth",
                    seconds, "sine", freq, "vol", "0.5"], check=True)
    return path


@pytest.fixture
async def admin_line(lines: PhoneLines, sqlite_db: Database,
                     tmp_path: Path) -> AsyncIterator[tuple[PhoneLines, App]]:
    app = App(lines.settings, FakeClock(datetime(2026, 12, 3, 1, 0, tzinfo=UTC)),
              sqlite_db.engine, sqlite_db.sessions)
    async with transaction(app.sessions) as s:  # as a real school's admin page sets it up
        school = await create_school(s, parse_school_settings(name="第一小学校"))
        admin = await staff_svc.create_staff(s, school.id, name="校長", email="admin@example.jp",
                                             role="admin", password=None, class_ids=[])
        await staff_svc.set_phone_and_pin(s, admin, ADMIN, "1234")
    # Version 1: a one-second recording the admin will replace.
    await store.add_recording(app.sessions, app.settings, KEY, "ja",
                              tone(tmp_path / "v1.wav", "1", "300"))
    lines.route("admin-record", admin_record_flow.handler(
        app, ToneVoice(app.settings)))
    yield lines, app


async def played_samples(lines: PhoneLines) -> int:
    """A call on the absence line that plays renraku/<KEY>: how many samples Asterisk played."""
    result: dict[str, int] = {}

    async def play(agi: AGIChannel) -> None:
        await agi.set_variable("CHANNEL(language)", "ja")
        reply = await agi.command(f'STREAM FILE "renraku/{KEY}" ""')
        result["endpos"] = reply.endpos or 0
        await agi.hangup()

    lines.route("absence", play)
    phone = lines.phone("09011110000")
    await phone.call()
    await phone.wait_end()
    return result["endpos"]


async def prompt_rows(app: App) -> int:
    async with app.sessions() as s:
        return await s.scalar(select(func.count()).select_from(Prompt)) or 0


async def test_admin_records_a_prompt_and_rolls_it_back(
    admin_line: tuple[PhoneLines, App],
) -> None:
    lines, app = admin_line
    number = catalog()[KEY].number
    assert 7000 <= await played_samples(lines) <= 9000  # version 1: one second at 8 kHz

    phone = lines.phone(ADMIN, dialled="8000")
    await phone.call()
    seen = await rerecord_by_phone(phone, number)
    # Back at the language menu: choose the same prompt again and roll back (menu key 3).
    seen = await phone.wait_prompt("admin.choose_language", after=seen)
    async with app.sessions() as s:
        current = await store.active(s, KEY, "ja")
    assert current is not None and current.version == 2 and current.source == "recorded"
    assert current.created_by is not None
    assert await played_samples(lines) > 3 * 8000  # the next call plays the new recording

    await phone.press("1")
    seen = await phone.wait_prompt("admin.enter_number", after=seen)
    await phone.press(f"{number}#")
    seen = await phone.wait_prompt("admin.prompt_menu", after=seen)
    await phone.press("3")
    await phone.wait_prompt("admin.rolled_back", after=seen)
    await phone.hang_up()
    await phone.wait_end()
    async with app.sessions() as s:
        current = await store.active(s, KEY, "ja")
        versions = await store.history(s, KEY, "ja")
    assert current is not None and current.version == 1
    assert len(versions) == 2  # the newer recording is kept for later
    assert 7000 <= await played_samples(lines) <= 9000


@pytest.mark.parametrize(("caller", "pin"), [("09012398765", "1234"), (ADMIN, "9999")])
async def test_unknown_caller_or_wrong_pin_records_nothing(
    admin_line: tuple[PhoneLines, App], caller: str, pin: str,
) -> None:
    lines, app = admin_line
    before = await prompt_rows(app)
    phone = lines.phone(caller, dialled="8000")
    await phone.call()
    if caller == ADMIN:
        seen = 0
        for _ in range(3):
            seen = await phone.wait_prompt("admin.enter_pin", after=seen)
            await phone.press(pin + "#")
        await phone.wait_prompt("admin.wrong_pin", after=seen)
    else:
        await phone.wait_prompt("admin.not_allowed")
    await phone.wait_end()
    assert not any("RECORD FILE" in c for _t, c, _r in phone.agi.log)
    assert await prompt_rows(app) == before
