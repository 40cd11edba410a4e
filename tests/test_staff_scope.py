"""Role and scope on the server: a teacher sees only their classes, guardians see no staff page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from models import Event, Notice
from models.db import transaction
from renraku.services import absences, events
from renraku.services import staff as staff_svc
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school
from tests.staff_fixtures import StaffPortal

NOW = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)


@pytest.fixture
async def world(sqlite_db: Database) -> AsyncIterator[dict[str, int]]:
    async with transaction(sqlite_db.sessions) as s:
        school = await make_school(s)
        other_school = await make_school(s, "第二小学校")
        mine = await make_class(s, school, "1年1組")
        theirs = await make_class(s, school, "1年2組")
        far = await make_class(s, other_school, "6年1組", grade=6)
        kid = await make_child(s, school, "青木 一郎", "あおき", mine)
        other_kid = await make_child(s, school, "馬場 二郎", "ばば", theirs)
        await make_guardian(s, "青木 母", "090-1111-0001", children=(kid,),
                            email="aoki@example.jp")
        for child in (kid, other_kid):
            await absences.submit(
                s, absences.ReportDraft(child.id, date(2026, 12, 4), "absence", "illness"),
                channel="phone", guardian_id=None, now=NOW)
        teacher = await staff_svc.create_staff(
            s, school.id, name="森", email="mori@x.jp", role="teacher",
            password="teacher-pass-1", class_ids=[mine.id])
        admin = await staff_svc.create_staff(
            s, school.id, name="校長", email="admin@x.jp", role="admin",
            password="admin-pass-12", class_ids=[])
        far_admin = await staff_svc.create_staff(
            s, other_school.id, name="他校", email="far@x.jp", role="admin",
            password="admin-pass-12", class_ids=[])
        start = datetime(2026, 12, 11, 5, 0, tzinfo=UTC)
        school_event = await events.create_event(
            s, school.id, events.EventDraft("運動会", start, start), admin.id, NOW)
    yield {
        "mine": mine.id, "theirs": theirs.id, "far": far.id, "teacher": teacher.id,
        "admin": admin.id, "far_admin": far_admin.id, "event": school_event.id,
        "kid": kid.id, "other_kid": other_kid.id,
    }


CLASS_PAGES = [
    "/staff/classes/{c}/today",
    "/staff/classes/{c}/today/rows",
    "/staff/classes/{c}/month",
    "/staff/classes/{c}/month.csv",
    "/staff/classes/{c}/month/print",
    "/staff/classes/{c}/month.pdf",
    "/staff/classes/{c}/guardians",
    "/staff/classes/{c}/proxy",
    "/staff/classes/{c}/qr",
]


async def test_teacher_sees_only_own_class(staff_portal: StaffPortal,
                                           world: dict[str, int]) -> None:
    client = await staff_portal.client_as_staff("mori@x.jp", "teacher-pass-1")
    for page in CLASS_PAGES:
        ok = await client.get(page.format(c=world["mine"]), allow_redirects=False)
        assert ok.status == 200, page
        for other in (world["theirs"], world["far"]):
            denied = await client.get(page.format(c=other), allow_redirects=False)
            assert denied.status in (403, 404), (page, other)
    csv = await (await client.get(f"/staff/classes/{world['mine']}/month.csv?ym=2026-12")).text()
    assert "青木 一郎" in csv and "馬場 二郎" not in csv
    rows = await (await client.get(f"/staff/classes/{world['mine']}/today/rows")).text()
    assert "青木 一郎" in rows and "馬場 二郎" not in rows
    # Not a stream of another class either, and no admin areas.
    stream = await client.get(f"/staff/classes/{world['theirs']}/today/stream")
    assert stream.status == 404
    assert (await client.get("/staff/accounts", allow_redirects=False)).status == 403
    edit = await client.get(f"/staff/events/{world['event']}/edit", allow_redirects=False)
    assert edit.status == 404
    post = await staff_portal.post(client, f"/staff/events/{world['event']}/cancel", {})
    assert post.status == 404
    seen = await staff_portal.post(
        client, f"/staff/classes/{world['theirs']}/reports/2/seen", {})
    assert seen.status == 404
    reissue = await staff_portal.post(
        client, f"/staff/classes/{world['mine']}/children/{world['other_kid']}/qr/reissue", {})
    assert reissue.status == 404
    proxy = await staff_portal.post(client, f"/staff/classes/{world['mine']}/proxy", {
        "child_id": str(world["other_kid"]), "name": "X", "phone": "03-3000-0009",
        "language": "ja"})
    assert proxy.status == 400  # a child of another class is refused


async def test_admin_scope_is_own_school(staff_portal: StaffPortal,
                                         world: dict[str, int]) -> None:
    admin = await staff_portal.client_as_staff("admin@x.jp", "admin-pass-12")
    for page in CLASS_PAGES:
        assert (await admin.get(page.format(c=world["theirs"]), allow_redirects=False)
                ).status == 200
        assert (await admin.get(page.format(c=world["far"]), allow_redirects=False)
                ).status == 404
    assert (await admin.get("/staff/accounts")).status == 200
    far = await staff_portal.client_as_staff("far@x.jp", "admin-pass-12")
    assert (await far.get(f"/staff/classes/{world['mine']}/today",
                          allow_redirects=False)).status == 404
    assert (await far.get(f"/staff/events/{world['event']}/edit",
                          allow_redirects=False)).status == 404


async def test_guardians_and_strangers_cannot_reach_staff_pages(
    staff_portal: StaffPortal, world: dict[str, int]
) -> None:
    anonymous: TestClient = await staff_portal.client()
    guardian = await staff_portal.client_as_guardian("aoki@example.jp")
    for client in (anonymous, guardian):
        for page in ["/staff/", "/staff/accounts", "/staff/events",
                     *(p.format(c=world["mine"]) for p in CLASS_PAGES)]:
            r = await client.get(page, allow_redirects=False)
            assert r.status in (302, 303, 401, 403), (page, r.status)
            if r.status in (302, 303):
                assert "/staff/login" in r.headers["Location"]


async def test_notices_and_events_by_role(staff_portal: StaffPortal,
                                          world: dict[str, int]) -> None:
    teacher = await staff_portal.client_as_staff("mori@x.jp", "teacher-pass-1")
    denied = await staff_portal.post(teacher, "/staff/notices", {
        "target": "school", "title": "全校", "body": "本文"})
    assert denied.status == 403
    denied = await staff_portal.post(teacher, "/staff/notices", {
        "target": f"class:{world['theirs']}", "title": "他", "body": "本文"})
    assert denied.status == 403
    ok = await staff_portal.post(teacher, "/staff/notices", {
        "target": f"class:{world['mine']}", "title": "持ち物", "body": "体操服",
        "title_en": "What to bring", "body_en": "Gym clothes", "publish_at": "2026-12-07T08:00"})
    assert ok.status == 303
    school_event = await staff_portal.post(teacher, "/staff/events/new", {
        "title": "全校遠足", "class_id": "", "date": "2026-12-10", "start": "09:00",
        "end": "15:00"})
    assert school_event.status == 403
    trip = await staff_portal.post(teacher, "/staff/events/new", {
        "title": "林間学校", "class_id": str(world["mine"]), "date": "2026-12-10",
        "end_date": "2026-12-11", "start": "09:00", "end": "15:00"})
    assert trip.status == 303
    async with staff_portal.app.sessions() as s:
        notice = await s.scalar(select(Notice).where(Notice.title == "持ち物"))
        assert notice is not None and notice.scope == "class"
        assert notice.translations == {"en": {"title": "What to bring", "body": "Gym clothes"}}
        assert notice.publish_at.isoformat() == "2026-12-06T23:00:00+00:00"  # 08:00 in Tokyo
        event = await s.scalar(select(Event).where(Event.title == "林間学校"))
        assert event is not None
        assert (event.ends_at - event.starts_at).total_seconds() == 30 * 3600
