"""Through real Asterisk: after the admin sets the school's reading on the settings page, a
registered guardian's call is welcomed with the school named by that reading."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ivr import absence_flow
from ivr.fastagi import AGIChannel
from models.db import transaction
from renraku.app import App
from renraku.clock import FakeClock
from renraku.rules.school_settings import parse_school_settings
from renraku.services import staff as staff_svc
from renraku.services.schools import create_school
from tests.absence_fakes import ToneVoice
from tests.asterisk_harness import PhoneLines
from tests.db_fixtures import Database
from tests.factories import make_child, make_guardian
from tests.staff_fixtures import StaffPortal

pytestmark = pytest.mark.asterisk

NOW = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)  # Thursday 10:00 in Tokyo
READING = "さくらしりつさくらしょうがっこう"


async def test_the_welcome_says_the_reading_the_admin_set(
        lines: PhoneLines, sqlite_db: Database, staff_portal: StaffPortal) -> None:
    async with transaction(sqlite_db.sessions) as s:
        school = await create_school(s, parse_school_settings(name="さくら市立さくら小学校"))
        kid = await make_child(s, school, "山田 太郎", "やまだ たろう")
        await make_guardian(s, "山田花子", "09020000061", "ja", (kid,))
        await staff_svc.create_staff(s, school.id, name="校長", email="head@x.jp",
                                     role="admin", password="head-password-1", class_ids=[])
    admin = await staff_portal.client_as_staff("head@x.jp", "head-password-1")
    r = await staff_portal.post(admin, "/staff/school", {
        "name": "さくら市立さくら小学校", "reading": READING, "timezone": "Asia/Tokyo",
        "cutoff": "20:00", "language": ["ja", "en"], "weekday": ["1", "2", "3", "4", "5"]})
    assert r.status == 303

    app = App(lines.settings, FakeClock(NOW), sqlite_db.engine, sqlite_db.sessions)
    voice = ToneVoice(lines.settings)

    async def handler(agi: AGIChannel) -> None:
        await absence_flow.handle(agi, app, voice)

    lines.route("absence", handler)
    phone = lines.phone("09020000061")
    await phone.call()
    await phone.wait_prompt("absence.welcome_school")
    await phone.wait_prompt("absence.main_menu")
    await phone.hang_up()
    await phone.wait_end()
    named = await voice.phrase("absence.welcome_school", "ja", school=READING)
    as_written = await voice.phrase("absence.welcome_school", "ja",
                                    school="さくら市立さくら小学校")
    assert phone.played[0] == named and as_written not in phone.played
