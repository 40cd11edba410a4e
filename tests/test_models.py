"""The schema on SQLite and PostgreSQL: constraints, races, migrations."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from models import AbsenceReport, Base, Guardianship
from models.db import transaction
from models.enums import ReportKind, ReportReason, ReportStatus
from renraku.services import absences
from renraku.services.guardians import GuardianLimitReached, link_guardian
from tests.db_fixtures import Database
from tests.factories import make_child, make_guardian, make_school

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


async def test_migrations_match_models(db: Database) -> None:
    def diff(conn):  # type: ignore[no-untyped-def]
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)

    async with db.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == [], f"models and migrations drifted: {changes}"


async def test_datetimes_come_back_aware_utc(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        child = await make_child(s, school)
        draft = absences.ReportDraft(child.id, date(2026, 12, 4), ReportKind.ABSENCE,
                                     ReportReason.ILLNESS)
        await absences.submit(s, draft, channel="phone", guardian_id=None, now=NOW)
    async with db.sessions() as s:
        report = await s.scalar(select(AbsenceReport))
        assert report is not None
        assert report.created_at == NOW and report.created_at.tzinfo is not None


async def test_database_refuses_a_fourth_guardian(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        child = await make_child(s, school)
        guardians = [await make_guardian(s, f"G{i}", phone=None) for i in range(4)]
        for g in guardians[:3]:
            await link_guardian(s, child.id, g.id)
        child_id, fourth = child.id, guardians[3].id
    with pytest.raises(IntegrityError):
        async with transaction(db.sessions) as s:
            s.add(Guardianship(child_id=child_id, guardian_id=fourth, position=4))
    with pytest.raises(GuardianLimitReached):
        async with transaction(db.sessions) as s:
            await link_guardian(s, child_id, fourth)
    async with db.sessions() as s:
        positions = sorted(await s.scalars(select(Guardianship.position)))
    assert positions == [1, 2, 3]


async def test_two_writers_racing_for_the_last_place_do_not_both_win(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        child = await make_child(s, school)
        first = [await make_guardian(s, f"G{i}", phone=None) for i in range(2)]
        for g in first:
            await link_guardian(s, child.id, g.id)
        racers = [await make_guardian(s, f"R{i}", phone=None) for i in range(2)]
        child_id, racer_ids = child.id, [g.id for g in racers]
    start = asyncio.Event()

    async def register(guardian_id: int) -> str:
        await start.wait()
        try:
            async with transaction(db.sessions) as s:
                await link_guardian(s, child_id, guardian_id)
                await asyncio.sleep(0.05)  # hold the transaction open while the other races
            return "won"
        except (GuardianLimitReached, IntegrityError):
            return "refused"

    tasks = [asyncio.create_task(register(g)) for g in racer_ids]
    start.set()
    results = sorted(await asyncio.gather(*tasks))
    assert results == ["refused", "won"]
    async with db.sessions() as s:
        rows = list(await s.scalars(select(Guardianship).where(Guardianship.child_id == child_id)))
    assert sorted(r.position for r in rows) == [1, 2, 3]


async def test_one_active_report_per_child_day_and_kind(db: Database) -> None:
    day = date(2026, 12, 4)
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        child = await make_child(s, school)
        child_id = child.id
        s.add_all(
            AbsenceReport(child_id=child_id, day=day, kind="absence", reason="illness",
                          channel="web", status=st, created_at=NOW, updated_at=NOW)
            for st in ("active", "cancelled", "cancelled")
        )
        # Another kind the same day is a different report.
        s.add(AbsenceReport(child_id=child_id, day=day, kind="late", reason="illness",
                            channel="web", created_at=NOW, updated_at=NOW))
    with pytest.raises(IntegrityError):
        async with transaction(db.sessions) as s:
            s.add(AbsenceReport(child_id=child_id, day=day, kind="absence", reason="other",
                                channel="phone", created_at=NOW, updated_at=NOW))


async def test_resubmitting_updates_and_cancelling_keeps_history(db: Database) -> None:
    day = date(2026, 12, 4)
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        child = await make_child(s, school)
        draft = absences.ReportDraft(child.id, day, ReportKind.ABSENCE, ReportReason.ILLNESS)
        first = await absences.submit(s, draft, channel="phone", guardian_id=None, now=NOW)
        again = absences.ReportDraft(child.id, day, ReportKind.ABSENCE, ReportReason.INJURY)
        second = await absences.submit(s, again, channel="web", guardian_id=None, now=NOW)
        assert first.id == second.id
        await absences.cancel(s, second, channel="phone", guardian_id=None, now=NOW)
        report_id = first.id
    async with db.sessions() as s:
        report = await s.get(AbsenceReport, report_id)
        assert report is not None and report.status == ReportStatus.CANCELLED
        assert report.reason == "injury"
        await s.refresh(report, ["changes"])
        assert [c.action for c in report.changes] == ["created", "reconfirmed", "cancelled"]
        assert report.changes[1].before["reason"] == "illness"
        count = len(list(await s.scalars(select(AbsenceReport))))
    assert count == 1


async def test_check_constraints_reject_unknown_values(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        child_id = (await make_child(s, school)).id
    with pytest.raises(IntegrityError):
        async with transaction(db.sessions) as s:
            s.add(AbsenceReport(child_id=child_id, day=date(2026, 12, 4), kind="holiday",
                                reason="illness", channel="web", created_at=NOW,
                                updated_at=NOW))
