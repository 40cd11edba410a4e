"""The month register page (出席簿) byte for byte, and nothing of it kept between requests.

The golden files under tests/data/register/ were written by the plain Jinja template
before the page was made cheaper (issue #17): the table must stay exactly what it was, in
Japanese and English (its labels translated, its weekday names from babel), in the month
view and the print view alike. ``RENRAKU_WRITE_GOLDEN=1`` writes them again after an
intended change of the table.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from models import CalendarChange, Child, Term
from models.db import transaction
from renraku.services import absences
from renraku.services import staff as staff_svc
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_school
from tests.staff_fixtures import StaffPortal

GOLDEN = Path(__file__).parent / "data" / "register"
NOW = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)
TABLE = re.compile(r'<table class="register".*?</table>\n<p class="legend">.*?</p>', re.S)


@pytest.fixture
async def world(sqlite_db: Database) -> AsyncIterator[dict[str, int]]:
    """A class with every kind of cell: the five marks, late and early on one day, a
    weekend report, a cancelled report, a class closure, a school-wide closure, a grade
    closure of another grade, a child who left mid-month and a name to escape."""
    async with transaction(sqlite_db.sessions) as s:
        school = await make_school(s)
        room = await make_class(s, school, "1年1組")
        s.add(Term(school_id=school.id, name="2学期", start_date=date(2026, 9, 1),
                   end_date=date(2026, 12, 24)))
        s.add(CalendarChange(school_id=school.id, start_date=date(2026, 11, 20),
                             end_date=date(2026, 11, 20), name="創立記念日"))
        s.add(CalendarChange(school_id=school.id, start_date=date(2026, 12, 2),
                             end_date=date(2026, 12, 3), name="学級閉鎖 <インフル>",
                             class_id=room.id))
        s.add(CalendarChange(school_id=school.id, start_date=date(2026, 11, 25),
                             end_date=date(2026, 11, 25), name="学年閉鎖", grade=2))
        kids = [await make_child(s, school, name, reading, room) for name, reading in (
            ("青木 一郎", "あおき"), ("馬場 二郎", "ばば"), ('<b>千葉 & "三郎"</b>', "ちば"),
            ("土井 四郎", "どい"), ("江藤 五郎", "えとう"))]
        kids[3].active, kids[3].left_on = False, date(2026, 11, 16)
        reports = [
            (0, date(2026, 11, 2), "absence", "illness"),
            (0, date(2026, 12, 1), "absence", "illness"),
            (0, date(2026, 12, 4), "late", "other"),
            (1, date(2026, 11, 4), "absence", "suspension"),
            (1, date(2026, 11, 5), "absence", "suspension"),
            (1, date(2026, 11, 11), "late", "other"),
            (1, date(2026, 11, 11), "early_leave", "injury"),
            (2, date(2026, 11, 12), "absence", "bereavement"),
            (2, date(2026, 11, 12), "late", "other"),  # the absence wins
            (2, date(2026, 11, 14), "absence", "illness"),  # a Saturday: no mark
            (2, date(2026, 11, 20), "absence", "illness"),  # school closed: no mark
            (2, date(2026, 12, 2), "absence", "illness"),  # class closed: 閉
            (3, date(2026, 11, 10), "early_leave", "other"),
            (4, date(2026, 12, 7), "absence", "illness"),  # after today: shown, not counted
        ]
        for i, day, kind, reason in reports:
            await absences.submit(s, absences.ReportDraft(kids[i].id, day, kind, reason),
                                  channel="phone", guardian_id=None, now=NOW)
        gone = await absences.submit(
            s, absences.ReportDraft(kids[4].id, date(2026, 11, 9), "absence", "illness"),
            channel="phone", guardian_id=None, now=NOW)
        await absences.cancel(s, gone, channel="phone", guardian_id=None, now=NOW)
        teacher = await staff_svc.create_staff(
            s, school.id, name="森", email="mori@x.jp", role="teacher",
            password="teacher-pass-1", class_ids=[room.id])
    yield {"room": room.id, "teacher": teacher.id, "school": school.id,
           **{f"kid{i}": k.id for i, k in enumerate(kids)}}


async def _table(client: TestClient, path: str) -> str:
    resp = await client.get(path)
    assert resp.status == 200, path
    found = TABLE.search(await resp.text())
    assert found, path
    return found.group(0)


def _golden(name: str, text: str) -> str:
    path = GOLDEN / name
    if os.environ.get("RENRAKU_WRITE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("lang", ["ja", "en"])  # the grid is the same; the labels move
async def test_month_table_is_unchanged(staff_portal: StaffPortal, world: dict[str, int],
                                        lang: str) -> None:
    client = await staff_portal.client_as_staff("mori@x.jp", "teacher-pass-1")
    room = world["room"]
    assert (await client.get(f"/lang/{lang}?next=/staff/")).status == 200
    for ym in ("2026-11", "2026-12"):
        for view, path in (("month", f"/staff/classes/{room}/month?ym={ym}"),
                           ("print", f"/staff/classes/{room}/month/print?ym={ym}")):
            got = await _table(client, path)
            # The print view shows the same table as the month view.
            assert got == _golden(f"month-{ym}-{lang}.html", got), (view, ym, lang)


async def test_month_page_shows_every_change_at_once(
    staff_portal: StaffPortal, world: dict[str, int], sqlite_db: Database
) -> None:
    """Nothing of the month page may be kept between requests: a report, its cancellation,
    a class closure and a child's new name show on the next view."""
    client = await staff_portal.client_as_staff("mori@x.jp", "teacher-pass-1")
    path = f"/staff/classes/{world['room']}/month?ym=2026-11"

    async def row(child: str) -> str:
        table = await _table(client, path)
        return table.split(f'<tr data-child="{world[child]}">', 1)[1].split("</tr>", 1)[0]

    before = await row("kid4")
    assert "欠" not in before
    async with transaction(sqlite_db.sessions) as s:
        report = await absences.submit(
            s, absences.ReportDraft(world["kid4"], date(2026, 11, 17), "absence", "illness"),
            channel="web", guardian_id=None, now=NOW)
    assert (await row("kid4")).count("欠") == 1
    async with transaction(sqlite_db.sessions) as s:
        await absences.cancel(s, await s.get_one(type(report), report.id), channel="web",
                              guardian_id=None, now=NOW)
    assert await row("kid4") == before
    async with transaction(sqlite_db.sessions) as s:
        s.add(CalendarChange(school_id=world["school"], start_date=date(2026, 11, 18),
                             end_date=date(2026, 11, 18), name="学級閉鎖",
                             class_id=world["room"]))
        kid = await s.get_one(Child, world["kid4"])
        kid.name = "江藤 五郎丸"
    after = await row("kid4")
    assert after.count("閉") == 1 and "江藤 五郎丸" in after
