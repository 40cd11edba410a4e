"""Schema migrations with Alembic, driven from code (``renraku db upgrade``)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _in_thread(fn, *args) -> asyncio.Future:  # type: ignore[no-untyped-def]
    # env.py runs its own event loop, so Alembic must not run on the caller's loop thread.
    return asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def upgrade(url: str, revision: str = "head") -> None:
    await _in_thread(command.upgrade, alembic_config(url), revision)


async def downgrade(url: str, revision: str) -> None:
    await _in_thread(command.downgrade, alembic_config(url), revision)


def revision(url: str, message: str) -> None:
    command.revision(alembic_config(url), message=message, autogenerate=True)


def _missing_sqlite_file(url: str) -> str | None:
    path = url.split(":///", 1)[-1] if url.startswith("sqlite") else ":memory:"
    return None if path == ":memory:" or Path(path).exists() else path


async def schema_problem(url: str) -> str | None:
    """What is wrong with the database's schema for this code, or None when it is current.

    Read-only: a SQLite file that does not exist is reported, not created.
    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from models.db import create_engine

    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    if missing := _missing_sqlite_file(url):
        return f"there is no database yet at {missing}"

    def read(sync: Any) -> set[str]:
        quiet = logging.getLogger("alembic.runtime.migration")
        level = quiet.level
        quiet.setLevel(logging.WARNING)  # not "Context impl SQLiteImpl." before every command
        try:
            return set(MigrationContext.configure(sync).get_current_heads())
        finally:
            quiet.setLevel(level)

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(read)
    finally:
        await engine.dispose()
    if not current:
        return "the database has no schema yet"
    if current != heads:
        return (f"the database schema is at {', '.join(sorted(current))}, "
                f"this version of Renraku needs {', '.join(sorted(heads))}")
    return None
