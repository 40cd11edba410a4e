"""The absence line's data path at the morning peak: statements per call, the cached
school calendars and their invalidation, the grouped call log."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from time import perf_counter
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Engine, event, func, insert, make_url, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from ivr import absence_flow
from ivr.absence_flow import AbsenceCall, load_caller
from models import (
    AbsenceReport,
    AbsenceReportChange,
    CalendarChange,
    CallLog,
    School,
    Term,
    call_db,
)
from models.call_db import InlineSqlite, WriteLoop
from models.db import create_engine, transaction
from models.enums import ReportKind, ReportReason, Symptom
from renraku.app import App
from renraku.clock import FakeClock
from renraku.services import absences
from renraku.services.call_log import call_log_writer
from renraku.services.schools import report_day_for, rules_changed
from renraku.settings import Settings
from tests.absence_fakes import FakeHangup, FakeVoice, ScriptedChannel
from tests.db_fixtures import PG_URL, Database
from tests.factories import make_child, make_guardian, make_school

NOW = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)  # Thursday 10:00 in Tokyo
THU, FRI, MON = date(2026, 12, 3), date(2026, 12, 4), date(2026, 12, 7)
FRI_10 = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)


@contextmanager
def statements(db: Database, engine: Engine | None = None) -> Iterator[list[str]]:
    """The statements run through ``engine`` (the database's own by default) meanwhile."""
    seen: list[str] = []

    def count(_conn, _cursor, sql: str, *_args: object) -> None:  # type: ignore[no-untyped-def]
        if not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            seen.append(sql)

    target = engine or db.engine.sync_engine
    event.listen(target, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(target, "before_cursor_execute", count)


async def _day(db: Database, school_id: int, clock: FakeClock) -> date:
    async with db.sessions() as s:
        school = await s.get(School, school_id)
        assert school is not None
        return await report_day_for(s, clock, school)


@pytest.mark.parametrize("calls_db", [False, True], ids=["app", "calls-database"])
async def test_caller_in_two_statements_once_calendars_are_cached(
        db: Database, calls_db: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two statements: the household, then its upcoming reports. On PostgreSQL they are all
    that is sent, no BEGIN and no ROLLBACK around them: two round trips, not four; through
    the calls' database (as `renraku run` answers calls) and without it."""
    app = App(Settings(), FakeClock(NOW, frozen=True), db.engine, db.sessions)
    async with transaction(app.sessions) as s:
        first, second = await make_school(s, "第一小学校"), await make_school(s, "第二中学校")
        taro, jiro = await make_child(s, first, "山田太郎"), await make_child(s, second, "山田次郎")
        await make_guardian(s, "山田花子", "090-1111-2222", "en", (taro, jiro))
        await make_guardian(s, "山田一郎", "090-1111-2222", "ja", (taro,))
    if calls_db:
        app.start_call_database()
        assert app.call_db is not None
    begun = _transaction_statements(monkeypatch)
    try:
        assert await load_caller(app, "09011112222", "+819011112222") is not None  # caches
        begun.clear()
        with statements(db, app.call_db.sync_engine if app.call_db else None) as seen:
            caller = await load_caller(app, "09011112222", "+819011112222")
    finally:
        if app.call_db is not None:
            await app.call_db.close()
    assert len(seen) == 2, seen  # the household, then its upcoming reports
    assert begun == [], begun  # asyncpg's BEGIN and ROLLBACK (PostgreSQL)
    assert caller is not None
    assert [k.id for k in caller.kids] == [taro.id, jiro.id]
    assert len(caller.guardian_ids) == 2 and caller.language == "en"  # the first guardian's
    assert [k.day for k in caller.kids] == [THU, THU]


def _transaction_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The BEGIN, COMMIT and ROLLBACK that asyncpg sends from now on (through ``execute()``,
    as it does the pool's ``SELECT 1`` for a connection that sat idle: not counted)."""
    sent: list[str] = []
    execute = asyncpg.Connection.execute

    async def traced(conn: asyncpg.Connection, query: str, *args: Any, **kw: Any) -> Any:
        if query.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            sent.append(query)
        return await execute(conn, query, *args, **kw)

    monkeypatch.setattr(asyncpg.Connection, "execute", traced)
    return sent


async def test_a_new_report_is_as_few_statements_as_the_database_allows(db: Database) -> None:
    """PostgreSQL: the report and its history row in one statement; SQLite (which has no
    data-modifying WITH): the INSERT, then the history row. Never a look-up first."""
    async with transaction(db.sessions) as s:
        child_id = (await make_child(s, await make_school(s))).id
    draft = absences.ReportDraft(child_id, THU, ReportKind.ABSENCE, ReportReason.ILLNESS,
                                 symptom=Symptom.FEVER)
    with statements(db) as seen:
        async with transaction(db.sessions) as s:
            created = await absences.submit(s, draft, channel="phone", guardian_id=None,
                                            now=NOW)
    if db.backend == "postgresql":
        [both] = seen
        assert "INSERT INTO absence_reports" in both and "absence_report_changes" in both
    else:
        assert len(seen) == 2, seen
        assert "ON CONFLICT" in seen[0] and "absence_report_changes" in seen[1]
    async with transaction(db.sessions) as s:  # the same child, day and kind again
        again = await absences.submit(
            s, absences.ReportDraft(child_id, THU, ReportKind.ABSENCE, ReportReason.INJURY),
            channel="web", guardian_id=None, now=FRI_10)
    assert again.id == created.id
    async with db.sessions() as s:
        changes = list(await s.scalars(select(AbsenceReportChange)
                                       .order_by(AbsenceReportChange.id)))
        reasons = list(await s.scalars(select(AbsenceReport.reason)))
    assert [(c.action, c.channel, c.report_id) for c in changes] == [
        ("created", "phone", created.id), ("reconfirmed", "web", created.id)]
    assert changes[0].before is None and changes[0].at == NOW
    assert changes[0].after == changes[1].before == {
        "day": "2026-12-03", "kind": "absence", "reason": "illness", "symptom": "fever",
        "at_time": None, "memo": "", "status": "active"}
    assert reasons == ["injury"]


async def test_the_confirm_keys_new_report_is_one_round_trip_on_postgresql(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the calls write it (App.write_one on the calls' database): on PostgreSQL one
    statement with no BEGIN or COMMIT around it, three round trips fewer than a
    transaction of two; on SQLite a transaction. A report there already is not written
    twice: the flow then updates it in a transaction."""
    async with transaction(db.sessions) as s:
        child_id = (await make_child(s, await make_school(s))).id
    app = App(Settings(), FakeClock(NOW, frozen=True), db.engine, db.sessions)
    app.start_call_database()
    assert app.call_db is not None
    draft = absences.ReportDraft(child_id, THU, ReportKind.LATE, ReportReason.OTHER,
                                 at_time=time(10, 30))

    async def create(s: Any) -> AbsenceReport | None:
        return await absences.create(s, draft, channel="phone", guardian_id=None, now=NOW)

    try:
        await app.read(lambda s: s.scalar(select(func.count(AbsenceReport.id))))  # connected
        begun = _transaction_statements(monkeypatch)
        with statements(db, app.call_db.sync_engine) as seen:
            created = await app.write_one(create)
            again = await app.write_one(create)
    finally:
        await app.call_db.close()
    assert created is not None and again is None
    assert len(seen) == (2 if db.backend == "postgresql" else 3), seen  # SQLite: one history
    assert begun == [], begun
    async with db.sessions() as s:
        assert await s.scalar(select(func.count(AbsenceReportChange.id))) == 1
        report = await s.get(AbsenceReport, created.id)
    assert report is not None and report.at_time == time(10, 30)


async def test_two_writers_confirming_the_same_report_at_once_both_succeed(
        db: Database) -> None:
    """The phone and the web (or two guardians) confirm the same absence together: the
    second waits for the first, then updates its report instead of failing on the unique
    index (the caller would have heard "not saved")."""
    async with transaction(db.sessions) as s:
        child_id = (await make_child(s, await make_school(s))).id

    async def confirm(reason: ReportReason, channel: str) -> int:
        async with transaction(db.sessions) as s:
            report = await absences.submit(
                s, absences.ReportDraft(child_id, THU, ReportKind.ABSENCE, reason),
                channel=channel, guardian_id=None, now=NOW)
            await asyncio.sleep(0.3)  # still uncommitted while the other one starts
            return report.id

    first = asyncio.create_task(confirm(ReportReason.ILLNESS, "phone"))
    await asyncio.sleep(0.1)
    ids = await asyncio.gather(first, confirm(ReportReason.INJURY, "web"))
    assert ids[0] == ids[1]
    async with db.sessions() as s:
        changes = list(await s.execute(select(AbsenceReportChange.action,
                                              AbsenceReportChange.channel)
                                       .order_by(AbsenceReportChange.id)))
    assert [tuple(c) for c in changes] == [("created", "phone"), ("reconfirmed", "web")]


async def test_warm_up_leaves_the_loaded_program_out_of_the_collectors_passes(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    frozen: list[int] = []  # how many objects the collector tracked when frozen
    monkeypatch.setattr(absence_flow.gc, "freeze",
                        lambda: frozen.append(len(absence_flow.gc.get_objects())))
    app = App(Settings(), FakeClock(NOW, frozen=True), db.engine, db.sessions)
    await absence_flow.warm_up(app)
    assert len(frozen) == 1 and frozen[0] > 50_000  # the modules, mappers, statements


FIRST_CALLER = """
import asyncio, sys, tempfile
from pathlib import Path
from ivr import absence_flow
from models.db import create_engine, session_factory, transaction
from models.migrate import upgrade
from renraku.app import App
from renraku.clock import FakeClock
from renraku.settings import Settings
from tests.factories import make_child, make_guardian, make_school
from tests.test_peak_data_path import NOW

async def main():
    url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'first.db'}"
    await upgrade(url)
    engine = create_engine(url)
    app = App(Settings(), FakeClock(NOW, frozen=True), engine, session_factory(engine))
    async with transaction(app.sessions) as s:
        school = await make_school(s, "第一小学校")
        await make_guardian(s, "山田花子", "090-1111-2222", "ja",
                            (await make_child(s, school, "山田太郎"),))
    app.start_call_database()  # as `renraku run` does, then warms up
    await absence_flow.warm_up(app)
    before = set(sys.modules)
    assert await absence_flow.load_caller(app, "09011112222", "+819011112222") is not None
    print(sorted(set(sys.modules) - before))
    await app.close()

asyncio.run(main())
"""


def test_the_first_caller_after_warm_up_imports_nothing() -> None:
    """In a fresh interpreter, as `renraku run` starts: an import on the first call of the
    morning is CPU every caller of that moment waits for (the holidays package alone
    imported about 250 modules, 0.4-0.5 s)."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", FIRST_CALLER], cwd=root, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout[:2000]


async def test_cached_calendar_follows_every_kind_of_school_rules_change(db: Database) -> None:
    clock = FakeClock(NOW, frozen=True)
    async with transaction(db.sessions) as s:
        school = await make_school(s, "第一小学校")
        s.add(Term(school_id=school.id, name="2学期", start_date=date(2026, 9, 1),
                   end_date=date(2026, 12, 24)))
    assert await _day(db, school.id, clock) == THU
    with statements(db) as seen:
        assert await _day(db, school.id, clock) == THU
    assert len(seen) == 1, seen  # the school row only: the calendar came from the cache

    # A holiday added through the ORM (the admin pages, another process): seen at once
    async with transaction(db.sessions) as s:
        s.add(CalendarChange(school_id=school.id, start_date=THU, end_date=THU,
                             is_school_day=False, name="開校記念日"))
    assert await _day(db, school.id, clock) == FRI

    # The cutoff moved earlier: a call at 10:00 now reports for the next school day
    async with transaction(db.sessions) as s:
        row = await s.get(School, school.id)
        assert row is not None
        row.phone_cutoff = time(9, 0)
    assert await _day(db, school.id, FakeClock(FRI_10)) == MON

    # Bulk SQL (Monday off) bypasses the ORM: the service's hook invalidates
    async with transaction(db.sessions) as s:
        await s.execute(insert(CalendarChange).values(
            school_id=school.id, start_date=MON, end_date=MON, is_school_day=False,
            name="振替休業日"))
        await rules_changed(s, school.id)
    assert await _day(db, school.id, FakeClock(FRI_10)) == date(2026, 12, 8)


async def test_call_log_rows_ending_together_share_a_transaction(db: Database) -> None:
    writer = call_log_writer(App(Settings(), FakeClock(NOW), db.engine, db.sessions))
    before = writer.flushes
    await asyncio.gather(*(writer.write(flow="absence", caller=f"0900000{i:04d}",
                                        caller_e164=None, outcome="reported", uniqueid=str(i),
                                        started_at=NOW, ended_at=NOW) for i in range(50)))
    assert writer.flushes - before <= 2  # the first row alone, then the 49 queued behind it
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(CallLog)) == 50
    await writer.write(flow="absence", caller="x", caller_e164=None, outcome="hung_up",
                       uniqueid="", started_at=NOW, ended_at=None)  # a lone row: at once
    assert writer.flushes - before <= 3


async def test_the_postgresql_pool_lends_the_connection_returned_last() -> None:
    """A steady load is served by the few backends it needs, each with its statements
    prepared and planned, not by all of the pool in turn (models.db.create_engine)."""
    engine = create_engine(PG_URL, pool_size=3)
    try:
        held = [await engine.connect() for _ in range(3)]
        pids = [await c.scalar(text("SELECT pg_backend_pid()")) for c in held]
        for conn in held:  # returned in the order they were lent
            await conn.close()
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT pg_backend_pid()")) == pids[-1]
    finally:
        await engine.dispose()


async def test_the_calls_database_work_runs_the_calls_way(db: Database) -> None:
    """SQLite: every statement of the call on the call's own thread, through the inline
    engine; PostgreSQL: on the write loop's thread. Never through the app's own engine."""
    app = App(Settings(), FakeClock(NOW, frozen=True), db.engine, db.sessions)
    async with transaction(app.sessions) as s:
        school = await make_school(s, "第一小学校")
        await make_guardian(s, "山田花子", "090-1111-2222", "ja",
                            (await make_child(s, school, "山田太郎"),))
    app.start_call_database()
    assert app.call_db is not None
    expected = InlineSqlite if db.backend == "sqlite" else WriteLoop
    assert isinstance(app.call_db, expected)
    threads: set[int] = set()  # where SQLite really ran the calls' statements

    @event.listens_for(app.call_db.sync_engine, "connect")
    def trace(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        if db.backend == "sqlite":  # pysqlite's own connection
            dbapi_conn.set_trace_callback(
                lambda _sql: threads.add(threading.get_ident()))

    try:
        with statements(db) as seen:  # the app's own engine
            result = await AbsenceCall(ScriptedChannel("090-1111-2222", [
                ("absence.main_menu", "1"), ("absence.kind_menu", "1"),
                ("absence.reason_menu", "1"), ("absence.confirm_keys", "1"),
            ]), app, FakeVoice(), FakeHangup).run()
        assert result.outcome == "reported"
        assert app.call_db.written == 2  # the report, then the call log
        assert seen == []  # the caller's load and every write went the calls' way
        if db.backend == "sqlite":  # on this loop's thread, not aiosqlite's
            assert threads == {threading.get_ident()}
        async with db.sessions() as s:
            [report] = await s.scalars(select(AbsenceReport))
            assert (report.day, report.status) == (THU, "active")
            assert await s.scalar(select(func.count()).select_from(CallLog)) == 1
    finally:
        await app.call_db.close()


@contextmanager
def sqlite_write_lock_held(url: str) -> Iterator[sqlite3.Connection]:
    """Another process's writer, as SQLite sees it: a connection in BEGIN IMMEDIATE."""
    other = sqlite3.connect(make_url(url).database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.close()


async def test_an_inline_write_waits_for_another_writer_with_the_loop_free(
    sqlite_db: Database,
) -> None:
    """SQLite's own lock (PostgreSQL writers lock rows and wait on their own loop)."""
    db = sqlite_db
    calls = InlineSqlite(db.url)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def add_school(s: Any) -> int:
        return (await make_school(s, "第二小学校")).id

    running = asyncio.ensure_future(ticker())
    try:
        with sqlite_write_lock_held(db.url) as other:
            write = asyncio.ensure_future(calls.run(add_school))
            await asyncio.sleep(0.3)
            assert not write.done()  # waiting for the lock...
            assert ticks >= 10  # ...while the loop goes on (SQLite's handler would block it)
            other.commit()
        school_id = await asyncio.wait_for(write, 5)
        async with db.sessions() as s:
            assert (await s.get(School, school_id)) is not None
    finally:
        running.cancel()
        await calls.close()


async def test_an_inline_write_gives_up_after_the_busy_timeout(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = sqlite_db
    monkeypatch.setattr(call_db, "BUSY_TIMEOUT_MS", 200)
    calls = InlineSqlite(db.url)
    try:
        with sqlite_write_lock_held(db.url):
            started = perf_counter()
            with pytest.raises(OperationalError, match="database is locked"):
                await calls.run(lambda s: make_school(s, "第三小学校"))
            assert 0.2 <= perf_counter() - started < 2
    finally:
        await calls.close()


async def test_an_inline_write_keeps_savepoints_and_rolls_back_whole(
    sqlite_db: Database,
) -> None:
    """The inline session runs the services' savepoints (``begin_nested``, as a second
    guardian's report at the same instant needs) and undoes its whole transaction when the
    work raises."""
    db = sqlite_db
    calls = InlineSqlite(db.url)

    def report(child_id: int) -> AbsenceReport:
        return AbsenceReport(child_id=child_id, day=THU, kind=ReportKind.ABSENCE,
                             reason=ReportReason.ILLNESS, channel="phone", created_at=NOW,
                             updated_at=NOW)

    async def twice(s: Any) -> tuple[int, bool]:
        child = await make_child(s, await make_school(s, "第二小学校"), "山田三郎")
        s.add(report(child.id))
        await s.flush()
        try:
            async with s.begin_nested():  # the same child, day and kind: refused...
                s.add(report(child.id))
        except IntegrityError:
            return child.id, True  # ...and only the savepoint is undone
        return child.id, False

    async def fails(s: Any) -> None:
        await make_school(s, "第四小学校")
        raise RuntimeError("the work failed")

    try:
        child_id, refused = await calls.run(twice)
        assert refused
        with pytest.raises(RuntimeError, match="the work failed"):
            await calls.run(fails)
        assert calls.written == 1
    finally:
        await calls.close()
    async with db.sessions() as s:
        reports = await s.scalars(select(AbsenceReport).where(AbsenceReport.child_id == child_id))
        assert len(list(reports)) == 1
        assert await s.scalar(select(func.count()).select_from(School)
                              .where(School.name == "第四小学校")) == 0


async def test_confirmation_email_leaves_after_the_call(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The email reads rows and talks SMTP: not between the keys of a call in progress."""
    from renraku.services import mail

    app = App(Settings(extra={"absence_confirmation_email": True}),
              FakeClock(NOW, frozen=True), db.engine, db.sessions)
    async with transaction(app.sessions) as s:
        school = await make_school(s, "第一小学校")
        mom = await make_guardian(s, "山田花子", "090-1111-2222", "ja",
                                  (await make_child(s, school, "山田太郎"),))
        mom.email, mom.email_verified = "hanako@example.org", True

    class Listening(ScriptedChannel):  # each prompt takes a moment, as on a real line
        async def stream_file(self, name: str, escape_digits: str = "") -> str:
            await asyncio.sleep(0.05)
            return await super().stream_file(name, escape_digits)

        async def read_keys(self, sounds: list[tuple[str, str]], channel_lang: str,
                            max_digits: int, timeout_ms: int) -> str:
            await asyncio.sleep(0.05)
            return await super().read_keys(sounds, channel_lang, max_digits, timeout_ms)

    agi = Listening("090-1111-2222", [
        ("absence.main_menu", "1"), ("absence.kind_menu", "1"), ("absence.reason_menu", "1"),
        ("absence.confirm_keys", "1"), ("absence.recorded", "2"),
    ])
    sent: list[tuple[str, bool]] = []

    async def fake_send(_settings: Settings, to: str, _subject: str, _text: str,
                        *, now: datetime) -> None:
        sent.append((to, agi.hung_up))

    monkeypatch.setattr(mail, "send_mail", fake_send)
    assert (await AbsenceCall(agi, app, FakeVoice(), FakeHangup).run()).outcome == "reported"
    assert sent == [("hanako@example.org", True)]  # sent, once the caller was gone
