"""Roster import, export, transfers and the rollover on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from models import Child, Classroom, Enrolment, Notice, School, StaffClass
from models.db import transaction
from models.enums import ReportKind, ReportReason
from renraku.rules.roster import RosterFileError
from renraku.services import absences, portal, register, registration
from renraku.services import roster as roster_svc
from renraku.services import staff as staff_svc
from renraku.services.guardians import children_of
from renraku.services.schoolyear import RolloverRefused, rollover
from tests.db_fixtures import Database
from tests.factories import make_guardian, make_school

NOW = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)
APRIL = datetime(2027, 3, 31, 15, 0, tzinfo=UTC)  # 1 April 2027, 00:00 in Tokyo
HEADER = "学籍番号,学年,組,出席番号,氏,名,ふりがな,生年月日\r\n"
ROWS = [
    "26001,1,1,1,青木,一郎,あおき いちろう,2020-05-01",
    "26002,1,1,2,馬場,二郎,ばば じろう,2020-06-01",
    "26003,1,2,1,千葉,三郎,ちば さぶろう,2020-07-01",
    "25001,6,1,1,青木,花,あおき はな,2014-08-01",
]


def roster_file(rows: list[str] = ROWS, encoding: str = "cp932") -> bytes:
    return (HEADER + "\r\n".join(rows) + "\r\n").encode(encoding)


async def school_with_classes(db: Database, year: int = 2026) -> int:
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        for grade, name in [(1, "1年1組"), (1, "1年2組"), (6, "6年1組")]:
            await roster_svc.save_class(s, school.id, year, grade, name)
        return school.id


async def run_import(db: Database, school_id: int, data: bytes, apply: bool = True,
                     **kw: object) -> roster_svc.RosterImport:
    async with transaction(db.sessions) as s:
        school = await s.get_one(School, school_id)
        return await roster_svc.import_roster(s, school, data, year=2026, apply=apply, **kw)


async def count_children(db: Database) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count(Child.id))) or 0)


async def test_import_preview_apply_reimport_and_move(db: Database) -> None:
    school_id = await school_with_classes(db)
    preview = await run_import(db, school_id, roster_file(), apply=False)
    assert preview.encoding == "cp932" and preview.plan.counts()["add"] == 4
    assert not preview.applied and await count_children(db) == 0
    done = await run_import(db, school_id, roster_file())
    assert done.applied and await count_children(db) == 4
    again = await run_import(db, school_id, roster_file(encoding="utf-8"))
    assert again.plan.counts() == {"add": 0, "change": 0, "move": 0, "unchanged": 4}
    async with db.sessions() as s:
        aoki = await s.scalar(select(Child).where(Child.student_number == "26001"))
        assert aoki is not None
        assert (aoki.name, aoki.display_name, aoki.birth_date) == ("青木 一郎", "一郎",
                                                                  date(2020, 5, 1))
    async with transaction(db.sessions) as s:
        await make_guardian(s, children=(aoki,))
    changed = ROWS.copy()
    changed[0] = "26001,1,2,7,青木,一郎,あおき いちろ,2020-05-01"  # new reading, to 1年2組
    changed[1] = "26002,1,1,5,馬場,二郎,ばば じろう,2020-06-01"  # 出席番号 2 → 5
    moved = await run_import(db, school_id, roster_file(changed))
    assert moved.plan.counts() == {"add": 0, "change": 1, "move": 1, "unchanged": 2}
    assert moved.plan.of("change")[0].changed == ("number",) and moved.renamed == [aoki.id]
    async with db.sessions() as s:
        rooms = (await s.execute(
            select(Child.student_number, Classroom.name, Enrolment.number)
            .join(Enrolment, Enrolment.child_id == Child.id).join(Classroom)
            .where(Child.student_number.in_(["26001", "26002"]))
            .order_by(Child.student_number))).all()
        assert rooms == [("26001", "1年2組", 7), ("26002", "1年1組", 5)]


@pytest.mark.parametrize(("data", "code"), [
    ("学籍番号,学年,組,氏,名,ふりがな\r\n1,1,1,a,b,c\r\n".encode("cp932"), "bad_encoding"),
    (b"", "empty_file"),
    (b"\x00\x01\x02PK\x03\x04" * 50, "binary_file"),
    ("学籍番号,学年,氏,名,ふりがな\r\n1,1,a,b,c\r\n".encode(), "missing_column"),
])
async def test_bad_files_write_nothing(db: Database, data: bytes, code: str) -> None:
    school_id = await school_with_classes(db)
    with pytest.raises(RosterFileError) as err:
        await run_import(db, school_id, data, encoding="utf-8" if code == "bad_encoding" else None)
    assert err.value.problem.code == code
    assert await count_children(db) == 0


async def test_row_errors_block_the_whole_import(db: Database) -> None:
    school_id = await school_with_classes(db)
    rows = [*ROWS, "26001,1,1,9,重複,太郎,ちょうふく たろう,", "26009,4,1,1,四年,生,よねん せい,"]
    result = await run_import(db, school_id, roster_file(rows))
    assert [(p.code, p.line) for p in result.plan.problems] == [
        ("duplicate_student_number", 6), ("unknown_class", 7)]
    assert not result.applied and await count_children(db) == 0


async def test_ten_thousand_rows_import_in_seconds(db: Database) -> None:
    school_id = await school_with_classes(db)
    rows = [f"{100000 + i},1,{1 + i % 2},{i // 2 % 999 + 1},氏{i},名{i},うじ{i} な{i},2020-04-02"
            for i in range(10_000)]
    data = roster_file(rows, "utf-8")
    started = time.monotonic()
    result = await run_import(db, school_id, data)
    took = time.monotonic() - started
    assert result.applied and await count_children(db) == 10_000
    assert took < 20, f"10,000 rows took {took:.1f} s"
    started = time.monotonic()
    again = await run_import(db, school_id, data)
    assert again.plan.counts()["unchanged"] == 10_000 and time.monotonic() - started < 20


async def test_transfer_out_and_in_and_export(db: Database) -> None:
    school_id = await school_with_classes(db)
    await run_import(db, school_id, roster_file([
        *ROWS, "26004,1,1,3,=HYPERLINK(\"x\"),四郎,あおき しろう,"]))
    async with transaction(db.sessions) as s:
        ichiro = await s.scalar(select(Child).where(Child.student_number == "26001"))
        hana = await s.scalar(select(Child).where(Child.student_number == "25001"))
        assert ichiro is not None and hana is not None
        mum = await make_guardian(s, children=(ichiro, hana))
        room = await s.scalar(select(Classroom).where(Classroom.name == "1年1組"))
        assert room is not None
        token = await registration.issue(s, ichiro.id, room.id, NOW)
        await absences.submit(s, absences.ReportDraft(ichiro.id, date(2026, 12, 1),
                              ReportKind.ABSENCE, ReportReason.ILLNESS),
                              channel="web", guardian_id=mum.id, now=NOW)
        await roster_svc.leave(s, ichiro, date(2026, 12, 3), NOW)
    async with transaction(db.sessions) as s:
        assert [c.id for c in await portal.guardian_children(s, mum.id)] == [hana.id]
        assert [c.id for c in await children_of(s, [mum.id])] == [hana.id]
        assert await portal.guardianship(s, mum.id, ichiro.id) is None
        assert await portal.guardianship(s, mum.id, hana.id) is not None
        assert await registration.lookup(s, token.token) is None
        grid = await register.month_register(s, room, 2026, 12, until=date(2026, 12, 4))
        assert ichiro.id in [r.child.child_id for r in grid.rows]  # history kept
        assert ichiro.id not in [c.id for c in await register.class_children(s, room.id)]
        newcomer = await roster_svc.admit(s, school_id, room, student_number="26100",
                                          family_name="転入", given_name="生",
                                          reading="てんにゅう せい", number=9)
        assert (await registration.issue(s, newcomer.id, room.id, NOW)).token
        with pytest.raises(ValueError, match="student_number_taken"):
            await roster_svc.admit(s, school_id, room, student_number="26100",
                                   family_name="a", given_name="b", reading="c")
        exported = await roster_svc.export_csv(s, school_id, 2026)
    assert exported.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
    assert rows[0] == list(roster_svc.EXPORT_HEADER) and "26001" not in {r[0] for r in rows}
    assert ["26004", "1", "1", "3", "'=HYPERLINK(\"x\")", "四郎", "あおき しろう", ""] in rows
    # The export re-imported changes nothing but the neutralised name it had to quote.
    back = await run_import(db, school_id, exported, apply=False)
    assert back.plan.ok and back.plan.counts()["add"] == 0
    assert [p.row.student_number for p in back.plan.of("change")] == ["26004"]


async def test_rollover_by_rule_graduates_and_keeps_last_years_register(db: Database) -> None:
    school_id = await school_with_classes(db)
    await run_import(db, school_id, roster_file())
    async with transaction(db.sessions) as s:
        school = await s.get_one(School, school_id)
        kids = {c.student_number: c for c in await s.scalars(select(Child))}
        mum = await make_guardian(s, children=(kids["26001"], kids["25001"]))
        rooms = {r.name: r for r in await s.scalars(select(Classroom))}
        teacher = await staff_svc.create_staff(
            s, school_id, name="森", email="mori@x.jp", role="teacher",
            password="long-enough-pw", class_ids=[rooms["1年1組"].id])
        await absences.submit(s, absences.ReportDraft(kids["25001"].id, date(2027, 3, 1),
                              ReportKind.ABSENCE, ReportReason.ILLNESS),
                              channel="web", guardian_id=mum.id, now=NOW)
        with pytest.raises(RolloverRefused) as refused:
            await rollover(s, school, 2028, NOW)
        assert refused.value.code == "not_next"
        preview = await rollover(s, school, 2027, NOW)  # in December: a preview only
        assert not preview.applied and preview.last_grade == 6 and not preview.ready
        assert sorted(preview.plan.new_classes) == [(2, "2年1組"), (2, "2年2組")]
        with pytest.raises(RolloverRefused) as early:
            await rollover(s, school, 2027, APRIL - timedelta(seconds=1), apply=True)
        assert (early.value.code, early.value.params) == ("too_early", {"day": "2027-04-01"})
        assert await s.scalar(select(func.count(Classroom.id))) == 3
        done = await rollover(s, school, 2027, APRIL, apply=True)
        assert done.applied and [g.student_number for g in done.plan.graduates] == ["25001"]
    async with transaction(db.sessions) as s:
        with pytest.raises(RolloverRefused) as twice:
            await rollover(s, school, 2027, APRIL)
        assert twice.value.code == "already_done"
        new = {r.name: r for r in await roster_svc.year_classes(s, school_id, 2027)}
        assert sorted(new) == ["2年1組", "2年2組"]
        names = [c.student_number for c in await register.class_children(s, new["2年1組"].id)]
        assert names == ["26001", "26002"]
        assert await s.scalar(select(StaffClass.class_id).where(
            StaffClass.staff_id == teacher.id, StaffClass.class_id == new["2年1組"].id))
        grad = await s.get_one(Child, kids["25001"].id)
        assert (grad.active, grad.left_on, grad.left_reason) == (False, date(2027, 3, 31),
                                                                 "graduated")
        (ichiro,) = await portal.guardian_children(s, mum.id)
        assert ichiro.id == kids["26001"].id
        assert [r.name for r in ichiro.current_classes] == ["2年1組"]
        for grade in (1, 2):  # a notice to his grade of this year, not last year's
            s.add(Notice(school_id=school_id, scope="grade", grade=grade, title=f"{grade}年",
                         body="", publish_at=NOW, created_at=NOW))
        await s.flush()
        assert [n.title for n in await portal.notices_for_child(s, ichiro, NOW)] == ["2年"]
        march = await register.month_register(s, rooms["6年1組"], 2027, 3, until=None)
        assert [r.cells[0] for r in march.rows if r.child.child_id == grad.id] == ["欠"]


async def test_rollover_from_an_april_list_reuses_classes_made_beforehand(db: Database) -> None:
    school_id = await school_with_classes(db)
    await run_import(db, school_id, roster_file())
    async with transaction(db.sessions) as s:
        school = await s.get_one(School, school_id)
        made = await roster_svc.save_class(s, school_id, 2027, 2, "2年1組")
        april = "学籍番号,学年,組,出席番号\r\n26001,2,2,1\r\n26002,2,1,1\r\n"
        bad = await rollover(s, school, 2027, APRIL, assignments=april.encode("cp932"),
                             apply=True)
        assert not bad.applied
        assert [(p.code, p.params["number"]) for p in bad.plan.problems] == [
            ("not_assigned", "26003")]
        april += "26003,2,1,2\r\n"
        done = await rollover(s, school, 2027, APRIL, assignments=april.encode("cp932"),
                              apply=True)
        assert done.applied
        rows = (await s.execute(
            select(Child.student_number, Classroom.id, Classroom.name, Enrolment.number)
            .join(Enrolment, Enrolment.child_id == Child.id)
            .join(Classroom, Classroom.id == Enrolment.class_id)
            .where(Classroom.academic_year == 2027).order_by(Child.student_number))).all()
        assert [(n, name, num) for n, _id, name, num in rows] == [
            ("26001", "2年2組", 1), ("26002", "2年1組", 1), ("26003", "2年1組", 2)]
        assert {cid for _n, cid, name, _num in rows if name == "2年1組"} == {made.id}
