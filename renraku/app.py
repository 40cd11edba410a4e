"""The running application's shared parts: settings, clock and database sessions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models.db import create_engine, session_factory
from renraku.clock import Clock, clock_from_settings
from renraku.settings import Settings


@dataclass
class App:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    async def close(self) -> None:
        await self.engine.dispose()


def open_app(settings: Settings, clock: Clock | None = None) -> App:
    engine = create_engine(settings.db_url, pool_size=settings.database_pool_size)
    return App(
        settings=settings,
        clock=clock or clock_from_settings(settings.testing, settings.fake_now),
        engine=engine,
        sessions=session_factory(engine),
    )
