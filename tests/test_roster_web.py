"""The roster pages over HTTP: admin only, own school, CSRF, size limit, transfers."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiohttp import FormData
from sqlalchemy import select

from models import Child, Classroom, RegistrationToken
from models.db import transaction
from renraku.services import roster as roster_svc
from renraku.services import staff as staff_svc
from tests.db_fixtures import Database
from tests.factories import make_child, make_guardian, make_school
from tests.prompts_fixtures import wait_name_rendered
from tests.staff_fixtures import StaffPortal

ROSTER = "学籍番号,学年,組,氏,名,ふりがな\r\n1,1,1,青木,一郎,あおき いちろう\r\n".encode()


def upload(token: str, content: bytes, field: str = "file", **fields: str) -> FormData:
    form = FormData()
    form.add_field("csrf_token", token)
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field(field, content, filename="roster.csv", content_type="text/csv")
    return form


async def test_roster_pages_are_for_the_schools_admin(staff_portal: StaffPortal,
                                                     sqlite_db: Database) -> None:
    async with transaction(sqlite_db.sessions) as s:
        school = await make_school(s)
        other = await make_school(s, "第二小学校")
        room = await roster_svc.save_class(s, school.id, 2026, 1, "1年1組")
        far_room = await roster_svc.save_class(s, other.id, 2026, 1, "1年1組")
        kid = await make_child(s, school, "山田 一", "やまだ はじめ", room)
        sibling = await make_child(s, school, "山田 二", "やまだ じ", room)
        stranger = await make_child(s, other, "他校 生", "たこう せい", far_room)
        await make_guardian(s, children=(kid, sibling), email="mum@x.jp")
        await staff_svc.create_staff(s, school.id, name="森", email="mori@x.jp",
                                     role="teacher", password="teacher-pass-1",
                                     class_ids=[room.id])
        await staff_svc.create_staff(s, school.id, name="長", email="admin@x.jp",
                                     role="admin", password="admin-pass-12", class_ids=[])
    teacher = await staff_portal.client_as_staff("mori@x.jp", "teacher-pass-1")
    for path in ("/staff/roster", "/staff/roster.csv", "/staff/rollover"):
        assert (await teacher.get(path, allow_redirects=False)).status == 403
    assert (await staff_portal.post(teacher, f"/staff/children/{kid.id}/leave", {})).status \
        == 403
    admin = await staff_portal.client_as_staff("admin@x.jp", "admin-pass-12")
    token = admin.csrf_token  # type: ignore[attr-defined]
    no_csrf = await admin.post("/staff/roster/import", data=upload("", ROSTER))
    assert no_csrf.status == 403
    big = await admin.post("/staff/roster/import",
                           data=upload(token, b"a,b\r\n" * (1024 * 1024)))
    assert big.status == 413
    # Imported, then a corrected reading: the phone line's name phrase is rendered again.
    corrected = ROSTER.decode().replace("いちろう", "いちろ").encode()
    for roster, reading in ((ROSTER, ""), (corrected, "あおき いちろ")):
        preview = await admin.post("/staff/roster/import",
                                   data=upload(token, roster, year="2026"))
        page = await preview.text()
        assert preview.status == 200 and 'id="confirm-form"' in page
        found = re.search(r'name="token" value="([^"]+)"', page)
        assert found
        done = await staff_portal.post(admin, "/staff/roster/import/confirm",
                                       {"token": found.group(1), "year": "2026"})
        assert done.status == 303
        if reading:
            await wait_name_rendered(staff_portal.app.settings, reading)
        else:
            async with transaction(sqlite_db.sessions) as s:
                aoki = await s.scalar(select(Child).where(Child.student_number == "1"))
                assert aoki is not None
                await make_guardian(s, "青木 母", "090-5555-0001", children=(aoki,))
    assert (await staff_portal.post(admin, "/staff/roster/import/confirm",
                                    {"token": "../../etc"})).status == 400
    gone = await staff_portal.post(admin, "/staff/roster/import/confirm",
                                   {"token": "A" * 22, "year": "2026"})
    assert gone.status == 410
    assert (await staff_portal.post(admin, f"/staff/children/{stranger.id}/leave",
                                    {"day": "2026-12-04"})).status == 404
    left = await staff_portal.post(admin, f"/staff/children/{kid.id}/leave",
                                   {"day": "2026-12-04",
                                    "back": f"/staff/classes/{room.id}/guardians"})
    assert left.status == 303 and left.headers["Location"].endswith("/guardians")
    mum_web = await staff_portal.client_as_guardian("mum@x.jp")
    assert (await mum_web.get(f"/c/{kid.id}")).status == 404  # gone for the guardian
    assert (await mum_web.get(f"/c/{sibling.id}")).status == 200  # the sibling stays
    arrived = await staff_portal.post(admin, "/staff/roster/admit", {
        "class_id": str(room.id), "student_number": "99", "family_name": "転入",
        "given_name": "生", "reading": "てんにゅう せい", "number": "30"})
    assert arrived.status == 303
    async with sqlite_db.sessions() as s:
        newcomer = await s.scalar(select(Child).where(Child.student_number == "99"))
        assert newcomer is not None
        assert arrived.headers["Location"] == f"/staff/classes/{room.id}/qr?child={newcomer.id}"
    sheet = await admin.get(arrived.headers["Location"])
    assert sheet.status == 200 and "転入 生" in await sheet.text()
    async with sqlite_db.sessions() as s:
        assert await s.scalar(select(RegistrationToken.id).where(
            RegistrationToken.child_id == newcomer.id))


async def test_rollover_page_with_an_april_list(staff_portal: StaffPortal,
                                                sqlite_db: Database) -> None:
    async with transaction(sqlite_db.sessions) as s:
        school = await make_school(s)
        for grade, name in [(1, "1年1組"), (2, "2年1組")]:
            await roster_svc.save_class(s, school.id, 2026, grade, name)
        await roster_svc.import_roster(s, school, (
            "学籍番号,学年,組,氏,名,ふりがな\r\n1,1,1,青木,一郎,あおき いちろう\r\n"
            "2,1,1,馬場,二郎,ばば じろう\r\n3,2,1,千葉,三郎,ちば さぶろう\r\n").encode(),
            year=2026, apply=True)
        await staff_svc.create_staff(s, school.id, name="長", email="admin@x.jp",
                                     role="admin", password="admin-pass-12", class_ids=[])
    admin = await staff_portal.client_as_staff("admin@x.jp", "admin-pass-12")
    april = "学籍番号,学年,組,出席番号\r\n1,2,B,1\r\n2,2,A,1\r\n".encode("cp932")
    token = admin.csrf_token  # type: ignore[attr-defined]
    early = await admin.post("/staff/rollover/preview",
                             data=upload(token, april, "assignments", to="2027"))
    page = await early.text()  # in December: what will happen, but no button yet
    assert 'id="rollover-early"' in page and 'id="rollover-confirm"' not in page
    staff_portal.app.clock.set(datetime(2027, 4, 1, 0, 30, tzinfo=UTC))
    admin = await staff_portal.client_as_staff("admin@x.jp", "admin-pass-12")  # a new session
    token = admin.csrf_token  # type: ignore[attr-defined]
    preview = await admin.post("/staff/rollover/preview",
                               data=upload(token, april, "assignments", to="2027"))
    page = await preview.text()
    assert preview.status == 200, page
    assert "2年A組" in page and "2年B組" in page and "千葉 三郎 (2年1組)" in page
    found = re.search(r'name="token" value="([^"]+)"', page)
    assert found and found.group(1)
    done = await staff_portal.post(admin, "/staff/rollover/confirm",
                                   {"to": "2027", "token": found.group(1)})
    assert done.status == 303 and done.headers["Location"] == "/staff/roster?year=2027"
    async with sqlite_db.sessions() as s:
        names = set(await s.scalars(select(Classroom.name).where(
            Classroom.academic_year == 2027)))
    assert names == {"2年A組", "2年B組"}
    again = await staff_portal.post(admin, "/staff/rollover/confirm",
                                    {"to": "2027", "token": found.group(1)})
    assert again.status == 400 and "2027" in await again.text()
