"""Guardians reach only their own children; family events never reach staff; CSRF is checked."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import aiohttp
import pytest
from sqlalchemy import select
from yarl import URL

from models import AbsenceReport, Classroom, FamilyEvent, Guardian, Guardianship, SurveyResponse
from models.db import transaction
from models.enums import Channel, ReportKind, ReportReason
from renraku.services import absences, register
from renraku.services import staff as staff_svc
from tests.db_fixtures import Database
from tests.web_fixtures import Portal
from tests.web_world import NOW, PASSWORD, World, build_world
from webportal.security import unsign

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Client:
    """A person with their own cookie jar, talking to the live portal."""

    def __init__(self, portal: Portal) -> None:
        self.base = portal.base_url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.base + path, allow_redirects=False) as resp:
            return resp.status, await resp.text()

    async def token(self) -> str:
        _status, html = await self.get("/login")
        match = CSRF.search(html)
        assert match
        return match.group(1)

    async def post(self, path: str, data: dict[str, str], csrf: bool = True) -> int:
        return (await self.send(path, data, csrf))[0]

    async def send(self, path: str, data: dict[str, str], csrf: bool = True) -> tuple[int, str]:
        """POST a form; the status and the page."""
        if csrf:
            data = {**data, "csrf_token": await self.token()}
        async with self.http.post(self.base + path, data=data, allow_redirects=False) as resp:
            return resp.status, await resp.text()

    async def login(self, identifier: str, password: str = PASSWORD,
                    path: str = "/login", field: str = "identifier") -> None:
        status = await self.post(path, {field: identifier, "password": password})
        assert status == 302, status


@pytest.fixture
async def world(sqlite_db: Database) -> World:
    return await build_world(sqlite_db)


@pytest.fixture
async def people(portal: Portal) -> AsyncIterator[dict[str, Client]]:
    clients = {name: Client(portal) for name in ("hanako", "ken", "sato", "nobody", "staff")}
    await clients["hanako"].login("hanako@example.jp")
    await clients["ken"].login("ken@example.jp")
    await clients["sato"].login("sato@example.jp")
    yield clients
    for client in clients.values():
        await client.http.close()


async def _report(db: Database, world: World) -> int:
    async with transaction(db.sessions) as s:
        report = await absences.submit(
            s, absences.ReportDraft(world.taro, date(2026, 12, 7), ReportKind.ABSENCE,
                                    ReportReason.ILLNESS, memo="秘密のメモ"),
            channel=Channel.WEB, guardian_id=world.hanako, now=NOW)
        return report.id


async def _family_event(db: Database, world: World) -> int:
    async with transaction(db.sessions) as s:
        event = FamilyEvent(child_id=world.taro, created_by=world.hanako, title="家族旅行ZQX",
                            starts_at=datetime(2026, 12, 7, 0, 0, tzinfo=UTC),
                            ends_at=datetime(2026, 12, 8, 0, 0, tzinfo=UTC), all_day=True,
                            created_at=NOW)
        s.add(event)
        await s.flush()
        return event.id


async def test_other_familys_child_pages_are_not_found(
    world: World, people: dict[str, Client]
) -> None:
    sato = people["sato"]
    for path in ("", "/calendar", "/absence/new", "/surveys", "/profile", "/icon",
                 "/family/new", "/calendar?m=2026-12"):
        status, _html = await sato.get(f"/c/{world.taro}{path}")
        assert status == 404, path
    status, _html = await sato.get(f"/c/{world.jiro}")
    assert status == 200
    status, _html = await people["nobody"].get(f"/c/{world.taro}")
    assert status == 302  # to the login page


async def test_reports_of_another_family_cannot_be_read_or_changed(
    sqlite_db: Database, world: World, people: dict[str, Client]
) -> None:
    rid = await _report(sqlite_db, world)
    sato = people["sato"]
    change = {"day": "2026-12-08", "kind": "absence", "reason": "other"}
    for child in (world.taro, world.jiro):  # their own child id with a guessed report id too
        assert (await sato.get(f"/c/{child}/absence/{rid}"))[0] == 404
        assert await sato.post(f"/c/{child}/absence/{rid}", change) == 404
        assert await sato.post(f"/c/{child}/absence/{rid}/cancel", {}) == 404
    assert await sato.post(f"/c/{world.taro}/absence/new", change) == 404
    status, html = await sato.get(f"/c/{world.jiro}/calendar")
    assert status == 200 and "秘密のメモ" not in html
    async with sqlite_db.sessions() as s:
        report = await s.get_one(AbsenceReport, rid)
        assert (report.status, report.day) == ("active", date(2026, 12, 7))
        assert await s.scalar(select(AbsenceReport).where(
            AbsenceReport.child_id == world.taro, AbsenceReport.day == date(2026, 12, 8))) is None


async def test_family_events_private_to_the_childs_guardians(
    sqlite_db: Database, world: World, people: dict[str, Client], portal: Portal
) -> None:
    fid = await _family_event(sqlite_db, world)
    assert "家族旅行ZQX" in (await people["ken"].get(f"/c/{world.taro}/calendar?m=2026-12"))[1]
    sato = people["sato"]
    assert "家族旅行ZQX" not in (await sato.get(f"/c/{world.jiro}/calendar?m=2026-12"))[1]
    assert await sato.post(f"/c/{world.jiro}/family/{fid}/delete", {}) == 404
    assert await sato.post(f"/c/{world.taro}/family/{fid}/delete", {}) == 404
    async with sqlite_db.sessions() as s:
        assert (await s.get_one(FamilyEvent, fid)).deleted_at is None
    # Nor in the other family's calendar feed.
    assert await sato.post("/settings/calendar", {}) == 302
    async with sqlite_db.sessions() as s:
        token = (await s.get_one(Guardian, world.sato)).calendar_token
    status, ics = await sato.get(f"/ical/{token}.ics")
    assert status == 200 and "BEGIN:VCALENDAR" in ics and "家族旅行ZQX" not in ics


async def test_family_events_never_in_staff_views(
    sqlite_db: Database, world: World, people: dict[str, Client]
) -> None:
    await _family_event(sqlite_db, world)
    await _report(sqlite_db, world)
    async with transaction(sqlite_db.sessions) as s:
        await staff_svc.create_staff(s, world.school, name="校長", email="admin@school.jp",
                                     role="admin", password="admin-pass-123", class_ids=[])
        room = await s.get_one(Classroom, world.class1)
        grid = await register.month_register(s, room, 2026, 12, until=date(2026, 12, 31))
        day = await register.day_reports(s, world.class1, date(2026, 12, 7))
    assert "家族旅行ZQX" not in register.register_csv(grid, room.name).decode("utf-8-sig")
    assert all("家族旅行ZQX" not in repr(entry) for entry in day)
    staff = people["staff"]
    await staff.login("admin@school.jp", "admin-pass-123", "/staff/login", "email")
    c = world.class1
    for path in ("/staff/", f"/staff/classes/{c}/today?day=2026-12-07",
                 f"/staff/classes/{c}/month?ym=2026-12", f"/staff/classes/{c}/month.csv",
                 f"/staff/classes/{c}/guardians", "/staff/events"):
        status, html = await staff.get(path)
        assert status == 200, path
        assert "家族旅行ZQX" not in html, path


async def test_staff_pages_refuse_guardians(world: World, people: dict[str, Client]) -> None:
    for path in ("/staff/", f"/staff/classes/{world.class1}/today", "/staff/events"):
        status, _html = await people["hanako"].get(path)
        assert status == 403, path
        status, _html = await people["nobody"].get(path)
        assert status == 302, path


async def test_survey_answers_only_by_own_primary(
    sqlite_db: Database, world: World, people: dict[str, Client]
) -> None:
    answer = {f"q{world.question}": "2"}
    assert await people["sato"].post(f"/c/{world.taro}/surveys/{world.survey}", answer) == 404
    assert await people["ken"].post(f"/c/{world.taro}/surveys/{world.survey}", answer) == 403
    async with sqlite_db.sessions() as s:
        assert await s.scalar(select(SurveyResponse)) is None
    assert await people["hanako"].post(f"/c/{world.taro}/surveys/{world.survey}", answer) == 302
    status, html = await people["sato"].get(f"/c/{world.jiro}/surveys")
    assert status == 200 and " checked" not in html  # Jiro has no answer; Taro's is not his


async def test_primary_handover_swaps_positions(
    sqlite_db: Database, world: World, people: dict[str, Client]
) -> None:
    assert await people["ken"].post(f"/c/{world.taro}/primary",
                                    {"guardian_id": str(world.ken)}) == 403
    assert await people["sato"].post(f"/c/{world.taro}/primary",
                                     {"guardian_id": str(world.sato)}) == 404
    assert await people["hanako"].post(f"/c/{world.taro}/primary",
                                       {"guardian_id": str(world.sato)}) == 404
    assert await people["hanako"].post(f"/c/{world.taro}/primary",
                                       {"guardian_id": str(world.ken)}) == 302
    async with sqlite_db.sessions() as s:
        rows = {g.guardian_id: g.position for g in await s.scalars(
            select(Guardianship).where(Guardianship.child_id == world.taro))}
    assert rows == {world.ken: 1, world.hanako: 2}
    # Now Ken answers the survey and Hanako cannot.
    answer = {f"q{world.question}": "1"}
    assert await people["hanako"].post(f"/c/{world.taro}/surveys/{world.survey}", answer) == 403
    assert await people["ken"].post(f"/c/{world.taro}/surveys/{world.survey}", answer) == 302


async def test_posts_without_csrf_token_are_refused(
    world: World, people: dict[str, Client]
) -> None:
    hanako = people["hanako"]
    data = {"day": "2026-12-07", "kind": "absence", "reason": "illness"}
    assert await hanako.post(f"/c/{world.taro}/absence/new", data, csrf=False) == 403
    assert await hanako.post(f"/c/{world.taro}/absence/new",
                             {**data, "csrf_token": "forged"}, csrf=False) == 403
    assert await people["nobody"].post(
        "/login", {"identifier": "hanako@example.jp", "password": PASSWORD}, csrf=False) == 403


async def test_login_attempts_are_rate_limited(world: World, portal: Portal) -> None:
    client = Client(portal)
    try:
        statuses = [await client.post("/login", {"identifier": "hanako@example.jp",
                                                 "password": "wrong"}) for _ in range(11)]
        assert statuses[:9] == [401] * 9 and statuses[9:] == [429, 429]  # the 10th locks
        # Even the right password waits out the window.
        assert await client.post("/login", {"identifier": "hanako@example.jp",
                                            "password": PASSWORD}) == 429
        portal.clock.advance(timedelta(minutes=16))
        assert await client.post("/login", {"identifier": "hanako@example.jp",
                                            "password": PASSWORD}) == 302
    finally:
        await client.http.close()


async def test_session_cookie_flags_and_rotation(world: World, portal: Portal) -> None:
    client = Client(portal)
    try:
        async with client.http.get(portal.base_url + "/login") as resp:
            before = resp.cookies["renraku_session"]
            assert before["httponly"] and before["samesite"] == "Lax"
            assert not before["secure"]  # plain http in tests; https sets Secure
        secret = portal.app.settings.secret_key.encode()
        old = unsign(secret, before.value)
        await client.login("hanako@example.jp")
        after = client.http.cookie_jar.filter_cookies(URL(portal.base_url))["renraku_session"]
        new = unsign(secret, after.value)
        assert old and new and new["gid"] == world.hanako
        assert new["sid"] != old["sid"] and new["csrf"] != old["csrf"]  # no fixation
    finally:
        await client.http.close()
