"""The admin's prompts page: upload a recording (bad files refused), hear versions, roll back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from models import Prompt
from models.db import transaction
from prompts import store
from prompts.catalog import catalog
from renraku.services import staff as staff_svc
from tests.factories import make_school
from tests.staff_fixtures import StaffPortal

KEY = "absence.goodbye"


def tone(path: Path, seconds: str) -> bytes:
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(path), "synth",
                    seconds, "sine", "500", "vol", "0.5"], check=True)
    return path.read_bytes()


async def test_upload_errors_versions_and_rollback(staff_portal: StaffPortal,
                                                   tmp_path: Path) -> None:
    app = staff_portal.app
    async with transaction(app.sessions) as s:
        school = await make_school(s)
        await staff_svc.create_staff(s, school.id, name="校長", email="admin@x.jp", role="admin",
                                     password="admin-pass-12", class_ids=[])
        await staff_svc.create_staff(s, school.id, name="森", email="mori@x.jp", role="teacher",
                                     password="teacher-pass-1", class_ids=[])
    teacher = await staff_portal.client_as_staff("mori@x.jp", "teacher-pass-1")
    assert (await teacher.get("/staff/prompts")).status == 403

    admin = await staff_portal.client_as_staff("admin@x.jp", "admin-pass-12")
    page = await admin.get("/staff/prompts?lang=en")
    assert page.status == 200 and KEY in await page.text()

    async def upload(name: str, content: bytes) -> tuple[int, str]:
        form = aiohttp.FormData()
        form.add_field("csrf_token", admin.csrf_token)  # type: ignore[attr-defined]
        form.add_field("recording", content, filename=name, content_type="audio/wav")
        r = await admin.post(f"/staff/prompts/en/{KEY}/upload", data=form)
        return r.status, await r.text()

    async def rows() -> int:
        async with app.sessions() as s:
            return await s.scalar(select(func.count()).select_from(Prompt)) or 0

    for name, content, message_key in [
        ("notes.wav", b"this is not audio at all", "admin.recording_not_audio"),
        ("empty.wav", b"", "admin.recording_empty"),
        ("long.wav", tone(tmp_path / "long.wav", str(store.MAX_RECORDING_S + 5)),
         "admin.recording_too_long"),
    ]:
        status, text = await upload(name, content)
        # The admin's language is Japanese: the message is the catalog's Japanese text.
        assert status == 400 and catalog()[message_key].text("ja") in text, name
    assert await rows() == 0  # nothing changed

    for seconds in ("1", "2"):
        status, text = await upload(f"v{seconds}.wav", tone(tmp_path / f"v{seconds}.wav", seconds))
        assert status == 200, text[:400]
    async with app.sessions() as s:
        current = await store.active(s, KEY, "en")
    assert current is not None and current.version == 2 and current.source == "recorded"
    audio = await admin.get(f"/staff/prompts/audio/en/{KEY}/1.wav")
    assert audio.status == 200 and (await audio.read())[:4] == b"RIFF"
    assert f"/staff/prompts/audio/en/{KEY}/2.wav" in await (await admin.get(
        "/staff/prompts?lang=en")).text()

    r = await staff_portal.post(admin, f"/staff/prompts/en/{KEY}/rollback", {})
    assert r.status == 200
    async with app.sessions() as s:
        current = await store.active(s, KEY, "en")
    assert current is not None and current.version == 1
