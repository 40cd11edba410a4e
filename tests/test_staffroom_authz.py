"""Every staff-room route against every kind of person: a guardian, the teacher of another
class, the nurse, the principal, the admin (and the child's own teacher for reference).

Codes: 403 forbidden (role), 404 not found (outside one's scope: existence hidden), 200 page,
303 done (redirect after a POST), 400 refused input, "login" the staff login page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from models import StaffAlert, StaffAttachment
from models.db import transaction
from renraku.services import staffboard, staffnotes
from tests.db_fixtures import Database
from tests.staff_fixtures import StaffPortal
from tests.staffroom_world import DAY, PASSWORD, build

WHO = ("guardian", "kato", "nurse", "principal", "admin", "mori")
NOW = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)


def row(*codes: Any) -> dict[str, Any]:
    return dict(zip(WHO, codes, strict=True))


async def test_every_new_route_for_every_role(staff_portal: StaffPortal,
                                              sqlite_db: Database) -> None:
    w = await build(sqlite_db.sessions)
    async with transaction(sqlite_db.sessions) as s:
        from models import Staff
        mori = await s.get_one(Staff, w.staff["mori"])
        message = await staffboard.post(
            s, staff_portal.app.settings, mori, audience="people", grade=None,
            people=[w.staff["principal"]], subject="私信", body="本文", pinned=False,
            uploads=[staffboard.Upload("a.pdf", b"%PDF-1.4 x")], now=NOW)
        file_id = await s.scalar(select(StaffAttachment.id))
        entry = await staffnotes.add_entry(s, w.school, mori.id, title="会議", starts_at=NOW,
                                           ends_at=NOW, place="", note="", now=NOW)
        note = await staffnotes.add_note(s, w.baba, mori.id, "メモ", NOW)
        alert = StaffAlert(staff_id=w.staff["principal"], kind="did_not_know", child_id=w.baba,
                           created_at=NOW)
        s.add(alert)
    clients: dict[str, TestClient] = {}
    for who in WHO[1:]:
        clients[who] = await staff_portal.client_as_staff(f"{who}@sakura.test", PASSWORD)
    guardian = await staff_portal.client_as_guardian(w.guardian_email)
    guardian.csrf_token = await staff_portal.csrf(guardian, "/settings")  # type: ignore[attr-defined]
    clients["guardian"] = guardian
    anonymous = await staff_portal.client()

    m, c, b, n = w.mine, w.baba, message.id, note.id
    gets = {
        f"/staff/classes/{m}/roll/rows": row(403, 404, 404, 404, 200, 200),
        "/staff/summary": row(403, 403, 403, 200, 200, 403),
        "/staff/summary/stream": row(403, 403, 403, 200, 200, 403),
        "/staff/health": row(403, 403, 200, 200, 200, 403),
        "/staff/health.csv": row(403, 403, 200, 200, 200, 403),
        "/staff/board": row(403, 200, 200, 200, 200, 200),
        "/staff/board/new": row(403, 200, 200, 200, 200, 200),
        f"/staff/board/{b}": row(403, 404, 404, 200, 404, 200),
        f"/staff/board/{b}/files/{file_id}": row(403, 404, 404, 200, 404, 200),
        "/staff/staff-calendar": row(403, 200, 200, 200, 200, 200),
        f"/staff/children/{c}/notes": row(403, 404, 200, 200, 200, 200),
    }
    got: dict[str, dict[str, Any]] = {}
    for path, expected in gets.items():
        got[path] = {}
        for who in WHO:
            async with clients[who].get(path, allow_redirects=False) as r:
                got[path][who] = r.status
        async with anonymous.get(path, allow_redirects=False) as r:
            assert r.status in (302, 303) and "/staff/login" in r.headers["Location"], path
        assert got[path] == expected, path

    day = DAY.isoformat()
    posts: list[tuple[str, dict[str, str], dict[str, Any]]] = [
        (f"/staff/classes/{m}/roll", {"day": day, f"mark-{c}": "absent"},
         row(403, 404, 404, 404, 303, 303)),
        (f"/staff/classes/{m}/followup", {"day": day}, row(403, 404, 404, 404, 303, 303)),
        ("/staff/summary/followup", {}, row(403, 403, 403, 303, 303, 403)),
        ("/staff/summary/settings", {"followup_at": "09:00", "digest_at": "09:30"},
         row(403, 403, 403, 303, 303, 403)),
        ("/staff/health/threshold", {"threshold": "25"}, row(403, 403, 303, 403, 303, 403)),
        ("/staff/board/new", {"audience": "all", "subject": "全体", "body": "本文"},
         row(403, 303, 303, 303, 303, 303)),
        ("/staff/board/prefs", {"email_notice": "1"}, row(403, 303, 303, 303, 303, 303)),
        (f"/staff/board/{b}/pin", {}, row(403, 404, 404, 403, 404, 303)),
        ("/staff/staff-calendar", {"title": "当番", "day": day, "start": "08:00",
                                   "end": "08:30"}, row(403, 303, 303, 303, 303, 303)),
        (f"/staff/children/{c}/notes", {"body": "追記"}, row(403, 404, 303, 303, 303, 303)),
        (f"/staff/children/{c}/notes/{n}", {"body": "変更"}, row(403, 404, 403, 403, 303, 303)),
        (f"/staff/alerts/{alert.id}/read", {"next": "/staff/summary"},
         row(403, 404, 404, 303, 404, 404)),
        # Last: the entry is gone after the first allowed delete (mori's own, then admin's 404)
        (f"/staff/staff-calendar/{entry.id}/delete", {}, row(403, 403, 403, 403, 303, 404)),
    ]
    for path, data, expected in posts:
        got[path] = {}
        for who in WHO:
            r = await staff_portal.post(clients[who], path, data)
            got[path][who] = r.status
        assert got[path] == expected, path
