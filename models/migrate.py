"""Schema migrations with Alembic, driven from code (``renraku db upgrade``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

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
