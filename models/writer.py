"""Write transactions (and the reads a call needs at once) on an event loop of their own,
in a thread of their own.

At the morning peak one event loop carries hundreds of calls. A write transaction there
needs a turn of that loop for every statement (each one waits for aiosqlite's thread or
the PostgreSQL socket, then for the loop to resume it), so a confirm held SQLite's write
lock, or a PostgreSQL transaction stayed open, for as long as the busiest loop took to go
round five times, and every other confirm queued behind it. Here the whole transaction
runs on a loop that does nothing else; the caller's loop waits once for its result.

On SQLite the loop also runs each statement itself instead of handing it to aiosqlite's
thread and waiting to be woken (_InlineSqlite): the loop has nothing else to do meanwhile,
and on a loaded machine every hand-over between threads waited for a core.

Results cross back to the caller's thread: return plain values or ORM objects whose
attributes are loaded (sessions here keep them after commit), and touch no lazy relation.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from functools import partial
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import create_engine, session_factory, transaction

T = TypeVar("T")


class _InlineSqlite(aiosqlite.Connection):
    """aiosqlite running statements on the calling thread (the write loop's): sqlite3
    releases the GIL while it works, and nothing else on this loop waits meanwhile."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._connection is None:
            raise ValueError("no active connection")
        return fn(*args, **kwargs)


def _inline_sqlite(path: str) -> Callable[[], Awaitable[aiosqlite.Connection]]:
    async def connect() -> aiosqlite.Connection:
        # Opened on aiosqlite's own thread (which then idles), used from the write loop's
        return await _InlineSqlite(partial(sqlite3.connect, path, check_same_thread=False), 64)

    return connect


class WriteLoop:
    def __init__(self, url: str, pool_size: int | None = None) -> None:
        self.url = url
        self.pool_size = pool_size
        self.written = 0  # transactions committed (tests check writes really come here)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="renraku-writes", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        url = make_url(self.url)
        extra: dict[str, Any] = {}
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            extra["async_creator"] = _inline_sqlite(str(url.database))
        self.engine = create_engine(self.url, pool_size=self.pool_size, **extra)
        self.sessions = session_factory(self.engine)
        self._ready.set()
        self.loop.run_forever()

    async def run(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``fn(session)`` in one transaction here: committed when it returns, rolled back
        when it raises (the exception comes back to the caller)."""
        async def job() -> T:
            async with transaction(self.sessions) as s:
                result = await fn(s)
            self.written += 1
            return result

        future: Future[T] = asyncio.run_coroutine_threadsafe(job(), self.loop)
        return await asyncio.wrap_future(future)

    async def read(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``fn(session)`` with a reading session here (no write lock, nothing committed)."""
        async def job() -> T:
            async with self.sessions() as s:
                return await fn(s)

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(job(), self.loop))

    async def close(self) -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.engine.dispose(),
                                                                   self.loop))
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join)
        self.loop.close()



