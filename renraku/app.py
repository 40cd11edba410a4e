"""The running application's shared parts: settings, clock and database sessions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models.call_db import CallDatabase, call_database
from models.db import create_engine, one_statement, reading, session_factory, transaction
from renraku.clock import Clock, clock_from_settings
from renraku.settings import Settings

T = TypeVar("T")


@dataclass(eq=False)  # one App is one running application: compared by identity
class App:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # Set by the FastAGI server: where the calls' database work runs (models.call_db)
    call_db: CallDatabase | None = None

    async def write(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``fn(session)`` in one write transaction, the calls' way when they have one."""
        if self.call_db is not None:
            return await self.call_db.run(fn)
        async with transaction(self.sessions) as s:
            return await fn(s)

    async def write_one(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``fn(session)``, a write of one statement (models.db.one_statement), the calls'
        way when they have one."""
        if self.call_db is not None:
            return await self.call_db.run_one(fn)
        async with one_statement(self.sessions) as s:
            return await fn(s)

    async def read(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``fn(session)`` with a reading session, the calls' way when they have one: the
        whole read at once instead of a turn of the loop per statement."""
        if self.call_db is not None:
            return await self.call_db.read(fn)
        async with reading(self.sessions) as s:
            return await fn(s)

    def start_call_database(self) -> None:
        self.call_db = call_database(self.engine.url.render_as_string(hide_password=False),
                                     self.settings.database_pool_size)

    async def close(self) -> None:
        if self.call_db is not None:
            await self.call_db.close()
        await self.engine.dispose()


def open_app(settings: Settings, clock: Clock | None = None) -> App:
    engine = create_engine(settings.db_url, pool_size=settings.database_pool_size)
    return App(
        settings=settings,
        clock=clock or clock_from_settings(settings.testing, settings.fake_now),
        engine=engine,
        sessions=session_factory(engine),
    )
