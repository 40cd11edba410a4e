"""The staff-room services on SQLite and PostgreSQL: one mark per child and day, one
follow-up per child and day, answers stop the other calls, staff-board recipients."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from models import (
    Campaign,
    CampaignHousehold,
    FollowUp,
    RollCall,
    School,
    Staff,
    StaffMessageRecipient,
)
from models.db import transaction
from renraku.app import App
from renraku.clock import FakeClock
from renraku.services import followup, rollcall, staffboard
from renraku.settings import Settings
from tests.db_fixtures import Database
from tests.staffroom_world import DAY, build

NOW = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)  # 09:30 in Tokyo


async def test_marks_followups_and_answers(db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    w = await build(db.sessions)
    app = App(Settings(data_dir=tmp_path, testing=True), FakeClock(NOW, frozen=True),
              db.engine, db.sessions)
    async with transaction(db.sessions) as s:
        await rollcall.set_mark(s, w.baba, DAY, "present", w.staff["mori"], NOW)
        await rollcall.set_mark(s, w.baba, DAY, "absent", w.staff["kato"], NOW)  # replaces
        assert await rollcall.unexplained_children(s, w.school, DAY) == [w.baba]
    with pytest.raises(IntegrityError):
        async with transaction(db.sessions) as s:
            s.add(RollCall(child_id=w.baba, day=DAY, mark="late", marked_at=NOW))
    async with db.sessions() as s:
        school = await s.get_one(School, w.school)
    first = await followup.start(app, school, DAY)
    again = await followup.start(app, school, DAY)
    assert (first.calls, again.calls) == ([w.baba], [])  # once per child and day
    async with transaction(db.sessions) as s:
        up = await s.scalar(select(FollowUp))
        assert up is not None
        await followup.record_answer(s, up.campaign_id, "2", None, NOW)  # on the way
    async with db.sessions() as s:
        campaign = await s.get_one(Campaign, up.campaign_id)
        households = list(await s.scalars(select(CampaignHousehold)))
        assert await rollcall.unexplained_children(s, w.school, DAY) == []  # explained
        rows = {r.child_id: r for r in await rollcall.class_roll(s, w.mine, DAY)}
    assert campaign.status == "completed" and len(households) == 2
    assert rows[w.baba].answer == "on_way" and not rows[w.baba].unexplained


async def test_board_recipients_by_audience(db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    w = await build(db.sessions)
    settings = Settings(data_dir=tmp_path, testing=True)
    async with transaction(db.sessions) as s:
        principal = await s.get_one(Staff, w.staff["principal"])
        grade = await staffboard.post(s, settings, principal, audience="grade", grade=1,
                                      people=[], subject="s", body="b", pinned=True,
                                      uploads=[], now=NOW)
        everyone = await staffboard.post(s, settings, principal, audience="all", grade=None,
                                         people=[], subject="s", body="b", pinned=False,
                                         uploads=[], now=NOW)
        with pytest.raises(staffboard.BoardError, match="nobody"):
            await staffboard.post(s, settings, principal, audience="grade", grade=6,
                                  people=[], subject="s", body="b", pinned=False, uploads=[],
                                  now=NOW)
        ids = {m.id: {r.staff_id for r in await s.scalars(
            select(StaffMessageRecipient).where(
                StaffMessageRecipient.message_id == m.id))}
            for m in (grade, everyone)}
    staff = w.staff
    assert ids[grade.id] == {staff["mori"], staff["kato"]}
    assert ids[everyone.id] == {staff["mori"], staff["kato"], staff["nurse"], staff["admin"]}
