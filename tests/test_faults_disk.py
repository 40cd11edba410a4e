"""Disk full for the recordings folder: the admin's upload gets a clear error, nothing is
half-stored, and the absence line keeps working (its prompts are read, not written).

The full disk is a 1 MiB tmpfs mounted over ``sounds/ja/renraku/versions`` of the real-call
harness's data folder and filled up; it is unmounted when the test ends, and by atexit or
a signal handler when the test process is stopped.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from ivr import asterisk_runtime as rt
from models import AbsenceReport, Prompt
from models.db import transaction
from prompts.catalog import catalog
from renraku.services import staff as staff_svc
from tests.factories import make_school
from tests.staff_fixtures import StaffPortal
from tests.test_absence_calls import QUICK_ABSENCE, Line, family, follow
from tests.test_absence_calls import line as line  # the fixture, shared
from tests.test_staff_prompts_page import tone
from webportal.app import create_app

pytestmark = pytest.mark.asterisk
KEY = "absence.goodbye"
_MOUNTED: list[Path] = []


def _unmount_all() -> None:
    for target in reversed(_MOUNTED):
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)
    _MOUNTED.clear()


def _on_signal(signum: int, frame: object, previous: object) -> None:
    _unmount_all()
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


@contextlib.contextmanager
def full_tmpfs(target: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs at ``target``, filled to the last byte."""
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(target)],
                   check=True)
    _MOUNTED.append(target)
    atexit.register(_unmount_all)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous = signal.getsignal(sig)
        signal.signal(sig, lambda n, f, p=previous: _on_signal(n, f, p))
    try:
        with contextlib.suppress(OSError), open(target / "filler", "wb") as fh:
            while True:
                fh.write(b"\0" * 65536)
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)
        with contextlib.suppress(ValueError):
            _MOUNTED.remove(target)


async def test_disk_full_upload_refused_clearly_line_keeps_working(line: Line,
                                                                    tmp_path: Path) -> None:
    app = line.app
    async with transaction(app.sessions) as s:
        school = await make_school(s, "録音の学校")
        await staff_svc.create_staff(s, school.id, name="校長", email="disk@x.jp",
                                     role="admin", password="admin-pass-12", class_ids=[])
    portal = StaffPortal(app, create_app(app))
    versions = app.settings.sounds_dir / "ja" / "renraku" / "versions"
    recording = tone(tmp_path / "new.wav", "2")
    try:
        admin = await portal.client_as_staff("disk@x.jp", "admin-pass-12")
        with full_tmpfs(versions):
            assert str(versions) in rt.mounts()
            form = aiohttp.FormData()
            form.add_field("csrf_token", admin.csrf_token)  # type: ignore[attr-defined]
            form.add_field("recording", recording, filename="new.wav", content_type="audio/wav")
            r = await admin.post(f"/staff/prompts/ja/{KEY}/upload", data=form)
            # A clear message in the admin's language, not a 500; nothing half-stored.
            assert r.status == 400
            assert catalog()["admin.disk_full"].text("ja") in await r.text()
            assert sorted(p.name for p in versions.iterdir()) == ["filler"]
            async with app.sessions() as s:
                assert await s.scalar(select(func.count()).select_from(Prompt)) == 0
            # Meanwhile a parent reports an absence on the phone as usual.
            (kid,), _ = await family(app, "09035000001")
            phone = line.phone("09035000001")
            await phone.call()
            await follow(phone, QUICK_ABSENCE)
            await phone.wait_end()
            async with app.sessions() as s:
                assert await s.scalar(select(func.count(AbsenceReport.id)).where(
                    AbsenceReport.child_id == kid)) == 1
        assert str(versions) not in rt.mounts()
        # Space again: the same upload goes through.
        form = aiohttp.FormData()
        form.add_field("csrf_token", admin.csrf_token)  # type: ignore[attr-defined]
        form.add_field("recording", recording, filename="new.wav", content_type="audio/wav")
        assert (await admin.post(f"/staff/prompts/ja/{KEY}/upload", data=form)).status == 200
    finally:
        await portal.close()
