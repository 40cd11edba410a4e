"""Uploads with the wrong type or a huge size: a clear refusal, nothing stored."""

from __future__ import annotations

import aiohttp

from tests.db_fixtures import Database
from tests.security_world import SIGN_IN, build_security_world
from tests.test_guardian_authz import Client
from tests.web_fixtures import Portal

HUGE = b"\xff" * (9 * 1024 * 1024)  # past the portal's 8 MB limit


async def _upload(client: Client, path: str, field: str, name: str, body: bytes,
                  token: str) -> tuple[int, str]:
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field(field, body, filename=name, content_type="application/octet-stream")
    async with client.http.post(client.base + path, data=form, allow_redirects=False) as resp:
        return resp.status, await resp.text()


async def test_wrong_types_and_huge_files_are_refused(
    sqlite_db: Database, portal: Portal
) -> None:
    sw = await build_security_world(sqlite_db)
    family, admin = Client(portal), Client(portal)
    try:
        await family.login("hanako@example.jp", sw.password("guardian"))
        _path, email = SIGN_IN["admin"]  # type: ignore[misc]
        await admin.login(email, sw.password("admin"), "/staff/login", "email")
        icon = f"/c/{sw.world.taro}/profile"
        status, page = await _upload(family, icon, "icon", "photo.jpg",
                                     b"<?php system($_GET['c']); ?>", await family.token())
        assert status == 400 and "JPEG" in page  # "choose a JPEG or PNG photo"
        status, _page = await _upload(family, icon, "icon", "big.jpg", HUGE,
                                      await family.token())
        assert status == 413
        assert (await family.get(f"/c/{sw.world.taro}/icon"))[0] == 404  # nothing stored

        prompt = "/staff/prompts/ja/digit.0/upload"
        status, page = await _upload(admin, prompt, "recording", "voice.wav",
                                     b"MZ\x90\x00not audio at all", await admin.token())
        assert status == 400 and 'class="flash error"' in page
        status, _page = await _upload(admin, prompt, "recording", "voice.wav", HUGE,
                                      await admin.token())
        assert status == 413
    finally:
        for c in (family, admin):
            await c.http.close()
