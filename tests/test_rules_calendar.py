"""Japan's holidays from the library, and school, grade and class closures per class."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from renraku.rules.calendar_checks import change_problem, term_problem
from renraku.rules.jp_holidays import japan_holidays
from renraku.rules.schoolday import (
    ClassRef,
    DayChange,
    SchoolCalendar,
    academic_year,
    academic_year_bounds,
    report_day,
)

TOKYO = ZoneInfo("Asia/Tokyo")
JP = SchoolCalendar(holidays=japan_holidays())
ROOM_1 = ClassRef(id=11, grade=3)  # 3年1組
ROOM_2 = ClassRef(id=12, grade=3)  # 3年2組
ROOM_4 = ClassRef(id=21, grade=4)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TOKYO)


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2026, 5, 6), "振替休日"),  # 憲法記念日 on a Sunday pushes to Wednesday
        (date(2026, 9, 22), "国民の休日"),  # between 敬老の日 and 秋分の日
        (date(2027, 3, 22), "振替休日"),
        (date(2029, 2, 12), "振替休日"),
        (date(2029, 4, 30), "振替休日"),
        (date(2029, 9, 24), "振替休日"),
        (date(2030, 8, 12), "振替休日"),
        (date(2030, 11, 4), "振替休日"),
        (date(2028, 1, 10), "成人の日"),  # second Monday of January
        (date(2030, 7, 15), "海の日"),  # third Monday of July
        (date(2028, 9, 22), "秋分の日"),
    ],
)
def test_national_holidays_2026_to_2030(day: date, name: str) -> None:
    assert japan_holidays().get(day) == name
    assert not JP.is_school_day(day)
    assert JP.day_name(day) == name


def test_weekdays_that_are_not_holidays_stay_school_days() -> None:
    for day in (date(2026, 9, 24), date(2027, 9, 21), date(2029, 5, 7), date(2030, 11, 5)):
        assert JP.is_school_day(day), day


def test_golden_week_2026_pushes_reports_past_the_substitute_holiday() -> None:
    # Thursday 30 April after the cutoff: Friday 1 May is a school day...
    assert report_day(at("2026-04-30 20:00"), time(20, 0), JP) == date(2026, 5, 1)
    # ...Friday evening: Sat, Sun, 4, 5 and the 振替休日 6 May are all off.
    assert report_day(at("2026-05-01 20:00"), time(20, 0), JP) == date(2026, 5, 7)
    # Silver week 2026: Monday 21 to Wednesday 23 September.
    assert report_day(at("2026-09-18 21:00"), time(20, 0), JP) == date(2026, 9, 24)


def test_school_closure_and_saturday_school_day() -> None:
    cal = SchoolCalendar(holidays=japan_holidays(), changes=(
        DayChange(date(2026, 10, 16), date(2026, 10, 16), name="創立記念日"),
        DayChange(date(2026, 10, 17), date(2026, 10, 17), open=True, name="土曜授業"),
        DayChange(date(2026, 10, 19), date(2026, 10, 19), name="振替休業日"),
    ))
    assert not cal.is_school_day(date(2026, 10, 16))
    assert cal.day_name(date(2026, 10, 16)) == "創立記念日"
    assert cal.is_school_day(date(2026, 10, 17))  # a Saturday
    assert report_day(at("2026-10-15 20:00"), time(20, 0), cal) == date(2026, 10, 17)
    assert report_day(at("2026-10-17 20:00"), time(20, 0), cal) == date(2026, 10, 20)
    # A school closure is not a class closure: nobody is told "your class is closed".
    assert cal.class_closure(date(2026, 10, 16), ROOM_1) is None


CLOSURES = SchoolCalendar(holidays=japan_holidays(), changes=(
    DayChange(date(2026, 12, 3), date(2026, 12, 4), name="学級閉鎖", class_id=ROOM_1.id),
    DayChange(date(2026, 12, 8), date(2026, 12, 8), name="学年閉鎖", grade=4),
))


def test_class_closure_closes_only_that_class() -> None:
    assert not CLOSURES.is_school_day(date(2026, 12, 3), ROOM_1)
    assert CLOSURES.is_school_day(date(2026, 12, 3), ROOM_2)
    assert CLOSURES.is_school_day(date(2026, 12, 3))  # the school is open
    assert CLOSURES.class_closure(date(2026, 12, 4), ROOM_1).name == "学級閉鎖"  # type: ignore[union-attr]
    assert CLOSURES.class_closure(date(2026, 12, 4), ROOM_2) is None
    assert CLOSURES.next_school_day(date(2026, 12, 3), ROOM_1) == date(2026, 12, 7)
    assert CLOSURES.next_school_day(date(2026, 12, 3), ROOM_2) == date(2026, 12, 3)
    assert CLOSURES.school_days(date(2026, 12, 1), date(2026, 12, 8), ROOM_1) == [
        date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 7), date(2026, 12, 8)]


def test_grade_closure_closes_every_class_of_the_grade() -> None:
    assert not CLOSURES.is_school_day(date(2026, 12, 8), ROOM_4)
    assert CLOSURES.class_closure(date(2026, 12, 8), ClassRef(22, 4)) is not None
    assert CLOSURES.is_school_day(date(2026, 12, 8), ROOM_1)
    assert [c.name for c in CLOSURES.class_closures(ROOM_4, date(2026, 12, 1), date(2026, 12, 31))
            ] == ["学年閉鎖"]
    assert CLOSURES.class_closures(ROOM_1, date(2026, 12, 5), date(2026, 12, 31)) == []
    assert CLOSURES.class_closures(None, date(2026, 12, 1), date(2026, 12, 31)) == []


@pytest.mark.parametrize(
    ("now", "day", "closed_1", "closed_2"),
    [
        ("2026-12-02 19:59", date(2026, 12, 2), False, False),  # before the cutoff: today
        ("2026-12-02 20:00", date(2026, 12, 3), True, False),  # from the cutoff: closure day
        ("2026-12-03 07:00", date(2026, 12, 3), True, False),
        ("2026-12-04 20:00", date(2026, 12, 7), False, False),  # Friday night: past it
    ],
)
def test_closures_against_the_cutoff(now: str, day: date, closed_1: bool, closed_2: bool) -> None:
    """The report day is the school's; the class closure on that day is then looked up."""
    reported = report_day(at(now), time(20, 0), CLOSURES)
    assert reported == day
    assert (CLOSURES.class_closure(reported, ROOM_1) is not None) is closed_1
    assert (CLOSURES.class_closure(reported, ROOM_2) is not None) is closed_2


def test_a_class_closure_on_a_holiday_is_just_the_holiday() -> None:
    cal = SchoolCalendar(holidays=japan_holidays(), changes=(
        DayChange(date(2026, 11, 2), date(2026, 11, 4), class_id=ROOM_1.id),))
    assert cal.class_closure(date(2026, 11, 3), ROOM_1) is None  # 文化の日
    assert cal.class_closure(date(2026, 11, 4), ROOM_1) is not None


def test_academic_year_runs_april_to_march() -> None:
    assert academic_year(date(2027, 3, 31)) == 2026
    assert academic_year(date(2027, 4, 1)) == 2027
    assert academic_year_bounds(2026) == (date(2026, 4, 1), date(2027, 3, 31))


TERMS = [(date(2026, 4, 6), date(2026, 7, 20)), (date(2026, 9, 1), date(2026, 12, 24))]


@pytest.mark.parametrize(
    ("name", "start", "end", "problem"),
    [
        ("3学期", date(2027, 1, 8), date(2027, 3, 24), None),
        ("3学期", date(2027, 1, 8), date(2027, 3, 31), None),  # the year's last day
        ("", date(2027, 1, 8), date(2027, 3, 24), "name"),
        ("3学期", date(2027, 3, 24), date(2027, 1, 8), "order"),
        ("3学期", date(2027, 1, 8), date(2027, 4, 2), "outside_year"),  # into the next year
        ("夏", date(2026, 7, 20), date(2026, 8, 31), "overlap"),  # shares the 20th
        ("秋", date(2026, 8, 1), date(2027, 1, 10), "overlap"),  # covers a whole term
    ],
)
def test_terms_checks(name: str, start: date, end: date, problem: str | None) -> None:
    assert term_problem(name, start, end, TERMS) == problem


@pytest.mark.parametrize(
    ("start", "end", "kw", "problem"),
    [
        (date(2026, 12, 3), date(2026, 12, 4), {"class_id": 1}, None),
        (date(2026, 12, 5), date(2026, 12, 5), {"open_day": True}, None),
        (date(2026, 12, 4), date(2026, 12, 3), {}, "order"),
        (date(2026, 4, 1), date(2027, 4, 1), {}, None),  # 366 days: a leap year
        (date(2026, 4, 1), date(2027, 4, 2), {}, "too_long"),
        (date(2026, 12, 3), date(2026, 12, 3), {"class_id": 1, "grade": 2}, "scope"),
        (date(2026, 12, 5), date(2026, 12, 5), {"open_day": True, "grade": 2}, "open_scope"),
        (date(2026, 12, 3), date(2026, 12, 3), {"grade": 0}, "grade"),
    ],
)
def test_change_checks(start: date, end: date, kw: dict[str, Any], problem: str | None) -> None:
    args: dict[str, Any] = {"open_day": False, "class_id": None, "grade": None, **kw}
    assert change_problem(start, end, **args) == problem
