"""A child in two classes (issue 15): a special-needs class (特別支援学級) beside a regular one.

One child, one set of guardians, one record of each report: the staff room puts the child
in the second class, whose QR sheet then has its own code; registering on that code links
the same family without a second account; both classes' teachers see the report and both
registers (出席簿) count the absence once; the phone line and broadcasts know one child.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

from sqlalchemy import func, select

from ivr.absence_flow import AbsenceCall
from models import (
    AbsenceReport,
    Child,
    Classroom,
    Enrolment,
    Guardian,
    Guardianship,
    School,
    SmsMessage,
    Staff,
    Term,
)
from models.db import transaction
from models.enums import ReportKind, ReportReason
from renraku.app import App
from renraku.clock import FakeClock
from renraku.demo import create_demo_data
from renraku.services import absences, health, register, registration
from renraku.services import roster as roster_svc
from renraku.services import staff as staff_svc
from renraku.services.broadcast import target_children
from renraku.services.guardians import household_by_phone
from renraku.settings import Settings
from tests.absence_fakes import FakeHangup, FakeVoice, ScriptedChannel
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school
from tests.staff_fixtures import StaffPortal

DAY = date(2026, 12, 4)  # PORTAL_NOW's day in Tokyo, a Friday
STAFF_PW = "long-enough-pw"


async def _two_class_school(db: Database) -> dict[str, int]:
    """1年1組 and ひまわり学級 (special needs, mixed grades), a teacher each, an admin; 太郎
    in 1年1組 with his mother registered; 次郎 in 1年1組 only."""
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        s.add(Term(school_id=school.id, name="2学期", start_date=date(2026, 9, 1),
                   end_date=date(2026, 12, 24)))
        regular = await make_class(s, school, "1年1組", 1)
        special = await make_class(s, school, "ひまわり学級", 0)
        special.special_needs = True
        taro = await make_child(s, school, "山田 太郎", "やまだ たろう", regular)
        taro.student_number = "20260001"
        jiro = await make_child(s, school, "佐藤 次郎", "さとう じろう", regular)
        jiro.student_number = "20260002"
        mum = await make_guardian(s, "山田 花子", "090-1111-0001", children=(taro,),
                                  email="hanako@example.jp")
        for name, email, role, rooms in (("森", "mori@x.jp", "teacher", [regular.id]),
                                         ("林", "hayashi@x.jp", "teacher", [special.id]),
                                         ("校務", "admin@x.jp", "admin", [])):
            await staff_svc.create_staff(s, school.id, name=name, email=email, role=role,
                                         password=STAFF_PW, class_ids=rooms)
        return {"school": school.id, "regular": regular.id, "special": special.id,
                "taro": taro.id, "jiro": jiro.id, "mum": mum.id}


async def _csrf(client: object, path: str) -> str:
    return await StaffPortal.csrf(client, path)  # type: ignore[arg-type]


def _register_row(text: str, name: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text)))
    return next(r for r in rows if r and r[0] == name)


async def test_second_class_qr_same_family_one_report_both_teachers_and_registers(
    staff_portal: StaffPortal, sqlite_db: Database
) -> None:
    w = await _two_class_school(sqlite_db)
    admin = await staff_portal.client_as_staff("admin@x.jp", STAFF_PW)
    r = await staff_portal.post(admin, "/staff/roster/second-class", {
        "student_number": "20260001", "class_id": w["special"], "action": "add"})
    assert r.status == 303
    assert r.headers["Location"] == f"/staff/classes/{w['special']}/qr?child={w['taro']}"
    # Once is enough: adding again changes nothing
    r = await staff_portal.post(admin, "/staff/roster/second-class", {
        "student_number": "20260001", "class_id": w["special"], "action": "add"})
    assert r.status == 303
    async with sqlite_db.sessions() as s:
        rooms = set(await s.scalars(select(Enrolment.class_id).where(
            Enrolment.child_id == w["taro"])))
    assert rooms == {w["regular"], w["special"]}

    # Each class's teacher prints a sheet with a code of their own class for 太郎
    teacher_a = await staff_portal.client_as_staff("mori@x.jp", STAFF_PW)
    teacher_b = await staff_portal.client_as_staff("hayashi@x.jp", STAFF_PW)
    sheet_a = await (await teacher_a.get(f"/staff/classes/{w['regular']}/qr")).text()
    sheet_b = await (await teacher_b.get(f"/staff/classes/{w['special']}/qr")).text()
    async with sqlite_db.sessions() as s:
        tok_a = await registration.active_token(s, w["taro"], w["regular"])
        tok_b = await registration.active_token(s, w["taro"], w["special"])
    assert tok_a is not None and tok_b is not None and tok_a.token != tok_b.token
    assert f"/r/{tok_a.token}" in sheet_a and f"/r/{tok_b.token}" not in sheet_a
    assert f"/r/{tok_b.token}" in sheet_b and "山田 太郎" in sheet_b
    assert "佐藤 次郎" not in sheet_b  # only 太郎 is in ひまわり学級

    # The mother, signed in, scans the second class's code: she is already registered
    mum = await staff_portal.client_as_guardian("hanako@example.jp")
    page = await (await mum.get(f"/r/{tok_b.token}")).text()
    assert 'id="reg-already"' in page and "ひまわり学級" in page
    # Not signed in, her number and address lead her to log in, not to a second account
    stranger = await staff_portal.client()
    token = await _csrf(stranger, f"/r/{tok_b.token}")
    r = await stranger.post(f"/r/{tok_b.token}", data={
        "csrf_token": token, "name": "山田 花子", "phone": "090-1111-0001",
        "email": "hanako@example.jp", "password": "new-pass-1234", "language": "ja"},
        allow_redirects=False)
    assert r.status == 409 and 'id="reg-existing"' in await r.text()
    # The father registers on the second class's code: linked to the same 太郎
    dad = await staff_portal.client()
    token = await _csrf(dad, f"/r/{tok_b.token}")
    r = await dad.post(f"/r/{tok_b.token}", data={
        "csrf_token": token, "name": "山田 一郎", "reading": "やまだ いちろう",
        "phone": "090-1111-0002", "password": "new-pass-1234", "language": "ja",
        "relation": "father"}, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/register/verify"
    async with sqlite_db.sessions() as s:
        body = await s.scalar(select(SmsMessage.body).where(
            SmsMessage.to_e164 == "+819011110002").order_by(SmsMessage.id.desc()))
    code = re.search(r"\b(\d{6})\b", body or "")
    assert code
    token = await _csrf(dad, "/register/verify")
    r = await dad.post("/register/verify", data={"csrf_token": token,
                                                 "sms_code": code.group(1)},
                       allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == f"/c/{w['taro']}"
    async with sqlite_db.sessions() as s:
        links = [(g.guardian_id, g.position) for g in await s.scalars(
            select(Guardianship).where(Guardianship.child_id == w["taro"])
            .order_by(Guardianship.position))]
        guardians = await s.scalar(select(func.count()).select_from(Guardian))
        children = await s.scalar(select(func.count()).select_from(Child))
    assert links[0] == (w["mum"], 1) and links[1][1] == 2 and len(links) == 2
    assert guardians == 2 and children == 2  # nobody and nothing made twice

    # The mother reports an absence once, on the web (no class is asked for)
    token = await _csrf(mum, f"/c/{w['taro']}/absence/new")
    r = await mum.post(f"/c/{w['taro']}/absence/new", data={
        "csrf_token": token, "day": DAY.isoformat(), "kind": "absence", "reason": "illness",
        "symptom": "fever"}, allow_redirects=False)
    assert r.status == 302, await r.text()
    async with sqlite_db.sessions() as s:
        reports = list(await s.scalars(select(AbsenceReport).where(
            AbsenceReport.child_id == w["taro"])))
    assert [(x.day, x.kind) for x in reports] == [(DAY, "absence")]

    # Both teachers see it today; each only their own class
    for client, room in ((teacher_a, w["regular"]), (teacher_b, w["special"])):
        rows = await (await client.get(f"/staff/classes/{room}/today/rows")).text()
        assert "山田 太郎" in rows, room
    assert (await teacher_b.get(f"/staff/classes/{w['regular']}/today")).status == 404
    # Both registers count the absence once
    for client, room in ((teacher_a, w["regular"]), (teacher_b, w["special"])):
        r = await client.get(f"/staff/classes/{room}/month.csv")
        assert r.status == 200
        row = _register_row((await r.read()).decode("utf-8-sig"), "山田 太郎")
        assert row[1:-8].count("欠") == 1 and row[DAY.day] == "欠", room
        assert row[-4] == "1", room  # 欠席 (days absent)
    # 次郎, only in 1年1組, is not on ひまわり学級's register
    special_csv = await (await teacher_b.get(f"/staff/classes/{w['special']}/month.csv")).read()
    assert "佐藤 次郎" not in special_csv.decode("utf-8-sig")


async def test_second_class_form_refusals(staff_portal: StaffPortal, sqlite_db: Database) -> None:
    w = await _two_class_school(sqlite_db)
    admin = await staff_portal.client_as_staff("admin@x.jp", STAFF_PW)
    # The only class of the year is not removed (that is a move, or 転出)
    r = await staff_portal.post(admin, "/staff/roster/second-class", {
        "student_number": "20260002", "class_id": w["regular"], "action": "remove"})
    assert r.status == 400 and "second-class-form" in await r.text()
    r = await staff_portal.post(admin, "/staff/roster/second-class", {
        "student_number": "no-such", "class_id": w["special"], "action": "add"})
    assert r.status == 400
    # A teacher cannot do it
    teacher = await staff_portal.client_as_staff("mori@x.jp", STAFF_PW)
    r = await staff_portal.post(teacher, "/staff/roster/second-class", {
        "student_number": "20260002", "class_id": w["special"], "action": "add"})
    assert r.status == 403
    # Joining, then leaving the second class: the class's code stops working
    for action in ("add", "remove"):
        r = await staff_portal.post(admin, "/staff/roster/second-class", {
            "student_number": "20260002", "class_id": w["special"], "action": action})
        assert r.status == 303, action
        if action == "add":
            async with transaction(sqlite_db.sessions) as s:
                tok = await registration.issue(s, w["jiro"], w["special"],
                                               staff_portal.app.clock.now())
    async with sqlite_db.sessions() as s:
        rooms = list(await s.scalars(select(Enrolment.class_id).where(
            Enrolment.child_id == w["jiro"])))
        assert rooms == [w["regular"]]
        assert await registration.lookup(s, tok.token) is None


async def test_one_child_for_the_phone_line_broadcasts_and_the_roster(db: Database) -> None:
    w = await _two_class_school(db)
    async with transaction(db.sessions) as s:
        taro = await s.get_one(Child, w["taro"])
        special = await s.get_one(Classroom, w["special"])
        assert await roster_svc.join_class(s, taro, special)
        assert not await roster_svc.join_class(s, taro, special)
    async with transaction(db.sessions) as s:
        # The absence line lists 太郎 once for his mother's number
        home = await household_by_phone(s, "+819011110001")
        assert [c.id for c in home.children] == [w["taro"]]
        # A broadcast to both classes calls his family once
        kids = await target_children(s, w["school"], {"classes": [w["regular"], w["special"]]})
        assert sorted(k.id for k in kids) == sorted([w["taro"], w["jiro"]])
        # One report, on both classes' day lists and registers, once each
        await absences.submit(s, absences.ReportDraft(
            w["taro"], DAY, ReportKind.ABSENCE, ReportReason.ILLNESS, None),
            channel="phone", guardian_id=w["mum"], now=taro.created_at)
        for room_id in (w["regular"], w["special"]):
            assert [e.child_id for e in await register.day_reports(s, room_id, DAY)] == \
                [w["taro"]]
            room = await s.get_one(Classroom, room_id)
            grid = await register.month_register(s, room, 2026, 12, until=DAY)
            row = next(r for r in grid.rows if r.child.child_id == w["taro"])
            assert row.cells.count("欠") == 1 and row.totals.absent == 1
        # The nurse: each class counts one absent child; the illness list names him once
        board = await health.dashboard(s, await s.get_one(School, w["school"]), DAY, 30)
        absent = {c.class_id: next(d.absent for d in c.days if d.day == DAY)
                  for c in board.classes}
        assert absent == {w["regular"]: 1, w["special"]: 1}
        assert [(r.child_name, r.class_name) for r in board.reports] == \
            [("山田 太郎", "1年1組・ひまわり学級")]
    # The roster file has one row per child (the homeroom); reading it back, or a file
    # naming the special-needs class, keeps both classes
    async with transaction(db.sessions) as s:
        school = await s.get_one(School, w["school"])
        exported = await roster_svc.export_csv(s, w["school"], 2026)
        rows = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
        assert [r[0] for r in rows[1:]].count("20260001") == 1
        again = await roster_svc.import_roster(s, school, exported, year=2026, apply=True)
        assert again.plan.ok and again.plan.counts()["move"] == 0
        text = ("学籍番号,学年,組,出席番号,氏,名,ふりがな\n"
                "20260001,0,ひまわり学級,3,山田,太郎,やまだ たろう\n")
        special = await roster_svc.import_roster(s, school, text.encode(), year=2026,
                                                 apply=True)
        assert special.plan.ok and special.plan.counts()["move"] == 0, special.plan
    async with db.sessions() as s:
        rows2 = list(await s.execute(select(Enrolment.class_id, Enrolment.number).where(
            Enrolment.child_id == w["taro"]).order_by(Enrolment.class_id)))
    assert [tuple(r) for r in rows2] == [(w["regular"], None), (w["special"], 3)]


async def test_the_absence_line_asks_once_and_records_once(db: Database) -> None:
    """The mother of a child in two classes calls: no child or class is asked for, and the
    one report is each class's."""
    w = await _two_class_school(db)
    app = App(Settings(), FakeClock(datetime(2026, 12, 3, 1, 0, tzinfo=UTC), frozen=True),
              db.engine, db.sessions)
    async with transaction(db.sessions) as s:
        await roster_svc.join_class(s, await s.get_one(Child, w["taro"]),
                                    await s.get_one(Classroom, w["special"]))
    agi = ScriptedChannel("090-1111-0001", [
        ("absence.main_menu", "1"),
        ("absence.kind_menu", "1"),
        ("absence.reason_menu", "1"),
        ("absence.symptom_menu", "1"),
        ("absence.confirm_keys", "1"),
        ("absence.after_menu", "2"),
    ])
    result = await AbsenceCall(agi, app, FakeVoice(), FakeHangup).run()
    assert result.outcome == "reported"
    assert not any(s.startswith("absence.child_option") for s in agi.sounds())
    async with db.sessions() as s:
        reports = list(await s.scalars(select(AbsenceReport)))
        assert [(r.child_id, r.day, r.channel) for r in reports] == \
            [(w["taro"], date(2026, 12, 3), "phone")]
        for room in (w["regular"], w["special"]):
            assert [e.child_id for e in await register.day_reports(
                s, room, date(2026, 12, 3))] == [w["taro"]]


async def test_the_demo_has_a_child_in_two_classes(sqlite_db: Database) -> None:
    async with transaction(sqlite_db.sessions) as s:
        await create_demo_data(s, datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    async with sqlite_db.sessions() as s:
        smith = await s.scalar(select(Child).where(Child.family_name == "Smith"))
        assert smith is not None
        rooms = {r.name: r for r in await s.scalars(
            select(Classroom).join(Enrolment).where(Enrolment.child_id == smith.id))}
        assert set(rooms) == {"1年1組", "ひまわり学級"} and rooms["ひまわり学級"].special_needs
        hayashi = await s.scalar(select(Staff).where(Staff.email == "hayashi@sakura.example.jp"))
        assert hayashi is not None
        scope = await staff_svc.staff_scope(s, hayashi)
        assert scope.class_ids == {rooms["ひまわり学級"].id}
        assert [c.id for c in await register.class_children(s, rooms["ひまわり学級"].id)] == \
            [smith.id]
