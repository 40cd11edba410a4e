"""Terms, closures and extra school days through the services, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import CalendarChange, Child, Classroom, School
from models.db import transaction
from models.enums import ReportKind, ReportReason
from renraku.clock import FakeClock
from renraku.services import absences, register
from renraku.services import school_calendar as cal
from renraku.services.schools import class_on, report_day_for, school_calendar
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_school


async def test_terms_of_a_year_are_checked(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        other = await make_school(s, "第二小学校")
        first = await cal.add_term(s, school.id, "1学期", date(2026, 4, 6), date(2026, 7, 20))
        await cal.add_term(s, school.id, "2学期", date(2026, 9, 1), date(2026, 12, 24))
        await cal.add_term(s, other.id, "夏", date(2026, 7, 1), date(2026, 8, 31))  # not ours
        for args, code in [
            (("3学期", date(2027, 1, 8), date(2027, 4, 5)), "outside_year"),
            (("夏", date(2026, 7, 20), date(2026, 8, 1)), "overlap"),
            (("3学期", date(2027, 3, 1), date(2027, 1, 8)), "order"),
            ((" ", date(2027, 1, 8), date(2027, 3, 24)), "name"),
        ]:
            with pytest.raises(cal.CalendarInputError, match=code):
                await cal.add_term(s, school.id, *args)
        await cal.add_term(s, school.id, "3学期", date(2027, 1, 8), date(2027, 3, 24))
        await cal.add_term(s, school.id, "1学期", date(2027, 4, 6), date(2027, 7, 20))
        # Editing a term may keep its own dates; it may not grow into the next one.
        await cal.edit_term(s, first, "前期", date(2026, 4, 7), date(2026, 7, 20))
        with pytest.raises(cal.CalendarInputError, match="overlap"):
            await cal.edit_term(s, first, "前期", date(2026, 4, 7), date(2026, 9, 1))
        names = [t.name for t in await cal.year_terms(s, school.id, 2026)]
        assert names == ["前期", "2学期", "3学期"]
        assert await cal.school_term(s, other.id, first.id) is None
        await cal.delete_term(s, first)
        assert len(await cal.year_terms(s, school.id, 2026)) == 2
        # The calendar sees the terms: summer vacation is no school day.
        calendar = await school_calendar(s, school)
        assert not calendar.is_school_day(date(2026, 8, 3))
        assert calendar.is_school_day(date(2026, 9, 1))


async def _closed_class(s: AsyncSession) -> tuple[School, Classroom, Classroom, Child, Child]:
    """3年1組 closed on 3 and 4 December 2026 (学級閉鎖), 3年2組 open; a child in each."""
    school = await make_school(s)
    room1 = await make_class(s, school, "3年1組", grade=3)
    room2 = await make_class(s, school, "3年2組", grade=3)
    kid1 = await make_child(s, school, "青木 一郎", "あおき いちろう", room1)
    kid2 = await make_child(s, school, "馬場 二郎", "ばば じろう", room2)
    await cal.add_change(s, school.id, date(2026, 12, 3), date(2026, 12, 4), name="学級閉鎖",
                         class_id=room1.id)
    return school, room1, room2, kid1, kid2


async def test_closures_per_class_and_the_report_day(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school, room1, _room2, kid1, kid2 = await _closed_class(s)
        other = await make_school(s, "第二小学校")
        elsewhere = await make_class(s, other, "3年1組", grade=3)
        await cal.add_change(s, school.id, date(2026, 12, 10), date(2026, 12, 10),
                             name="学年閉鎖", grade=3)
        await cal.add_change(s, school.id, date(2026, 12, 12), date(2026, 12, 12),
                             open_day=True, name="土曜授業")
        await cal.add_change(s, school.id, date(2026, 12, 14), date(2026, 12, 14),
                             name="振替休業日")
        for kw, code in [({"class_id": elsewhere.id}, "class"),
                         ({"open_day": True, "class_id": room1.id}, "open_scope"),
                         ({"grade": 3, "class_id": room1.id}, "scope")]:
            with pytest.raises(cal.CalendarInputError, match=code):
                await cal.add_change(s, school.id, date(2026, 12, 3), date(2026, 12, 3), **kw)
        ref1, ref2 = await class_on(s, kid1.id, date(2026, 12, 3)), await class_on(
            s, kid2.id, date(2026, 12, 3))
        calendar = await school_calendar(s, school)
        # Wednesday 20:30: the report is for Thursday, when 3年1組 is closed and 3年2組 not.
        clock = FakeClock(datetime(2026, 12, 2, 11, 30, tzinfo=UTC), frozen=True)
        day = await report_day_for(s, clock, school)
        assert day == date(2026, 12, 3)
        assert calendar.class_closure(day, ref1) is not None
        assert calendar.class_closure(day, ref2) is None
        assert not calendar.is_school_day(date(2026, 12, 10), ref2)  # the grade closure
        assert calendar.is_school_day(date(2026, 12, 12))  # a Saturday class
        assert not calendar.is_school_day(date(2026, 12, 14))
        assert calendar.day_name(date(2026, 12, 14)) == "振替休業日"
        assert not calendar.is_school_day(date(2026, 12, 23)) or date(2026, 12, 23).weekday() < 5
        upcoming = await cal.changes_from(s, school.id, date(2026, 12, 5))
        assert [c.name for c in upcoming] == ["学年閉鎖", "土曜授業", "振替休業日"]
        assert await cal.school_change(s, other.id, upcoming[0].id) is None
        await cal.delete_change(s, upcoming[0])
        assert (await school_calendar(s, school)).is_school_day(date(2026, 12, 10), ref2)


async def test_database_refuses_an_open_class_day(db: Database) -> None:
    """The constraints hold even for writes that skip the service."""
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        room = await make_class(s, school)
        school_id, room_id = school.id, room.id
    with pytest.raises(IntegrityError):
        async with transaction(db.sessions) as s:
            s.add(CalendarChange(school_id=school_id, start_date=date(2026, 12, 5),
                                 end_date=date(2026, 12, 5), is_school_day=True,
                                 class_id=room_id))


async def test_register_and_its_download_mark_the_class_closure(db: Database) -> None:
    async with transaction(db.sessions) as s:
        _school, room1, room2, kid1, kid2 = await _closed_class(s)
        # A report made before the closure was entered is kept, but is no register mark.
        for kid in (kid1, kid2):
            await absences.submit(s, absences.ReportDraft(
                kid.id, date(2026, 12, 3), ReportKind.ABSENCE, ReportReason.ILLNESS),
                channel="web", guardian_id=None, now=datetime(2026, 12, 1, tzinfo=UTC))
        closed = await register.month_register(s, room1, 2026, 12, until=date(2026, 12, 11))
        open_ = await register.month_register(s, room2, 2026, 12, until=date(2026, 12, 11))
    assert closed.rows[0].cells[2:4] == ["閉", "閉"] and closed.days[2].closed == "学級閉鎖"
    assert closed.rows[0].totals.absent == 0 and closed.school_day_count == 7
    assert open_.rows[0].cells[2] == "欠" and open_.school_day_count == 9
    data = register.register_csv(closed, "3年1組").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(data)))
    assert rows[2][0] == "青木 一郎" and rows[2][3:5] == ["閉", "閉"]
    assert rows[1][3] == "(3)"  # not a school day for this class
