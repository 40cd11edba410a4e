"""The running application's shared parts: settings, clock and database sessions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models.db import create_engine, session_factory, transaction
from models.writer import WriteLoop
from renraku.clock import Clock, clock_from_settings
from renraku.settings import Settings

T = TypeVar("T")


@dataclass(eq=False)  # one App is one running application: compared by identity
class App:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # Set by the FastAGI server: the calls' database work runs on a loop of its own
    # (models.writer)
    writer: WriteLoop | None = None

    async def write(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``fn(session)`` in one write transaction, on the write loop when there is one."""
        if self.writer is not None:
            return await self.writer.run(fn)
        async with transaction(self.sessions) as s:
            return await fn(s)

    async def read(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``fn(session)`` with a reading session, on the write loop when there is one: the
        whole read is one hand-over between loops instead of a few per statement."""
        if self.writer is not None:
            return await self.writer.read(fn)
        async with self.sessions() as s:
            return await fn(s)

    def start_write_loop(self) -> None:
        self.writer = WriteLoop(self.engine.url.render_as_string(hide_password=False),
                                self.settings.database_pool_size)

    async def close(self) -> None:
        if self.writer is not None:
            await self.writer.close()
        await self.engine.dispose()


def open_app(settings: Settings, clock: Clock | None = None) -> App:
    engine = create_engine(settings.db_url, pool_size=settings.database_pool_size)
    return App(
        settings=settings,
        clock=clock or clock_from_settings(settings.testing, settings.fake_now),
        engine=engine,
        sessions=session_factory(engine),
    )
