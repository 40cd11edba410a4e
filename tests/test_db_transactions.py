"""Transactions: reads never wait for a writer; writers of one process queue in order."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from models import School
from models.db import is_outage, transaction
from tests.db_fixtures import Database
from tests.factories import make_school


async def _schools(db: Database) -> int:
    async with db.sessions() as s:
        return await s.scalar(select(func.count()).select_from(School)) or 0


async def test_a_read_runs_while_a_write_is_open(db: Database) -> None:
    # With the write lock taken for reads too (BEGIN IMMEDIATE), this read would wait for
    # the writer, here forever: the writer waits for the read to finish first.
    async with transaction(db.sessions) as w:
        await make_school(w, "書きかけ小学校")
        async with asyncio.timeout(2):
            seen_during = await _schools(db)
    assert seen_during == 0  # the open write is not visible
    assert await _schools(db) == 1


async def test_a_write_commits_while_a_read_is_open(db: Database) -> None:
    async with db.sessions() as r:
        before = await r.scalar(select(func.count()).select_from(School))
        async with asyncio.timeout(2), transaction(db.sessions) as w:
            await make_school(w, "途中小学校")
        await r.scalar(select(func.count()).select_from(School))  # the read goes on
    assert before == 0
    assert await _schools(db) == 1


async def test_concurrent_writers_all_commit_in_arrival_order(db: Database) -> None:
    order: list[int] = []

    async def write(i: int) -> None:
        async with transaction(db.sessions) as s:
            await s.scalar(select(func.count()).select_from(School))  # read, then write
            order.append(i)
            await asyncio.sleep(0.005)
            await make_school(s, f"第{i}小学校")

    tasks = []
    for i in range(40):
        tasks.append(asyncio.create_task(write(i)))
        await asyncio.sleep(0)  # each writer asks for its transaction before the next
    await asyncio.gather(*tasks)
    assert await _schools(db) == 40
    if db.backend == "sqlite":
        # One queue in this process, first come first served: nobody is overtaken (and
        # so nobody starves into "database is locked" behind luckier busy-handler polls).
        assert order == list(range(40))


@pytest.mark.parametrize(("error", "outage"), [
    (ConnectionRefusedError("server stopped"), True),
    (OperationalError("connect", {}, ConnectionRefusedError("refused")), True),
    (OperationalError("x", {}, Exception("database is locked")), True),
    (OperationalError("x", {}, Exception("connection was closed in the middle of operation")),
     True),
    (OperationalError("x", {}, Exception("no such table: campaigns")), False),
    (IntegrityError("x", {}, Exception("UNIQUE constraint failed")), False),
    (ValueError("a bug"), False),
])
def test_only_an_unreachable_database_counts_as_an_outage(error: Exception,
                                                          outage: bool) -> None:
    """Writes wait out an outage (models.db.write_through_outage); a real error is raised."""
    assert is_outage(error) is outage
