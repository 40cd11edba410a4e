"""Faults injected under real calls: FastAGI killed mid-call, PostgreSQL stopped mid-call.

Every caller either reaches the register through a report or leaves a voicemail that is
imported once; nobody hears "recorded" for a report that was not committed, and an outage
leaves no half-written row. The figures in README "Reliability" come from these tests.

The PostgreSQL server here is the test's own (tests/scratch_pg.py), started once for the
module and stopped for a few seconds at a time; never the shared server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import selectinload

from ivr import absence_flow
from ivr.fastagi import AGIChannel
from models import AbsenceReport, AbsenceReportChange, Base, Voicemail
from models.db import create_engine, session_factory, transaction
from models.enums import ReportKind, ReportReason
from models.migrate import upgrade
from renraku.app import App
from renraku.clock import FakeClock
from renraku.services import absences, voicemail
from tests.absence_fakes import ToneVoice
from tests.asterisk_harness import PhoneLines, VirtualPhone
from tests.scratch_pg import ScratchPostgres
from tests.test_absence_calls import QUICK_ABSENCE, THU, Line, follow, jst
from tests.test_absence_calls import family as make_family
from tests.test_absence_calls import line as line  # the fixture, shared
from tests.test_voicemail_calls import AppDown, leave_message, voicemail_ready

pytestmark = pytest.mark.asterisk


async def count(app: App, column: object) -> int:
    async with app.sessions() as s:
        return int(await s.scalar(select(func.count(column))) or 0)


async def report_call(phone: VirtualPhone) -> None:
    """A whole report (absence, illness, confirm, goodbye) on a live app."""
    await phone.call()
    await follow(phone, QUICK_ABSENCE)
    await phone.wait_end()


async def voicemail_call(lines: PhoneLines, phone: VirtualPhone) -> None:
    await phone.dial()
    await leave_message(lines, phone)


async def test_fastagi_killed_mid_call_then_restarted(line: Line) -> None:
    """Calls in progress when the app dies and calls during the outage leave voicemails;
    calls after the restart report normally; every voicemail is imported exactly once."""
    lines = line.lines
    await voicemail_ready(lines)
    numbers = [f"0903200{i:04d}" for i in range(7)]
    for number in numbers:
        await make_family(line.app, number, "en")
    before, in_flight, during, after = [numbers[0]], numbers[1:3], numbers[3:5], numbers[5:]
    await report_call(line.phone(before[0]))
    talking = [line.phone(n) for n in in_flight]
    for phone in talking:
        await phone.call()
        await phone.wait_prompt("absence.main_menu")
    async with AppDown(lines):  # killed: the calls above lose their FastAGI connection
        await asyncio.gather(*(leave_message(lines, p) for p in talking),
                             *(voicemail_call(lines, line.phone(n)) for n in during))
    for number in after:
        await report_call(line.phone(number))

    assert await count(line.app, AbsenceReport.id) == len(before) + len(after)
    files = sorted(lines.settings.voicemail_dir.glob("vm-*-0903200*.wav"))
    # One message per caller (names sort by time and unique id, not by caller). The flow
    # kept the language of callers it had met in AstDB: cut off mid-call, they hear English
    # alone; first-time callers during the outage hear all four languages.
    language = {f.name.rsplit("-", 1)[1][:-4]: f.name.split("-")[3] for f in files}
    assert len(files) == len(language)
    assert language == {**dict.fromkeys(in_flight, "en"), **dict.fromkeys(during, "xx")}
    imported = await voicemail.import_spool(line.app)
    assert imported == len(in_flight) + len(during)
    assert await voicemail.import_spool(line.app) == 0
    # Figures: 7 calls, 3 reports + 4 voicemails, all 7 in the register's reach.
    print(f"\n[faults] FastAGI killed: {len(numbers)} calls, {len(before) + len(after)} "
          f"reports, {imported} voicemails imported once")


@pytest.fixture(scope="module")
async def scratch_pg() -> AsyncIterator[ScratchPostgres]:
    server = ScratchPostgres()
    try:
        await asyncio.to_thread(server.start)
        await asyncio.to_thread(server.create_database)
        await upgrade(server.url)
        yield server
    finally:
        await asyncio.to_thread(server.close)


@pytest.fixture
async def pg_line(lines: PhoneLines, scratch_pg: ScratchPostgres) -> AsyncIterator[Line]:
    """The absence line on the scratch PostgreSQL (emptied first)."""
    engine = create_engine(scratch_pg.url, pool_size=5)
    clock = FakeClock(jst(THU, 10, 0))
    app = App(lines.settings, clock, engine, session_factory(engine))
    async with transaction(app.sessions) as s:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        await s.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    voice = ToneVoice(lines.settings)
    await voicemail_ready(lines)

    async def handler(agi: AGIChannel) -> None:
        await absence_flow.handle(agi, app, voice)

    lines.route("absence", handler)
    try:
        yield Line(lines, app, clock)
    finally:
        if scratch_pg.proc is None or scratch_pg.proc.poll() is not None:
            await asyncio.to_thread(scratch_pg.start)
        await engine.dispose()


async def test_database_down_at_the_confirm_key(pg_line: Line,
                                                scratch_pg: ScratchPostgres) -> None:
    """The caller confirms while PostgreSQL is down: they hear the voicemail prompt in
    their language, never "recorded", and no report or history row exists afterwards."""
    lines, app = pg_line.lines, pg_line.app
    (kid,), _ = await make_family(app, "09033000001", "en")
    phone = pg_line.phone("09033000001")
    await phone.call()
    await follow(phone, QUICK_ABSENCE[:3])
    await phone.wait_prompt("absence.confirm_keys")
    await asyncio.to_thread(scratch_pg.stop)
    try:
        await phone.press("1")
        wav = await leave_message(lines, phone)
    finally:
        await asyncio.to_thread(scratch_pg.start)
    assert not any("absence.recorded" in name for name in phone.played)
    assert wav.name.endswith("-en-09033000001.wav")  # the flow handed back the language
    assert await count(app, AbsenceReport.id) == 0
    assert await count(app, AbsenceReportChange.id) == 0
    assert await voicemail.import_spool(app) == 1
    async with app.sessions() as s:
        message = await s.scalar(select(Voicemail).options(selectinload(Voicemail.children)))
    assert message is not None and [c.id for c in message.children] == [kid]


def crash_at(scratch_pg: ScratchPostgres, sent: list[str], last: str) -> Callable[..., None]:
    """A cursor-execute hook (``before_`` or ``after_``): notes each write sent to the
    scratch server by its first words and stops the server at ``last`` (in the middle of
    the flow's write; the call's own thread waits meanwhile)."""

    def hook(conn: Connection, _cursor: object, sql: str, *_args: object) -> None:
        if conn.engine.url.port != scratch_pg.port or not sql.startswith(
                ("INSERT", "UPDATE", "WITH")):
            return
        sent.append(" ".join(sql.split()[:3]))
        if sent[-1] == last:
            scratch_pg.stop()

    return hook


async def confirm_while(pg_line: Line, scratch_pg: ScratchPostgres, number: str, when: str,
                        hook: Callable[..., None]) -> tuple[VirtualPhone, Path]:
    """The caller confirms an absence while ``hook`` watches the statements (``when``:
    before or after each is sent) and leaves a voicemail; the server runs again after."""
    event.listen(Engine, when, hook)
    try:
        phone = pg_line.phone(number)
        await phone.call()
        await follow(phone, QUICK_ABSENCE[:3])
        await phone.wait_prompt("absence.confirm_keys")
        await phone.press("1")
        wav = await leave_message(pg_line.lines, phone)
    finally:
        event.remove(Engine, when, hook)
        await asyncio.to_thread(scratch_pg.start)
    return phone, wav


async def test_database_dies_between_the_update_and_the_commit(
        pg_line: Line, scratch_pg: ScratchPostgres) -> None:
    """The worst moment of a transaction. The caller confirms an absence that the web
    recorded already, so the flow updates that report: the update and its history row are
    sent, the commit not yet, and the server goes down. The transaction is lost whole
    (the report stays as the web left it), and the caller is never told it was recorded:
    they leave a voicemail instead."""
    app = pg_line.app
    (kid,), guardian = await make_family(app, "09033000002", "en")
    async with transaction(app.sessions) as s:
        await absences.submit(s, absences.ReportDraft(kid, THU, ReportKind.ABSENCE,
                                                      ReportReason.OTHER, memo="web"),
                              channel="web", guardian_id=guardian, now=app.clock.now())
    sent: list[str] = []
    phone, wav = await confirm_while(
        pg_line, scratch_pg, "09033000002", "after_cursor_execute",
        crash_at(scratch_pg, sent, "INSERT INTO absence_report_changes"))
    # A new report found the web's there (nothing written), then the update transaction
    assert sent == ["WITH new_report AS", "UPDATE absence_reports SET",
                    "INSERT INTO absence_report_changes"]
    assert not any("absence.recorded" in name for name in phone.played)
    assert wav.name.endswith("-en-09033000002.wav")
    async with app.sessions() as s:
        [report] = await s.scalars(select(AbsenceReport))
        changes = list(await s.scalars(select(AbsenceReportChange.channel)))
    assert (report.reason, report.channel, report.memo) == ("other", "web", "web")
    assert changes == ["web"]
    assert await voicemail.import_spool(app) == 1


async def test_database_dies_as_a_new_report_is_written(
        pg_line: Line, scratch_pg: ScratchPostgres) -> None:
    """A new report is one statement, its own transaction (no BEGIN or COMMIT): the server
    going down as it is sent leaves neither the report nor its history row, and the caller
    leaves a voicemail."""
    app = pg_line.app
    await make_family(app, "09033000003", "en")
    sent: list[str] = []
    phone, wav = await confirm_while(pg_line, scratch_pg, "09033000003", "before_cursor_execute",
                                     crash_at(scratch_pg, sent, "WITH new_report AS"))
    assert sent == ["WITH new_report AS"]
    assert not any("absence.recorded" in name for name in phone.played)
    assert wav.name.endswith("-en-09033000003.wav")
    assert await count(app, AbsenceReport.id) == 0
    assert await count(app, AbsenceReportChange.id) == 0
    assert await voicemail.import_spool(app) == 1


async def test_database_stopped_during_calls(pg_line: Line, scratch_pg: ScratchPostgres) -> None:
    """A few seconds' outage: calls during it fall back, calls after it report; nothing lost."""
    lines, app = pg_line.lines, pg_line.app
    numbers = [f"0903400{i:04d}" for i in range(6)]
    for number in numbers:
        await make_family(app, number, "ja")
    before, during, after = numbers[:2], numbers[2:4], numbers[4:]
    await asyncio.gather(*(report_call(pg_line.phone(n)) for n in before))
    await asyncio.to_thread(scratch_pg.stop)
    try:
        fallen = [pg_line.phone(n) for n in during]
        for phone in fallen:
            await phone.call()  # the flow answers, cannot find the caller, hands back
        await asyncio.gather(*(leave_message(lines, p) for p in fallen))
    finally:
        await asyncio.to_thread(scratch_pg.start)
    await asyncio.gather(*(report_call(pg_line.phone(n)) for n in after))
    assert await count(app, AbsenceReport.id) == len(before) + len(after)
    assert await count(app, AbsenceReportChange.id) == len(before) + len(after)
    assert await voicemail.import_spool(app) == len(during)
    assert await voicemail.import_spool(app) == 0
    print(f"\n[faults] PostgreSQL stopped: {len(numbers)} calls, {len(before) + len(after)} "
          f"reports, {len(during)} voicemails imported once")
