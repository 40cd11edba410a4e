"""Backups: the database and the data folder's irreplaceable files in one archive, and back.

``renraku backup`` writes a ``.tar.gz`` holding
- ``database/renraku.sqlite``: a consistent copy made with SQLite's online backup API
  (writers carry on meanwhile), or ``database/renraku.pgdump`` from ``pg_dump -Fc``;
- ``data/…``: the data folder's files: generated secrets, prompt recordings and the rendered
  prompts the line plays (the voicemail fallback's among them, which Asterisk plays without
  the app), voicemail messages, profile icons. Left out: the database files (above), the
  rendered Asterisk configuration and logs (``asterisk/``, made again at start) and the
  TTS cache (``sounds/*/renraku/dyn``, spoken again on demand);
- ``manifest.json``: the schema revision and every file with its size, SHA-256 and mode
  (the secrets stay readable by their owner only).

``renraku restore`` checks every checksum, refuses a data folder (or PostgreSQL database)
that is not empty, writes the files, loads the database and upgrades its schema to this
version's head.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import hashlib
import io
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import text

from models.db import create_engine
from models.migrate import upgrade
from renraku import __version__
from renraku.settings import Settings

FORMAT = 1
SQLITE_NAME = "database/renraku.sqlite"
PGDUMP_NAME = "database/renraku.pgdump"
SKIP_TOP = {"asterisk", "backups"}  # regenerated at start / where backups may be kept
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says what to do."""


@dataclass(frozen=True)
class Summary:
    archive: Path
    database: str  # "sqlite" | "postgresql"
    files: int
    bytes: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_sqlite(settings: Settings) -> bool:
    return settings.db_url.startswith("sqlite")


def _sqlite_file(settings: Settings) -> Path:
    return Path(settings.db_url.split(":///", 1)[-1])


def _libpq_url(settings: Settings) -> str:
    """The SQLAlchemy URL as pg_dump / pg_restore take it (no driver name)."""
    scheme, rest = settings.db_url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else settings.db_url


def pg_tool(name: str) -> str:
    """pg_dump / pg_restore: on PATH, else the newest under /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise BackupError(f"{name} is not installed (apt-get install postgresql-client)")
    return candidates[-1]


def data_files(settings: Settings) -> list[Path]:
    """The data folder's files worth keeping, relative to it (see the module docstring)."""
    root = settings.data_dir.resolve()
    database = _sqlite_file(settings).resolve() if _is_sqlite(settings) else None
    skip = {Path(f"{database}{suffix}") for suffix in SQLITE_SUFFIXES} if database else set()
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        rel = here.relative_to(root)

        def wanted(d: str, here: Path = here, rel: Path = rel) -> bool:
            if (here / d).is_symlink():
                return False  # Asterisk's shared documentation, linked in
            if rel == Path(".") and d in SKIP_TOP:
                return False
            return not (rel.name == "renraku" and d == "dyn")  # the TTS cache

        dirs[:] = sorted(filter(wanted, dirs))
        for name in sorted(files):
            path = here / name
            if path.is_symlink() or not path.is_file() or path in skip:
                continue
            found.append(path.relative_to(root))
    return found


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent snapshot while other processes write."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst, pages=1024)
    finally:
        dst.close()
        src.close()


async def _scalar(settings: Settings, sql: str) -> Any:
    engine = create_engine(settings.db_url)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text(sql))
    finally:
        await engine.dispose()


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {done.stderr.strip()}")


async def make_backup(settings: Settings, output: Path, now: datetime | None = None) -> Summary:
    """Write the archive to ``output`` (atomically: a crash leaves no half archive)."""
    now = now or datetime.now(UTC)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="renraku-backup-") as tmp:
        dump = Path(tmp) / "db"
        if _is_sqlite(settings):
            source = _sqlite_file(settings)
            if not source.is_file():
                raise BackupError(f"no database at {source} (run `renraku db upgrade` first)")
            db_name, db_kind = SQLITE_NAME, "sqlite"
            await asyncio.to_thread(_sqlite_copy, source, dump)
        else:
            db_name, db_kind = PGDUMP_NAME, "postgresql"
            await asyncio.to_thread(_run, [pg_tool("pg_dump"), "-Fc", "--no-owner", "-f",
                                           str(dump), _libpq_url(settings)], "pg_dump")
        revision = str(await _scalar(settings, "SELECT version_num FROM alembic_version"))
        return await asyncio.to_thread(_write_archive, settings, output, now, dump, db_name,
                                       db_kind, revision)


def _write_archive(settings: Settings, output: Path, now: datetime, dump: Path, db_name: str,
                   db_kind: str, revision: str) -> Summary:
    entries: list[dict[str, Any]] = []
    staged = output.with_name(f".{output.name}.partial")
    try:
        with tarfile.open(staged, "w:gz") as tar:
            def add(path: Path, name: str) -> None:
                st = path.stat()
                entries.append({"path": name, "size": st.st_size, "sha256": _sha256(path),
                                "mode": stat.S_IMODE(st.st_mode)})
                tar.add(path, arcname=name, recursive=False)

            add(dump, db_name)
            for rel in data_files(settings):
                with contextlib.suppress(FileNotFoundError):  # e.g. a TTS file replaced
                    add(settings.data_dir / rel, f"data/{rel.as_posix()}")
            manifest = {
                "format": FORMAT, "created_at": now.isoformat(), "renraku": __version__,
                "database": {"kind": db_kind, "file": db_name, "revision": revision},
                "files": entries,
            }
            blob = json.dumps(manifest, indent=1, ensure_ascii=False).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime, info.mode = len(blob), int(now.timestamp()), 0o600
            tar.addfile(info, io.BytesIO(blob))
        staged.chmod(0o600)  # it holds the secrets and the families' data
        os.replace(staged, output)
    finally:
        staged.unlink(missing_ok=True)
    return Summary(output, db_kind, len(entries) - 1, sum(e["size"] for e in entries))


def read_manifest(archive: Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise KeyError("manifest.json")
            manifest: dict[str, Any] = json.loads(member.read())
    except (OSError, KeyError, tarfile.TarError, ValueError) as exc:
        raise BackupError(f"{archive} is not a Renraku backup ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    return manifest


def _safe(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BackupError(f"refusing a path outside the data folder: {name!r}")
    return path


def _empty(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


async def restore_backup(settings: Settings, archive: Path) -> Summary:
    """Restore into ``settings``' data folder and database, both empty."""
    manifest = read_manifest(archive)
    target = settings.data_dir
    if not _empty(target):
        raise BackupError(f"{target} is not empty: restore only into an empty data folder")
    kind = manifest["database"]["kind"]
    if kind == "sqlite" and not _is_sqlite(settings):
        raise BackupError("this backup holds a SQLite database; restore with database_url "
                          "unset (or pointing at a SQLite file)")
    if kind == "postgresql" and _is_sqlite(settings):
        raise BackupError("this backup holds a PostgreSQL dump: set database_url to an "
                          "empty PostgreSQL database first")
    if kind == "sqlite" and _sqlite_file(settings).exists():
        raise BackupError(f"{_sqlite_file(settings)} exists: restore refuses to overwrite it")
    if kind == "postgresql" and await _scalar(
            settings, "SELECT count(*) FROM information_schema.tables "
                      "WHERE table_schema = 'public'"):
        raise BackupError("the PostgreSQL database is not empty: restore into an empty one")
    await asyncio.to_thread(_unpack, settings, archive, manifest)
    await upgrade(settings.db_url)  # a backup of an older version: bring it up to date
    return Summary(archive, kind, len(manifest["files"]) - 1,
                   sum(e["size"] for e in manifest["files"]))


def _unpack(settings: Settings, archive: Path, manifest: dict[str, Any]) -> None:
    """Every file checked against the manifest in a staging folder, then moved in place."""
    target = settings.data_dir
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".renraku-restore-", dir=target.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for entry in manifest["files"]:
                name = _safe(entry["path"])
                member = tar.extractfile(str(name))
                if member is None:
                    raise BackupError(f"{name} is missing from the archive")
                dest = staging / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                with dest.open("wb") as fh:
                    shutil.copyfileobj(member, fh)
                if _sha256(dest) != entry["sha256"]:
                    raise BackupError(f"{name}: checksum mismatch, the archive is damaged")
                dest.chmod(entry.get("mode", 0o600) & 0o777)  # secrets stay 0600
        target.mkdir(parents=True, exist_ok=True)
        if (staging / "data").is_dir():
            for item in (staging / "data").iterdir():
                os.replace(item, target / item.name)
        dump = staging / manifest["database"]["file"]
        if manifest["database"]["kind"] == "sqlite":
            _sqlite_file(settings).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(dump, _sqlite_file(settings))
        else:
            _run([pg_tool("pg_restore"), "--no-owner", "--exit-on-error", "-d",
                  _libpq_url(settings), str(dump)], "pg_restore")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
