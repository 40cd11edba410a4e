"""The month register page's conversation with the database, pinned (issue #17).

At 40 pages a second every round trip to PostgreSQL counts: the page was 14 of them
(a 3-trip pre-ping per checkout, two sessions, the audit INSERT in a transaction of its
own). These tests count what one warm page sends, on the wire for PostgreSQL (asyncpg's
protocol calls: one each per round trip) and as statements for both backends, so that a
change adding one fails here; and they check that a connection killed under the pool
still gives the page, not an error.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import event, func, select, text

from models import AuditEntry, Term
from models import db as db_module
from models.db import create_engine, session_factory, transaction
from renraku.app import App
from renraku.clock import FakeClock
from renraku.services import staff as staff_svc
from renraku.settings import Settings
from tests.db_fixtures import Database, Databases
from tests.factories import make_child, make_class, make_school
from tests.prompts_fixtures import OFFLINE
from tests.staff_fixtures import PORTAL_NOW, StaffPortal
from webportal.app import create_app

# asyncpg's protocol methods that each send one request and wait for its answer
WIRE = ("query", "prepare", "bind_execute", "bind_execute_many", "bind", "execute",
        "close_statement", "copy_in", "copy_out")


@dataclass
class Trips:
    """What the engine sent: statements (SQLAlchemy's view) and asyncpg round trips."""

    statements: list[str] = field(default_factory=list)
    wire: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.statements.clear()
        self.wire.clear()


class _CountingProtocol:
    """asyncpg's protocol object, each round trip noted (a query's text, else the call)."""

    def __init__(self, inner: Any, trips: Trips) -> None:
        self._inner, self._trips = inner, trips

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in WIRE:
            return attr

        def sent(*args: Any, **kwargs: Any) -> Any:
            self._trips.wire.append(args[0] if name == "query" else name)
            return attr(*args, **kwargs)
        return sent


@dataclass
class Page:
    client: TestClient
    path: str
    trips: Trips
    database: Database
    pids: list[int]  # the page's server connections, as opened


@asynccontextmanager
async def _page(database: Database, tmp_path: Path) -> AsyncIterator[Page]:
    """A teacher's month register on its own engine (so that every connection is counted)."""
    async with transaction(database.sessions) as s:
        school = await make_school(s)
        room = await make_class(s, school, "1年1組")
        s.add(Term(school_id=school.id, name="2学期", start_date=date(2026, 9, 1),
                   end_date=date(2026, 12, 24)))
        for i in range(3):
            await make_child(s, school, f"児童 {i}", f"じどう{i}", room)
        await staff_svc.create_staff(s, school.id, name="森", email="mori@x.jp",
                                     role="teacher", password="teacher-pass-1",
                                     class_ids=[room.id])
    engine = create_engine(database.url)
    trips, pids = Trips(), []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        trips.statements.append(sql.split(None, 1)[0].upper())

    @event.listens_for(engine.sync_engine, "commit")
    def commit(_conn: Any) -> None:
        trips.statements.append("COMMIT")

    @event.listens_for(engine.sync_engine, "rollback")
    def rollback(_conn: Any) -> None:
        trips.statements.append("ROLLBACK")

    @event.listens_for(engine.sync_engine, "connect")
    def connected(_dbapi: Any, record: Any) -> None:
        if database.backend == "postgresql":
            driver = record.driver_connection
            pids.append(driver.get_server_pid())
            driver._protocol = _CountingProtocol(driver._protocol, trips)

    settings = Settings(public_url="http://school.test", testing=True, data_dir=tmp_path,
                        **OFFLINE)
    app = App(settings, FakeClock(PORTAL_NOW), engine, session_factory(engine))
    portal = StaffPortal(app, create_app(app))
    try:
        client = await portal.client_as_staff("mori@x.jp", "teacher-pass-1")
        yield Page(client, f"/staff/classes/{room.id}/month?ym=2026-11", trips, database,
                   pids)
    finally:
        await portal.close()
        await engine.dispose()


@pytest.fixture
async def page(db: Database, tmp_path: Path) -> AsyncIterator[Page]:
    async with _page(db, tmp_path) as p:
        yield p


@pytest.fixture
async def pg_page(databases: Databases, tmp_path: Path) -> AsyncIterator[Page]:
    async with _page(await databases.get("postgresql"), tmp_path) as p:
        yield p


async def _view(page: Page) -> None:
    resp = await page.client.get(page.path)
    assert resp.status == 200
    assert '<table class="register"' in await resp.text()


async def _audited(page: Page) -> int:
    async with page.database.sessions() as s:
        return await s.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == "register.month")) or 0


# One warm page. PostgreSQL: the staff member, their scope and the class in one SELECT,
# the month's children and reports in another, the audit entry, in one transaction (BEGIN
# goes out with asyncpg's first statement). SQLite cannot write in a transaction that read
# (models.db.joins_reads): its reads roll back and the entry has a transaction of its own.
EXPECTED = {
    "postgresql": (["SELECT", "SELECT", "INSERT", "COMMIT"],
                   ["BEGIN;", "bind_execute", "bind_execute", "bind_execute", "COMMIT;"]),
    "sqlite": (["BEGIN", "SELECT", "SELECT", "ROLLBACK", "BEGIN", "INSERT", "COMMIT"], []),
}


async def test_one_month_page_is_few_round_trips(page: Page) -> None:
    for _ in range(2):  # warm: the pool's connection, statement caches, the school calendar
        await _view(page)
    page.trips.clear()
    await _view(page)
    print(f"\n[round trips] {page.database.backend}: statements {page.trips.statements}, "
          f"wire {page.trips.wire}")
    assert (page.trips.statements, page.trips.wire) == EXPECTED[page.database.backend]
    assert await _audited(page) == 3  # every view logged


async def _kill(page: Page) -> None:
    async with page.database.sessions() as s:
        killed = (await s.execute(text("SELECT pg_terminate_backend(pid) FROM "
                                       "pg_stat_activity WHERE pid = ANY(:pids)"),
                                  {"pids": page.pids})).all()
    assert killed == [(True,)]


async def test_a_connection_killed_after_its_last_use_costs_one_retry(
    pg_page: Page, caplog: pytest.LogCaptureFixture
) -> None:
    """Used a moment ago, so not pinged: the page's first statement finds it dead, the
    pool drops it, and the page runs again on a new connection."""
    caplog.set_level(logging.INFO, logger="models.db")
    await _view(pg_page)
    await _kill(pg_page)
    await _view(pg_page)
    assert "tried again once" in caplog.text
    assert len(pg_page.pids) == 2  # a new connection
    assert await _audited(pg_page) == 2  # the failed try wrote nothing


async def test_an_idle_connection_killed_is_found_by_one_ping(
    pg_page: Page, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that sat idle (as after a night's server restart) is pinged at checkout:
    found dead there, it is replaced before the page uses it."""
    caplog.set_level(logging.INFO, logger="models.db")
    caplog.set_level(logging.INFO, logger="sqlalchemy.pool")
    await _view(pg_page)
    await _kill(pg_page)
    monkeypatch.setattr(db_module, "IDLE_PING_S", 0.0)  # it has now been idle long enough
    await _view(pg_page)
    # (asyncpg may have seen the server's goodbye already: then the ping fails unsent)
    assert "pooled connection found dead" in caplog.text
    assert "tried again once" not in caplog.text
    assert len(pg_page.pids) == 2
    assert await _audited(pg_page) == 2


async def test_an_idle_live_connection_costs_one_ping(
    pg_page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(2):  # warm, as above
        await _view(pg_page)
    monkeypatch.setattr(db_module, "IDLE_PING_S", 0.0)
    pg_page.trips.clear()
    await _view(pg_page)
    assert pg_page.trips.wire == ["SELECT 1", *EXPECTED["postgresql"][1]]
    assert len(pg_page.pids) == 1
