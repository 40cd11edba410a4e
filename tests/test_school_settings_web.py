"""The school settings page and staff management through the real portal (HTTP): admins
only and only their own school, CSRF, translated errors; staff roles, the recording line's
phone and PIN, a set-password link that works once; the absence line's number printed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import time

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from models import School, Staff
from models.db import transaction
from renraku.rules.school_settings import parse_school_settings
from renraku.services import staff as staff_svc
from renraku.services.passwords import verify_password
from renraku.services.schools import create_school
from tests.db_fixtures import Database
from tests.factories import make_child, make_class
from tests.staff_fixtures import StaffPortal

GOOD = {"name": "さくら市立さくら小学校", "reading": "さくらしりつさくらしょうがっこう",
        "timezone": "Asia/Tokyo", "cutoff": "19:00", "language": ["ja", "en"],
        "absence_line": "0120-123-456", "window_start": "09:00", "window_end": "17:30",
        "weekday": ["1", "2", "3", "4", "5", "6"]}


@pytest.fixture
async def world(sqlite_db: Database) -> AsyncIterator[dict[str, int]]:
    async with transaction(sqlite_db.sessions) as s:
        school = await create_school(s, parse_school_settings(name="さくら小学校"))
        other = await create_school(s, parse_school_settings(name="ひまわり中学校"))
        room = await make_class(s, school, "1年1組")
        await make_child(s, school, "山田 太郎", "やまだ たろう", room)
        ids = {"school": school.id, "other": other.id, "room": room.id}
        for key, sid, role in [("admin", school.id, "admin"), ("teacher", school.id, "teacher"),
                               ("far", other.id, "admin")]:
            person = await staff_svc.create_staff(s, sid, name=key, email=f"{key}@x.jp",
                                                  role=role, password="long-password-1",
                                                  class_ids=[room.id] if key == "teacher"
                                                  else [])
            ids[key] = person.id
    yield ids


async def school_row(portal: StaffPortal, school_id: int) -> School:
    async with portal.app.sessions() as s:
        return await s.get_one(School, school_id)


async def as_staff(portal: StaffPortal, who: str) -> TestClient:
    return await portal.client_as_staff(f"{who}@x.jp", "long-password-1")


async def test_only_admins_open_the_settings(staff_portal: StaffPortal,
                                             world: dict[str, int]) -> None:
    anonymous = await staff_portal.client()
    r = await anonymous.get("/staff/school", allow_redirects=False)
    assert r.status in (302, 303) and "/staff/login" in r.headers["Location"]
    teacher = await as_staff(staff_portal, "teacher")
    assert (await teacher.get("/staff/school")).status == 403
    r = await staff_portal.post(teacher, "/staff/school", GOOD)
    assert r.status == 403
    admin = await as_staff(staff_portal, "admin")
    page = await (await admin.get("/staff/school")).text()
    assert 'value="さくら小学校"' in page and 'value="20:00"' in page and "⟦" not in page
    assert "学校の設定" in page  # translated (Japanese by default)
    r = await admin.post("/staff/school", data=GOOD, allow_redirects=False)  # no CSRF token
    assert r.status == 403
    assert (await school_row(staff_portal, world["school"])).name == "さくら小学校"


async def test_admin_saves_settings_of_their_own_school(staff_portal: StaffPortal,
                                                        world: dict[str, int]) -> None:
    admin = await as_staff(staff_portal, "admin")
    r = await staff_portal.post(admin, "/staff/school", GOOD)
    assert r.status == 303 and r.headers["Location"] == "/staff/school?saved=1"
    school = await school_row(staff_portal, world["school"])
    assert (school.name, school.reading, school.phone_cutoff, school.languages,
            school.absence_line_e164, school.call_window_start, school.call_window_end,
            school.school_weekdays) == (
        GOOD["name"], GOOD["reading"], time(19, 0), ["ja", "en"], "+81120123456", "09:00",
        "17:30", [1, 2, 3, 4, 5, 6])
    page = await (await admin.get("/staff/school?saved=1")).text()
    assert "設定を保存しました" in page and 'value="0120-123-456"' in page
    # Another school's admin changes their own school, never this one.
    far = await as_staff(staff_portal, "far")
    r = await staff_portal.post(far, "/staff/school", {**GOOD, "name": "ひまわり市立中学校"})
    assert r.status == 303
    assert (await school_row(staff_portal, world["other"])).name == "ひまわり市立中学校"
    assert (await school_row(staff_portal, world["school"])).name == GOOD["name"]
    # The number is on the landing page and on the class's QR sheets.
    front = await (await (await staff_portal.client()).get("/")).text()
    assert "0120-123-456" in front and GOOD["name"] in front
    sheets = await (await admin.get(f"/staff/classes/{world['room']}/qr")).text()
    assert "欠席・遅刻・早退の連絡ダイヤル（24時間）: 0120-123-456" in sheets


async def test_bad_settings_are_shown_translated_and_nothing_saved(
        staff_portal: StaffPortal, world: dict[str, int]) -> None:
    admin = await as_staff(staff_portal, "admin")
    bad = {**GOOD, "name": "", "timezone": "Mars/Olympus", "cutoff": "", "language": [],
           "absence_line": "12", "window_start": "18:00", "window_end": "08:00", "weekday": []}
    r = await staff_portal.post(admin, "/staff/school", bad)
    page = await r.text()
    assert r.status == 400
    fields = re.findall(r'<li data-field="(\w+)">', page)
    assert set(fields) == {"name", "timezone", "cutoff", "languages", "absence_line",
                           "call_window", "weekdays"}
    assert "不明なタイムゾーンです" in page and "⟦" not in page
    assert 'value="Mars/Olympus"' in page  # what was typed stays in the form
    school = await school_row(staff_portal, world["school"])
    assert (school.name, school.timezone) == ("さくら小学校", "Asia/Tokyo")


async def test_admin_manages_staff_roles_phone_and_pin(staff_portal: StaffPortal,
                                                       world: dict[str, int]) -> None:
    admin = await as_staff(staff_portal, "admin")
    page = await (await admin.get("/staff/accounts")).text()
    for label in ("養護教諭", "校長", "学校管理者"):
        assert label in page
    r = await staff_portal.post(admin, f"/staff/accounts/{world['teacher']}/role",
                                {"role": "principal"})
    assert r.status == 303
    r = await staff_portal.post(admin, f"/staff/accounts/{world['teacher']}/phone",
                                {"phone": "090-9000-0005", "pin": "12"})
    assert r.status == 400 and "暗証番号は4〜8桁" in await r.text()
    r = await staff_portal.post(admin, f"/staff/accounts/{world['teacher']}/phone",
                                {"phone": "090-9000-0005", "pin": "2468"})
    assert r.status == 303
    r = await staff_portal.post(admin, f"/staff/accounts/{world['far']}/phone",
                                {"phone": "090-9000-0006", "pin": "2468"})
    assert r.status == 404  # another school's staff
    teacher = await as_staff(staff_portal, "teacher")
    r = await staff_portal.post(teacher, f"/staff/accounts/{world['admin']}/phone",
                                {"phone": "090-9000-0007", "pin": "2468"})
    assert r.status == 403
    async with staff_portal.app.sessions() as s:
        person = await s.get_one(Staff, world["teacher"])
        assert (person.role, person.phone_e164) == ("principal", "+819090000005")
        assert verify_password(person.pin_hash, "2468")
        assert (await s.get_one(Staff, world["far"])).phone_e164 is None


async def test_new_staff_without_password_gets_a_one_time_link(
        staff_portal: StaffPortal, world: dict[str, int]) -> None:
    admin = await as_staff(staff_portal, "admin")
    r = await staff_portal.post(admin, "/staff/accounts", {
        "name": "保健 先生", "email": "hoken@x.jp", "role": "nurse", "password": "",
        "class_id": str(world["room"])})
    page = await r.text()
    assert r.status == 200
    [path] = re.findall(r"http://school\.test(/password/reset/\d+/[\w-]+)", page)
    newcomer = await staff_portal.client()
    form = await (await newcomer.get(path)).text()
    assert "10文字以上" in form
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    r = await newcomer.post(path, data={"csrf_token": token.group(1), "password": "short"},
                            allow_redirects=False)
    assert r.status == 400
    r = await newcomer.post(path, data={"csrf_token": token.group(1),
                                        "password": "nurse-password-1"}, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/staff/login"
    again = await newcomer.get(path)
    assert again.status == 410  # used once
    nurse = await staff_portal.client_as_staff("hoken@x.jp", "nurse-password-1")
    assert (await nurse.get(f"/staff/classes/{world['room']}/today")).status == 200
    async with staff_portal.app.sessions() as s:
        person = await s.scalar(select(Staff).where(Staff.email == "hoken@x.jp"))
        assert person is not None and person.role == "nurse"
