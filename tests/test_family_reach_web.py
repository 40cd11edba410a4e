"""Staff see, per change, how the families were told: households emailed (real SMTP sink),
called and reached, on the event's page and on an important notice's page."""

from __future__ import annotations

import re

from sqlalchemy import select

from models import CampaignHousehold, ChangeReach, Child, Event, Notice
from models.db import transaction
from models.enums import AttemptStatus
from renraku.services import staff as staff_svc
from tests.db_fixtures import Database
from tests.factories import make_guardian
from tests.test_guardian_authz import Client
from tests.web_fixtures import Portal
from tests.web_world import build_world


def _cells(html: str, row_class: str) -> list[tuple[str, str, str, str]]:
    """(emailed, called, reached, without contact) of each row of this kind, in order."""
    rows = re.findall(rf'<tr class="change {row_class}".*?</tr>', html, re.S)
    return [tuple(re.search(rf'class="{k}">(\d+)', row).group(1)  # type: ignore[union-attr]
                  for k in ("emailed", "called", "reached", "unreachable")) for row in rows]


async def _complete_calls(db: Database) -> None:
    """The simulated household answered and heard it (the Asterisk tests do it for real)."""
    async with transaction(db.sessions) as s:
        for h in await s.scalars(select(CampaignHousehold)):
            h.status, h.next_attempt_at, h.attempts = AttemptStatus.COMPLETED, None, 1


async def test_event_page_counts_per_change_and_important_notice(
    portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    async with transaction(sqlite_db.sessions) as s:
        await staff_svc.create_staff(s, world.school, name="教頭", email="admin@x.jp",
                                     role="admin", password="admin-pass-long-1", class_ids=[])
        newkid = await s.get_one(Child, world.newkid)
        await make_guardian(s, "鈴木 ハル", "03-3500-0009", "es", (newkid,))  # no email
        event_id = await s.scalar(select(Event.id).where(Event.title == "運動会"))
    admin = Client(portal)
    try:
        await admin.login("admin@x.jp", "admin-pass-long-1", "/staff/login", "email")
        form = {"title": "運動会", "class_id": "", "date": "2026-12-12", "start": "09:00",
                "end": "15:00", "place": "校庭", "note": ""}
        assert await admin.post(f"/staff/events/{event_id}/edit", form) == 303
        # Emails as before: every guardian with an address (two households), in the sink
        for address in ("hanako@example.jp", "ken@example.jp", "sato@example.jp"):
            await portal.mailbox.wait_for(address)
        _status, page = await admin.get("/staff/events")
        assert f'href="/staff/events/{event_id}/edit#event-changes"' in page
        status, page = await admin.get(f"/staff/events/{event_id}/edit")
        assert status == 200 and 'id="event-changes"' in page
        assert _cells(page, "changed") == [("2", "1", "0", "0")]
        assert 'class="waiting"' in page  # the call is still to be made
        await _complete_calls(sqlite_db)
        _status, page = await admin.get(f"/staff/events/{event_id}/edit")
        assert _cells(page, "changed") == [("2", "1", "1", "0")]
        assert 'class="waiting"' not in page
        # Cancelled: its own row; the page no longer offers the form
        assert await admin.post(f"/staff/events/{event_id}/cancel", {}) == 303
        _status, page = await admin.get(f"/staff/events/{event_id}/edit")
        assert _cells(page, "cancelled") == [("2", "1", "0", "0")]
        assert _cells(page, "changed") == [("2", "1", "1", "0")]
        assert 'id="event-cancelled"' in page and 'id="event-form"' not in page
        assert await admin.post(f"/staff/events/{event_id}/edit", form) == 400
        # An important notice: emailed and called at once; its page shows the counts
        assert await admin.post("/staff/notices", {
            "target": "school", "title": "臨時休校", "body": "明日は臨時休校です。",
            "important": "1"}) == 303
        mail = await portal.mailbox.wait_for("sato@example.jp", count=3)
        assert "臨時休校" in str(mail["Subject"]) and "重要" in str(mail["Subject"])
        assert await admin.post("/staff/notices", {
            "target": "school", "title": "図書室", "body": "本の返却日です。"}) == 303
        async with sqlite_db.sessions() as s:
            notice_id = await s.scalar(select(Notice.id).where(Notice.title == "臨時休校"))
            plain_id = await s.scalar(select(Notice.id).where(Notice.title == "図書室"))
            told = list(await s.scalars(select(ChangeReach.notice_id).where(
                ChangeReach.notice_id.is_not(None))))
        assert told == [notice_id]  # the plain notice calls nobody
        _status, page = await admin.get("/staff/notices")
        assert page.count('class="important"') == 1
        _status, page = await admin.get(f"/staff/notices/{notice_id}/reads")
        reach = re.search(r'id="notice-reach".*?</table>', page, re.S)
        assert reach is not None
        cells = [re.search(rf'class="{k}">(\d+)', reach.group(0)).group(1)  # type: ignore[union-attr]
                 for k in ("emailed", "called", "reached", "unreachable")]
        assert cells == ["2", "1", "0", "0"]
        _status, page = await admin.get(f"/staff/notices/{plain_id}/reads")
        assert 'id="notice-reach"' not in page
    finally:
        await admin.http.close()
