"""Database fixtures: every model test runs on SQLite and on PostgreSQL.

PostgreSQL: ``RENRAKU_TEST_PG_URL`` (default: the local server, trust auth, database
``test``). Each pytest process creates its own database beside it and drops it at the end,
so parallel runs never share tables. Tests are skipped on PostgreSQL only when no server
answers, and the skip reason says so.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models import Base
from models.db import create_engine, session_factory
from models.migrate import upgrade

PG_URL = os.environ.get(
    "RENRAKU_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def pg_answers(url: str = PG_URL) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 2):
            return True
    except OSError:
        return False


@dataclass
class Database:
    backend: str
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    async def truncate(self) -> None:
        names = [t.name for t in reversed(Base.metadata.sorted_tables)]
        async with self.engine.begin() as conn:
            if self.backend == "postgresql":
                await conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
            else:
                for name in names:
                    await conn.execute(text(f"DELETE FROM {name}"))


async def _sqlite(tmp_path_factory: pytest.TempPathFactory) -> Database:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'renraku.db'}"
    await upgrade(url)
    engine = create_engine(url)
    return Database("sqlite", url, engine, session_factory(engine))


async def _postgres() -> tuple[Database, str]:
    name = f"renraku_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    await upgrade(url)
    engine = create_engine(url)
    return Database("postgresql", url, engine, session_factory(engine)), name


async def _drop_pg(name: str) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


class Databases:
    """Creates each backend's database on first use and keeps it for the session."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._dbs: dict[str, Database] = {}
        self._pg_name = ""

    async def get(self, backend: str) -> Database:
        if backend not in self._dbs:
            if backend == "sqlite":
                self._dbs[backend] = await _sqlite(self._tmp)
            else:
                if not pg_answers():
                    pytest.skip(
                        f"PostgreSQL: no server answers at {urlsplit(PG_URL).netloc}; skipped"
                    )
                self._dbs[backend], self._pg_name = await _postgres()
        database = self._dbs[backend]
        await database.truncate()
        return database

    async def close(self) -> None:
        for database in self._dbs.values():
            await database.engine.dispose()
        if self._pg_name:
            await _drop_pg(self._pg_name)


@pytest.fixture(scope="session")
async def databases(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Databases]:
    pool = Databases(tmp_path_factory)
    yield pool
    await pool.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, databases: Databases) -> Database:
    """A migrated, empty database: each test runs once per backend."""
    return await databases.get(request.param)


@pytest.fixture
async def sqlite_db(databases: Databases) -> Database:
    """For tests about something other than the database itself: SQLite only."""
    return await databases.get("sqlite")
