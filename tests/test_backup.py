"""`renraku backup` / `renraku restore`: taken while reports are being written, restored into
an empty folder, and the absence line then works on the restored data (real Asterisk).
A PostgreSQL round trip (pg_dump / pg_restore) uses scratch databases on the shared server.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tarfile
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from ivr import absence_flow
from ivr.fastagi import AGIChannel
from models import AbsenceReport, Child, Guardian
from models.db import create_engine, session_factory, transaction
from models.migrate import upgrade
from renraku.app import App
from renraku.clock import FakeClock
from renraku.services import absences
from renraku.services.backup import BackupError, make_backup, read_manifest, restore_backup
from renraku.settings import Settings, ensure_secret
from tests.absence_fakes import ToneVoice
from tests.asterisk_harness import PhoneLines
from tests.db_fixtures import PG_URL, _drop_pg, _postgres, pg_answers
from tests.factories import make_child, make_guardian, make_school
from tests.test_absence_calls import QUICK_ABSENCE, THU, follow, jst
from tests.test_cli import renraku

pytestmark = pytest.mark.asterisk
NUMBER = "09036000001"


async def open_data(settings: Settings) -> App:
    await upgrade(settings.db_url)
    engine = create_engine(settings.db_url)
    return App(settings, FakeClock(jst(THU, 10, 0)), engine, session_factory(engine))


async def fill(app: App) -> tuple[int, int]:
    """A family, a recorded prompt, a voicemail, secrets, and what must stay out."""
    async with transaction(app.sessions) as s:
        school = await make_school(s, "バックアップ小学校")
        kid = await make_child(s, school, "山田 一郎", "やまだいちろう")
        other = await make_child(s, school, "山田 二郎", "やまだじろう")
        await make_guardian(s, "山田花子", NUMBER, "ja", (kid, other))
    data = app.settings.data_dir
    ensure_secret(app.settings, "secret_key")
    ensure_secret(app.settings, "ami_secret")
    for rel, content in {
        "sounds/ja/renraku/versions/absence.goodbye.v1.wav": b"RIFF recorded",
        "sounds/ja/renraku/voicemail.intro.wav": b"RIFF rendered",
        "voicemail/vm-1796000000-1796000000.1-ja-09036000001.wav": b"RIFF message",
        "sounds/ja/renraku/dyn/cache-1.wav": b"RIFF cache",  # TTS cache: left out
        "asterisk/ivr/etc/extensions.conf": b"; rendered at start",  # left out
    }.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(content)
    return kid.id, other.id


async def report_count(app: App) -> int:
    async with app.sessions() as s:
        return int(await s.scalar(select(func.count(AbsenceReport.id))) or 0)


@pytest.fixture
async def live(tmp_path: Path, lines: PhoneLines) -> AsyncIterator[App]:
    app = await open_data(lines.settings.replace(data_dir=tmp_path / "live", database_url=""))
    yield app
    await app.close()


async def test_backup_during_activity_restores_and_the_line_works(
        live: App, lines: PhoneLines, tmp_path: Path) -> None:
    kid, other = await fill(live)
    stop = asyncio.Event()

    async def parents_reporting() -> int:
        """Reports keep arriving (one transaction each) while the backup runs."""
        n = 0
        while not stop.is_set():
            async with transaction(live.sessions) as s:
                draft = absences.ReportDraft(other, date(2027, 1, 4) + timedelta(days=n),
                                             "absence", "illness")
                await absences.submit(s, draft, channel="web", guardian_id=None,
                                      now=live.clock.now())
            n += 1
            await asyncio.sleep(0.01)
        return n

    writer = asyncio.ensure_future(parents_reporting())
    await asyncio.sleep(0.3)
    before = await report_count(live)
    archive = tmp_path / "out" / "renraku.tar.gz"
    summary = await make_backup(live.settings, archive)
    after = await report_count(live)
    stop.set()
    written = await writer
    assert before >= 3 and written > before
    assert summary.database == "sqlite" and archive.stat().st_mode & 0o077 == 0
    names = {e["path"] for e in read_manifest(archive)["files"]}
    assert {"data/secret_key", "data/ami_secret",
            "data/sounds/ja/renraku/versions/absence.goodbye.v1.wav",
            "data/sounds/ja/renraku/voicemail.intro.wav",
            "data/voicemail/vm-1796000000-1796000000.1-ja-09036000001.wav"} <= names
    assert not any("/dyn/" in n or n.startswith("data/asterisk") for n in names)

    # Never over existing data: a non-empty folder is refused, untouched.
    with pytest.raises(BackupError, match="not empty"):
        await restore_backup(live.settings, archive)
    restored_settings = live.settings.replace(data_dir=tmp_path / "restored")
    await restore_backup(restored_settings, archive)
    restored = await open_data(restored_settings)
    try:
        db = sqlite3.connect(restored_settings.sqlite_path)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        db.close()
        # A consistent snapshot from inside the backup: every report committed before it
        # started, none half-written, none from after it ended.
        assert before <= await report_count(restored) <= after
        for rel in ("secret_key", "ami_secret", "sounds/ja/renraku/voicemail.intro.wav",
                    "voicemail/vm-1796000000-1796000000.1-ja-09036000001.wav"):
            assert (restored_settings.data_dir / rel).read_bytes() == (
                live.settings.data_dir / rel).read_bytes(), rel
        assert (restored_settings.data_dir / "secret_key").stat().st_mode & 0o077 == 0
        assert not (restored_settings.data_dir / "sounds/ja/renraku/dyn").exists()

        # The family calls the restored system and reports as usual.
        voice = ToneVoice(lines.settings)

        async def handler(agi: AGIChannel) -> None:
            await absence_flow.handle(agi, restored, voice)

        lines.route("absence", handler)
        phone = lines.phone(NUMBER)
        await phone.call()
        await follow(phone, [("absence.welcome", "1"), ("absence.child_option", "1"),
                             *QUICK_ABSENCE[1:]])
        await phone.wait_end()
        async with restored.sessions() as s:
            assert await s.scalar(select(func.count(AbsenceReport.id)).where(
                AbsenceReport.child_id == kid, AbsenceReport.day == THU)) == 1
            assert (await s.scalar(select(Guardian.name))) == "山田花子"
    finally:
        await restored.close()


def test_cli_backup_restore_and_voicemail_import(tmp_path: Path) -> None:
    """The commands as an admin types them (each one a Python start: kept to five)."""
    live, copy = tmp_path / "live", tmp_path / "copy"
    assert renraku("db", "upgrade", data_dir=live).returncode == 0
    out = renraku("voicemail", "import", data_dir=live)
    assert out.returncode == 0 and "0 new voicemail" in out.stdout
    archive = tmp_path / "b.tar.gz"
    made = renraku("backup", "-o", str(archive), data_dir=live)
    assert made.returncode == 0, made.stderr
    assert "backup written" in made.stdout and tarfile.is_tarfile(archive)
    back = renraku("restore", str(archive), "--data-dir", str(copy), data_dir=live)
    assert back.returncode == 0, back.stderr
    revision = sqlite3.connect(copy / "renraku.db").execute(
        "SELECT version_num FROM alembic_version").fetchone()
    assert revision == (read_manifest(archive)["database"]["revision"],)
    again = renraku("restore", str(archive), "--data-dir", str(copy), data_dir=live)
    assert again.returncode == 1 and "not empty" in again.stdout


@pytest.mark.postgres
async def test_postgres_round_trip(tmp_path: Path) -> None:
    if not pg_answers():
        pytest.fail(f"PostgreSQL does not answer at {PG_URL}")
    source, source_name = await _postgres()
    target_name = source_name + "_r"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{target_name}"'))
        settings = Settings(data_dir=tmp_path / "a", database_url=source.url)
        app = App(settings, FakeClock(jst(THU, 10, 0)), source.engine, source.sessions)
        await fill(app)
        archive = tmp_path / "pg.tar.gz"
        assert (await make_backup(settings, archive)).database == "postgresql"
        target_url = source.url.rsplit("/", 1)[0] + "/" + target_name
        into = Settings(data_dir=tmp_path / "b", database_url=target_url)
        await restore_backup(into, archive)
        engine = create_engine(target_url)
        try:
            async with session_factory(engine)() as s:
                assert await s.scalar(select(func.count(Child.id))) == 2
                assert await s.scalar(select(Guardian.name)) == "山田花子"
        finally:
            await engine.dispose()
        assert (into.data_dir / "secret_key").read_text() == (
            settings.data_dir / "secret_key").read_text()
        with pytest.raises(BackupError, match="not empty"):  # the database has tables now
            await restore_backup(into.replace(data_dir=tmp_path / "c"), archive)
    finally:
        await source.engine.dispose()
        await _drop_pg(source_name)
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{target_name}" WITH (FORCE)'))
        await admin.dispose()
