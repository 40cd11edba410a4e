"""The cutoff and school-day rule that decides which day a phone report is for."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from renraku.rules.schoolday import DayChange, NoSchoolDay, SchoolCalendar, report_day

TOKYO = ZoneInfo("Asia/Tokyo")
CAL = SchoolCalendar()


def at(text: str, tz: ZoneInfo = TOKYO) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-12-03 19:59:59", date(2026, 12, 3)),  # Thursday, one second before the cutoff
        ("2026-12-03 20:00:00", date(2026, 12, 4)),  # the cutoff itself: tomorrow
        ("2026-12-03 23:59:59", date(2026, 12, 4)),
        ("2026-12-04 00:00:00", date(2026, 12, 4)),
        ("2026-12-04 07:30:00", date(2026, 12, 4)),
        ("2026-12-04 21:00:00", date(2026, 12, 7)),  # Friday evening → Monday
        ("2026-12-05 10:00:00", date(2026, 12, 7)),  # Saturday → Monday
        ("2026-12-31 20:00:00", date(2027, 1, 1)),  # year end (a Friday, no calendar set)
        ("2027-02-28 20:30:00", date(2027, 3, 1)),  # Sunday at month end → Monday
    ],
)
def test_cutoff_boundary(now: str, expected: date) -> None:
    assert report_day(at(now), time(20, 0), CAL) == expected


def test_each_school_has_its_own_cutoff() -> None:
    now = at("2026-12-03 18:30:00")
    assert report_day(now, time(20, 0), CAL) == date(2026, 12, 3)
    assert report_day(now, time(18, 0), CAL) == date(2026, 12, 4)


def test_time_zone_is_the_schools() -> None:
    # 11:00 UTC is 20:00 in Tokyo: past the cutoff there, though not in UTC.
    utc_now = datetime(2026, 12, 3, 11, 0, tzinfo=ZoneInfo("UTC"))
    assert report_day(utc_now.astimezone(TOKYO), time(20, 0), CAL) == date(2026, 12, 4)
    honolulu = ZoneInfo("Pacific/Honolulu")
    assert report_day(utc_now.astimezone(honolulu), time(20, 0), CAL) == date(2026, 12, 3)


def test_holidays_and_terms_are_skipped() -> None:
    winter_break = SchoolCalendar(
        terms=((date(2026, 9, 1), date(2026, 12, 24)), (date(2027, 1, 8), date(2027, 3, 24))),
        holidays={date(2027, 1, 11): "成人の日"},
        changes=(DayChange(date(2027, 1, 9), date(2027, 1, 9), open=True),),  # Saturday class
    )
    assert report_day(at("2026-12-24 20:00:00"), time(20, 0), winter_break) == date(2027, 1, 8)
    assert report_day(at("2027-01-08 20:00:00"), time(20, 0), winter_break) == date(2027, 1, 9)
    assert report_day(at("2027-01-09 20:00:00"), time(20, 0), winter_break) == date(2027, 1, 12)
    assert winter_break.school_days(date(2027, 1, 8), date(2027, 1, 12)) == [
        date(2027, 1, 8), date(2027, 1, 9), date(2027, 1, 12)
    ]


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        report_day(datetime(2026, 12, 3, 19, 0), time(20, 0), CAL)


def test_a_calendar_without_school_days_is_an_error() -> None:
    with pytest.raises(NoSchoolDay):
        SchoolCalendar(weekdays=frozenset()).next_school_day(date(2026, 12, 3))
