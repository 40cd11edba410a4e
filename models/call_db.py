"""Where the calls' database work runs: a whole read or write transaction at once, never a
turn of a busy event loop per statement.

At the morning peak one event loop carries hundreds of calls. A transaction on it through
aiosqlite's thread or asyncpg's socket needs a turn of that loop for every statement, so a
confirm held SQLite's write lock, or a PostgreSQL transaction stayed open, for as long as
the busiest loop took to go round five times, and every other confirm queued behind it.

- **SQLite** (``InlineSqlite``): the statements run right on the calls' loop, from BEGIN
  to COMMIT without a pause. A report is three short statements (about a millisecond of
  SQLite); handing them to another thread cost more than that on a loaded 2-core box,
  where every hand-over waited for a core and then for the GIL (README, Performance,
  issue #17 fifth round). Writers of this process take turns on its write lock
  (models.db.transaction) before BEGIN; a writer of another process (or of the portal's
  engine) that holds SQLite's lock is waited for with the loop free (``_InlineSqlite``).
- **PostgreSQL** (``WriteLoop``): an event loop of its own in a thread of its own; the
  caller's loop waits once for the transaction's result.

Results come back as plain values or ORM objects whose attributes are loaded (sessions
here keep them after commit); touch no lazy relation.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import (
    BUSY_TIMEOUT_MS,
    create_engine,
    one_statement,
    reading,
    session_factory,
    transaction,
)
from renraku import eventloop

T = TypeVar("T")
BUSY_FIRST_WAIT_S = 0.001
BUSY_LONGEST_WAIT_S = 0.05


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "database is locked" in str(exc)


class _InlineSqlite(aiosqlite.Connection):
    """aiosqlite running statements on the calling thread: sqlite3 releases the GIL while it
    works, and nothing else waits meanwhile.

    Its connections never wait in SQLite's busy handler (busy_timeout 0): that handler
    sleeps in the thread, which here is the calls' loop. A statement that finds the
    database locked by another connection had no effect and is tried again after an
    asyncio sleep (1 ms, doubling up to 50 ms), as the handler would have, for as long as
    busy_timeout allows."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._connection is None:
            raise ValueError("no active connection")
        wait, waited = BUSY_FIRST_WAIT_S, 0.0
        while True:
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or waited >= BUSY_TIMEOUT_MS / 1000:
                    raise
            await asyncio.sleep(wait)
            waited += wait
            wait = min(wait * 2, BUSY_LONGEST_WAIT_S)


def _inline_sqlite(path: str) -> Callable[[], Awaitable[aiosqlite.Connection]]:
    async def connect() -> aiosqlite.Connection:
        # Opened on aiosqlite's own thread (which then idles), used from the caller's
        return await _InlineSqlite(partial(sqlite3.connect, path, check_same_thread=False), 64)

    return connect


def _no_busy_handler(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout=0")  # after models.db's pragmas: waits are ours
    cursor.close()


class InlineSqlite:
    def __init__(self, url: str) -> None:
        self.written = 0  # transactions committed (tests check writes really come here)
        path = make_url(url).database
        if not path or path == ":memory:":  # another connection would see another database
            raise ValueError("the calls need a SQLite file, not an in-memory database")
        self.engine = create_engine(url, async_creator=_inline_sqlite(str(path)))
        event.listen(self.engine.sync_engine, "connect", _no_busy_handler)
        self.sessions = session_factory(self.engine)

    async def run(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``fn(session)`` in one transaction: committed when it returns, rolled back when
        it raises."""
        async with transaction(self.sessions) as s:
            result = await fn(s)
        self.written += 1
        return result

    # A one-statement write (models.db.one_statement) is a transaction like any other here
    run_one = run

    async def read(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``fn(session)`` with a reading session (no write lock, nothing committed)."""
        async with self.sessions() as s:
            return await fn(s)

    async def close(self) -> None:
        await self.engine.dispose()


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
        self.loop = eventloop.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.engine = create_engine(self.url, pool_size=self.pool_size)
        self.sessions = session_factory(self.engine)
        self._ready.set()
        self.loop.run_forever()

    async def run(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``fn(session)`` in one transaction here: committed when it returns, rolled back
        when it raises (the exception comes back to the caller)."""
        return await self._write(transaction, fn)

    async def run_one(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``fn(session)``, a write of one statement, here (models.db.one_statement)."""
        return await self._write(one_statement, fn)

    async def _write(self, unit: Callable[[Any], AbstractAsyncContextManager[AsyncSession]],
                     fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async def job() -> T:
            async with unit(self.sessions) as s:
                result = await fn(s)
            self.written += 1
            return result

        future: Future[T] = asyncio.run_coroutine_threadsafe(job(), self.loop)
        return await asyncio.wrap_future(future)

    async def read(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``fn(session)`` with a reading session here (models.db.reading)."""
        async def job() -> T:
            async with reading(self.sessions) as s:
                return await fn(s)

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(job(), self.loop))

    async def close(self) -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.engine.dispose(),
                                                                   self.loop))
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join)
        self.loop.close()


CallDatabase = InlineSqlite | WriteLoop


def call_database(url: str, pool_size: int | None = None) -> CallDatabase:
    """The calls' database work for this URL: inline on SQLite, a write loop on PostgreSQL."""
    if make_url(url).get_backend_name() == "sqlite":
        return InlineSqlite(url)
    return WriteLoop(url, pool_size)
