"""Who on the staff opened or exported which class's register and contacts, for the admin."""

from __future__ import annotations

from sqlalchemy import select

from models import AuditEntry, Staff
from tests.db_fixtures import Database
from tests.security_world import SIGN_IN, build_security_world
from tests.test_guardian_authz import Client
from tests.web_fixtures import Portal


async def _as(portal: Portal, role: str, password: str) -> Client:
    client = Client(portal)
    path, ident = SIGN_IN[role]  # type: ignore[misc]
    await client.login(ident, password, path, "email")
    return client


async def test_views_and_exports_are_logged_for_the_schools_admin(
    sqlite_db: Database, portal: Portal
) -> None:
    sw = await build_security_world(sqlite_db)
    w = sw.world
    teacher = await _as(portal, "teacher", sw.password("teacher"))
    admin = await _as(portal, "admin", sw.password("admin"))
    other_admin = await _as(portal, "other_admin", sw.password("other_admin"))
    try:
        room = f"/staff/classes/{w.class1}"
        for path in (f"{room}/today", f"{room}/month?ym=2026-12", f"{room}/guardians"):
            assert (await teacher.get(path))[0] == 200
        async with teacher.http.get(f"{teacher.base}{room}/month.csv?ym=2026-12") as resp:
            assert resp.status == 200
            teacher_id = await _staff_id(sqlite_db, "teacher1@a.test")
            assert f"-by-{teacher_id}.csv" in resp.headers["Content-Disposition"]
            first = (await resp.text()).lstrip("\ufeff").splitlines()[0]
            assert "出力: teacher1 <teacher1@a.test> 2026-12-04 09:30" in first
        async with admin.http.get(f"{admin.base}/staff/broadcasts/{sw.campaign}/results.csv"
                                  ) as resp:
            admin_id = await _staff_id(sqlite_db, "admin@a.test")
            assert f"-by-{admin_id}-" in resp.headers["Content-Disposition"]

        status, page = await admin.get("/staff/audit")
        assert status == 200
        for action in ("register.day", "register.month", "register.csv", "contacts.class",
                       "broadcast.csv"):
            assert f'data-action="{action}"' in page, action
        assert "teacher1 &lt;teacher1@a.test&gt;" in page and "1年1組" in page
        assert "家庭の連絡先を開いた" in page  # labels in the admin's language
        status, mine = await admin.get(f"/staff/audit?staff={teacher_id}")
        assert mine.count("<tr data-action=") == 4
        # Another school's admin sees none of it; a teacher cannot open the log.
        status, theirs = await other_admin.get("/staff/audit")
        assert status == 200 and "data-action=" not in theirs
        assert (await teacher.get("/staff/audit"))[0] == 403
    finally:
        for c in (teacher, admin, other_admin):
            await c.http.close()
    async with sqlite_db.sessions() as s:
        rows = list(await s.scalars(select(AuditEntry).where(
            AuditEntry.staff_id == teacher_id).order_by(AuditEntry.id)))
    assert [r.action for r in rows] == ["register.day", "register.month", "contacts.class",
                                        "register.csv"]
    assert rows[0].class_id == w.class1 and rows[1].detail == "2026-12"


async def _staff_id(db: Database, email: str) -> int:
    async with db.sessions() as s:
        found = await s.scalar(select(Staff.id).where(Staff.email == email))
    assert found is not None
    return found
