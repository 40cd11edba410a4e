"""Where the calls' database work runs: a whole read or write transaction at once, never a
turn of a busy event loop per statement.

At the morning peak one event loop carries hundreds of calls. A transaction on it through
aiosqlite's thread or asyncpg's socket needs a turn of that loop for every statement, so a
confirm held SQLite's write lock, or a PostgreSQL transaction stayed open, for as long as
the busiest loop took to go round five times, and every other confirm queued behind it.

- **SQLite** (``InlineSqlite``): the statements run right on the calls' loop, from BEGIN
  to COMMIT without a pause, through pysqlite's synchronous driver and a plain ORM
  session (``InlineSession``). A report is three short statements (about a millisecond of
  SQLite); handing them to another thread cost more than that on a loaded 2-core box,
  where every hand-over waited for a core and then for the GIL (README, Performance,
  issue #17 fifth round). Writers of this process take turns on its write lock
  (models.db.write_lock) before BEGIN; a writer of another process (or of the portal's
  engine) that holds SQLite's lock is waited for with the loop free (``_patiently``).
- **PostgreSQL** (``WriteLoop``): an event loop of its own in a thread of its own; the
  caller's loop waits once for the transaction's result.

Results come back as plain values or ORM objects whose attributes are loaded (sessions
here keep them after commit); touch no lazy relation.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, event, make_url
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker

from models.db import (
    BUSY_TIMEOUT_MS,
    WRITE,
    create_engine,
    one_statement,
    reading,
    session_factory,
    sqlite_events,
    transaction,
    write_lock,
)
from renraku import eventloop

T = TypeVar("T")
BUSY_FIRST_WAIT_S = 0.001
BUSY_LONGEST_WAIT_S = 0.05


def _busy(exc: OperationalError) -> bool:
    return "database is locked" in str(exc)


class InlineSession:
    """A plain (synchronous) ORM session, presented with the methods the services await on
    an AsyncSession, so that they run here unchanged.

    Why not an AsyncSession: its every statement hops through a greenlet and aiosqlite's
    wrappers even when the statement runs on the calling thread. Measured on the caller's
    load (two statements): 0.75 ms of CPU a call through them, 0.36 through this (README,
    Performance, issue #17 tenth round). A lazy load, which an AsyncSession refuses,
    works here: the services do not rely on the refusal.
    """

    def __init__(self, session: Session) -> None:
        self.sync_session = session

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[Any]:
        with self.sync_session.begin_nested() as savepoint:
            yield savepoint

    def __getattr__(self, name: str) -> Any:  # add, add_all, bind, get_bind, expire…
        return getattr(self.sync_session, name)


def _awaited(name: str) -> Callable[..., Awaitable[Any]]:
    async def method(self: InlineSession, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.sync_session, name)(*args, **kwargs)

    method.__name__ = name
    return method


for _name in ("execute", "scalar", "scalars", "get", "get_one", "flush", "delete", "refresh",
              "merge", "connection"):
    setattr(InlineSession, _name, _awaited(_name))


async def _patiently(attempt: Callable[[], Awaitable[T]]) -> T:
    """``attempt()`` again while SQLite says another connection holds its lock, after an
    asyncio sleep (1 ms, doubling up to 50 ms), for as long as busy_timeout allows: what
    SQLite's busy handler does, but with the loop free (the handler sleeps in the thread,
    which here is the calls' loop). An attempt that found the database locked must have had
    no effect."""
    wait, waited = BUSY_FIRST_WAIT_S, 0.0
    while True:
        try:
            return await attempt()
        except OperationalError as exc:
            if not _busy(exc) or waited >= BUSY_TIMEOUT_MS / 1000:
                raise
        await asyncio.sleep(wait)
        waited += wait
        wait = min(wait * 2, BUSY_LONGEST_WAIT_S)


def _no_busy_handler(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout=0")  # after models.db's pragmas: waits are ours
    cursor.close()


class InlineSqlite:
    # Connections kept for the calls; more open while more sessions are, never a wait for
    # one (a wait in the pool would block the loop that returns them)
    POOL_SIZE = 8

    def __init__(self, url: str) -> None:
        self.written = 0  # transactions committed (tests check writes really come here)
        path = make_url(url).database
        if not path or path == ":memory:":  # another connection would see another database
            raise ValueError("the calls need a SQLite file, not an in-memory database")
        # pysqlite's own driver, synchronous: every statement runs on the calling thread
        self.sync_engine = create_sync_engine(f"sqlite:///{path}", pool_size=self.POOL_SIZE,
                                              max_overflow=-1)
        sqlite_events(self.sync_engine)
        event.listen(self.sync_engine, "connect", _no_busy_handler)
        self.sessions = sessionmaker(self.sync_engine, expire_on_commit=False)

    async def run(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``fn(session)`` in one transaction: committed when it returns, rolled back when
        it raises. Writers of this process take turns (models.db.write_lock); another
        process's writer is waited for at BEGIN IMMEDIATE, with the loop free."""
        lock = write_lock(self.sync_engine)
        assert lock is not None
        async with lock:
            session = await _patiently(self._begin_write)
            with session:  # closing rolls back what was not committed
                result = await fn(cast(AsyncSession, InlineSession(session)))
                session.commit()
        self.written += 1
        return result

    async def _begin_write(self) -> Session:
        session = self.sessions()
        try:
            session.connection(execution_options={WRITE: True})  # BEGIN IMMEDIATE
        except BaseException:
            session.close()
            raise
        return session

    # A one-statement write (models.db.one_statement) is a transaction like any other here
    run_one = run

    async def read(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``fn(session)`` with a reading session (no write lock, nothing committed), run
        again whole if SQLite found its database locked (WAL readers rarely are)."""
        async def attempt() -> T:
            with self.sessions() as session:
                return await fn(cast(AsyncSession, InlineSession(session)))

        return await _patiently(attempt)

    async def close(self) -> None:
        self.sync_engine.dispose()


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

    @property
    def sync_engine(self) -> Engine:
        """The engine's synchronous core, for event listeners (as InlineSqlite's)."""
        return self.engine.sync_engine

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
