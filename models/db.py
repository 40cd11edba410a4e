"""Engines and sessions: SQLite (WAL, foreign keys on) by default, PostgreSQL by URL."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

_log = logging.getLogger(__name__)
T = TypeVar("T")


BUSY_TIMEOUT_MS = 10_000


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    # Writers from the FastAGI server, web portal and dialer queue instead of failing.
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.close()


def sqlite_events(engine: Engine) -> None:
    """What every SQLite engine of Renraku does on its connections (async or not)."""
    event.listen(engine, "connect", _sqlite_pragmas)
    # pysqlite's own transaction handling begins lazily, at the first write; emit BEGIN
    # ourselves. A write transaction (``transaction()``) takes the write lock up front
    # with BEGIN IMMEDIATE: a deferred one that read first could not upgrade when another
    # writer committed meanwhile (SQLITE_BUSY at once, no busy wait). Reads stay
    # deferred, so in WAL mode they run beside a writer instead of queueing for its lock.
    event.listen(engine, "connect", _no_autobegin)
    event.listen(engine, "begin", _begin)


def _no_autobegin(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None


def _begin(conn: Any) -> None:
    write = conn.get_execution_options().get(WRITE)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def create_engine(url: str, pool_size: int | None = None, **kwargs: Any) -> AsyncEngine:
    """``pool_size`` applies to PostgreSQL (plus as many overflow connections)."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)
        sqlite_events(engine.sync_engine)
        return engine
    if kwargs.get("poolclass") is None:
        if pool_size is not None:
            kwargs.setdefault("pool_size", pool_size)
            kwargs.setdefault("max_overflow", pool_size)
        # The connection returned last goes out first: a few backends serve a steady load
        # with their statements prepared and planned, rather than all of the pool taking
        # turns, each preparing every statement anew (issue #17, eleventh round: the
        # backends' CPU at the morning peak 2.25 → 1.90 ms a call). The rest sit idle.
        kwargs.setdefault("pool_use_lifo", True)
    engine = create_async_engine(url, **kwargs)
    event.listen(engine.sync_engine, "checkin", _note_checkin)
    event.listen(engine.sync_engine, "checkout", functools.partial(_ping_if_idle, engine.dialect))
    return engine


# Liveness of pooled PostgreSQL connections. SQLAlchemy's pool_pre_ping costs three round
# trips on asyncpg at every checkout (BEGIN, an empty query, ROLLBACK: 6 of a register
# page's 14). A connection back from use a moment ago is all but certainly alive; one that
# sat idle may have been closed under us (a server restart in the night, an idle timeout,
# a firewall), so only that one is pinged, in one round trip. One that died in the
# moment since its last use shows as a disconnect at its first statement: SQLAlchemy
# then drops every older connection of the pool, and a read that may run twice retries
# (``retry_on_disconnect``). Not pool_recycle: an age limit would still hand out a
# connection the server closed a second ago, and reconnect live ones for nothing.
IDLE_PING_S = 2.0
_CHECKED_IN = "renraku_checked_in"


def _note_checkin(_dbapi_conn: Any, record: Any) -> None:
    if record is not None:
        record.info[_CHECKED_IN] = time.monotonic()


def _ping_if_idle(dialect: Any, dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    since = record.info.get(_CHECKED_IN)  # none yet: a new connection, alive
    if since is None or time.monotonic() - since < IDLE_PING_S:
        return
    try:  # the simple-query protocol: no statement to prepare, no transaction
        dbapi_conn.run_async(lambda driver: driver.execute("SELECT 1"))
    except Exception as exc:
        if not dialect.is_disconnect(exc, dbapi_conn, None):
            raise
        # A dead idle connection: the server most likely restarted, and every connection
        # older than this one is dead too. The pool reconnects and checks out again.
        raise InvalidatePoolError(f"pooled connection found dead: {exc!r}") from exc


async def retry_on_disconnect(work: Callable[[], Awaitable[T]]) -> T:
    """``work``, a unit of work that may run twice (a page's reads and its audit entry,
    committed together), run once more if a connection died under it (see IDLE_PING_S):
    the second try has a new connection. An outage still raises."""
    try:
        return await work()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        _log.info("database connection lost; the work tried again once")
    return await work()


def joins_reads(session: AsyncSession) -> bool:
    """Whether a plain ``factory()`` session that has read may also write and commit.

    PostgreSQL: yes (rows are locked, not the database), which spares a page a second
    session and transaction. SQLite: no; a deferred transaction that read cannot take the
    write lock once another writer has committed (SQLITE_BUSY at once): write through
    ``transaction()``.
    """
    bind = session.bind
    return isinstance(bind, AsyncEngine) and bind.dialect.name != "sqlite"


WRITE = "renraku_write"
# One queue per SQLite engine and event loop: writers of this process wait their turn in
# FIFO order here rather than in SQLite's busy handler, which polls with sleeps of up to
# 100 ms and lets an unlucky writer starve until busy_timeout. Other processes (portal,
# FastAGI, dialer on one SQLite file) still meet in the busy handler.
_write_locks: weakref.WeakKeyDictionary[Any, dict[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def write_lock(engine: Engine) -> asyncio.Lock | None:
    """This loop's queue for the writers of this SQLite engine (``AsyncEngine.sync_engine``
    for an async one); None on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return None  # PostgreSQL locks rows, not the database: writers run side by side
    loops = _write_locks.setdefault(engine, {})
    loop = asyncio.get_running_loop()
    if loop not in loops:
        for stale in [x for x in loops if x.is_closed()]:
            del loops[stale]
        loops[loop] = asyncio.Lock()
    return loops[loop]


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits when the block ends, rolls back on any exception.

    The only way to write: plain ``factory()`` sessions are for reading (and on SQLite
    begin a deferred transaction that does not hold the write lock).
    """
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(factory())
        bind = session.bind
        lock = write_lock(bind.sync_engine) if isinstance(bind, AsyncEngine) else None
        if lock is not None:
            await stack.enter_async_context(lock)
        await stack.enter_async_context(session.begin())
        await session.connection(execution_options={WRITE: True})
        yield session


async def _without_begin(session: AsyncSession) -> bool:
    """On PostgreSQL, the session's statements from now on each their own transaction, with
    no BEGIN, COMMIT or ROLLBACK sent around them; False on SQLite (nothing changed)."""
    if session.get_bind().dialect.name == "sqlite":
        return False
    await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return True


@asynccontextmanager
async def one_statement(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A write that is one statement (such as a data-modifying WITH). On PostgreSQL it runs
    as its own transaction, without BEGIN and COMMIT: those are two round trips of the
    three that a one-statement transaction costs, and at the morning peak every round trip
    waits for a core (issue #17). Run a single statement here: two would not be atomic.
    On SQLite it is a ``transaction()`` like any write: a statement there costs no round
    trip, and writers take turns on the write lock."""
    async with factory() as session:
        if await _without_begin(session):
            yield session
            return
    async with transaction(factory) as session:
        yield session


@asynccontextmanager
async def reading(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session that only reads. On PostgreSQL without BEGIN and ROLLBACK: at READ
    COMMITTED (PostgreSQL's default, kept here) every statement of a transaction takes a
    snapshot of its own anyway, so the transaction bought nothing but two round trips
    (issue #17). On SQLite a deferred read transaction, as any session: it costs no round
    trip and keeps the reads on one snapshot."""
    async with factory() as session:
        await _without_begin(session)
        yield session


# Transient: SQLSTATE classes 08 (connection exception) and 57P (server shutting down,
# starting up); SQLite's lock and I/O errors. Anything else is a real error, raised at once.
_OUTAGE_STATES = ("08", "57P")
_SQLITE_TRANSIENT = ("database is locked", "disk i/o error", "unable to open database")


def is_outage(exc: BaseException) -> bool:
    """The database unreachable (server stopped or restarting, connection cut), as opposed to
    a statement it refused: only an outage is worth waiting for."""
    if isinstance(exc, OSError):
        return True  # asyncpg's refused connect comes through unwrapped
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc.orig, OSError):
        return True
    state = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
    if state.startswith(_OUTAGE_STATES):
        return True
    text = str(exc.orig).lower()
    return ("connection" in text and ("closed" in text or "lost" in text)) or any(
        marker in text for marker in _SQLITE_TRANSIENT)


async def reachable(factory: async_sessionmaker[AsyncSession]) -> bool:
    from sqlalchemy import text

    try:
        async with factory() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:
        if is_outage(exc):
            return False
        raise
    return True


async def write_through_outage(
    factory: async_sessionmaker[AsyncSession], work: Callable[[AsyncSession], Awaitable[T]], *,
    what: str, every_s: float = 0.5, settle_s: float = 0.0, give_up_s: float = 600.0,
) -> T:
    """``work`` in one transaction; while the database is unreachable, kept and tried again
    when it is back (a call's writes survive an outage of up to ``give_up_s``).

    ``settle_s``: after an outage, wait this long once the database answers before trying
    again, so that writes with better knowledge (the call flow's) land first.
    """
    started = time.monotonic()
    waited = False
    while True:
        try:
            async with transaction(factory) as session:
                result = await work(session)
            if waited:
                _log.warning("%s: written once the database was back", what)
            return result
        except Exception as exc:
            if not is_outage(exc) or time.monotonic() - started > give_up_s:
                raise
            if not waited:
                _log.warning("%s: database unreachable (%s); kept until it is back", what,
                             type(exc).__name__)
            waited = True
        while True:
            await asyncio.sleep(every_s)
            if await reachable(factory):
                break
            if time.monotonic() - started > give_up_s:
                raise TimeoutError(f"{what}: the database stayed unreachable")
        await asyncio.sleep(settle_s)
