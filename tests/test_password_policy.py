"""New passwords: a minimum length and none of the most common ones, wherever they are set."""

from __future__ import annotations

import pytest

from models.db import transaction
from renraku.services import staff as staff_svc
from renraku.services import verification
from renraku.services.passwords import GUARDIAN_MIN, _common, weakness
from renraku.settings import ensure_secret
from tests.db_fixtures import Database
from tests.factories import make_school
from tests.test_guardian_authz import Client
from tests.web_fixtures import Portal
from tests.web_world import build_world

COMMON = "そのパスワードはよく使われていて推測されやすい"


def test_short_and_common_passwords_are_refused() -> None:
    assert len(_common()) > 10_000
    assert weakness("abc1234", GUARDIAN_MIN) == "short"
    for password in ("password1", "Password123", " iloveyou ", "12345678"):
        assert weakness(password, GUARDIAN_MIN) == "common", password
    assert weakness("kumo-no-ue-7", GUARDIAN_MIN) is None


async def test_registration_and_reset_refuse_common_passwords(
    sqlite_db: Database, portal: Portal
) -> None:
    world = await build_world(sqlite_db)
    client = Client(portal)
    try:
        form = {"name": "新井 光", "phone": "090-5555-0001", "relation": "mother",
                "language": "ja", "password": "password123"}
        status, page = await client.send(f"/r/{world.token_new}", form)
        assert status == 400 and COMMON in page
        status, page = await client.send(f"/r/{world.token_new}", {**form, "password": "kumo7"})
        assert status == 400 and "8 文字以上" in page
        assert (await client.send(f"/r/{world.token_new}",
                                  {**form, "password": "kumo-no-ue-7"}))[0] == 302

        async with transaction(sqlite_db.sessions) as s:
            row, code = await verification.issue(
                s, world.hanako, "reset", "hanako@example.jp", portal.clock.now(),
                ensure_secret(portal.app.settings, "secret_key"))
        status, page = await client.send(f"/password/reset/{row.id}/{code}",
                                         {"password": "sunshine1"})
        assert status == 400 and COMMON in page
        assert (await client.send(f"/password/reset/{row.id}/{code}",
                                  {"password": "kumo-no-ue-8"}))[0] == 302
    finally:
        await client.http.close()


async def test_staff_accounts_refuse_common_passwords(sqlite_db: Database) -> None:
    async with transaction(sqlite_db.sessions) as s:
        school = await make_school(s)
        with pytest.raises(ValueError, match="password_common"):
            await staff_svc.create_staff(s, school.id, name="森", email="mori@school.test",
                                         role="teacher", password="qwertyuiop", class_ids=[])
        with pytest.raises(ValueError, match="password_short"):
            await staff_svc.create_staff(s, school.id, name="森", email="mori@school.test",
                                         role="teacher", password="kumo-7", class_ids=[])
        await staff_svc.create_staff(s, school.id, name="森", email="mori@school.test",
                                     role="teacher", password="kumo-no-ue-9", class_ids=[])
