"""Staff-only records stay with the staff: a staff calendar entry is on no family page,
feed or export; notes about a child are for the child's teachers, nurse, principal and
admin only, never another class's teacher or a guardian; an edit keeps every version."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from models import ChildNoteVersion, Guardian, Staff
from models.db import transaction
from renraku.services import events
from tests.db_fixtures import Database
from tests.staff_fixtures import PORTAL_NOW, StaffPortal
from tests.staffroom_world import PASSWORD, build


async def test_staff_entry_is_on_no_family_page_feed_or_export(
    staff_portal: StaffPortal, sqlite_db: Database, browser: Any
) -> None:
    w = await build(sqlite_db.sessions)
    async with transaction(sqlite_db.sessions) as s:
        start = datetime(2026, 12, 8, 6, 0, tzinfo=UTC)
        await events.create_event(s, w.school, events.EventDraft("学芸会", start, start),
                                  w.staff["admin"], PORTAL_NOW)
        guardian = await s.scalar(select(Guardian).where(Guardian.email == w.guardian_email))
        assert guardian is not None
        guardian.calendar_token = "feed-token-baba-123456"
    base = await staff_portal.base_url()
    teacher = await staff_portal.browser_login_staff(browser, "mori@sakura.test", PASSWORD)
    await teacher.goto(f"{base}/staff/staff-calendar")
    await teacher.fill("#title", "職員会議(秘)")
    await teacher.fill("#day", "2026-12-08")
    await teacher.fill("#start", "16:00")
    await teacher.fill("#end", "17:30")
    await teacher.fill("#place", "職員室")
    await teacher.click("#staff-entry-form button[type=submit]")
    await teacher.wait_for_selector("#staff-entries td:has-text('職員会議(秘)')")
    # Other staff see it on the staff calendar
    kato = await staff_portal.browser_login_staff(browser, "kato@sakura.test", PASSWORD)
    await kato.goto(f"{base}/staff/staff-calendar")
    assert "職員会議(秘)" in await kato.inner_text("#staff-entries")

    family = await staff_portal.browser_login_guardian(browser, w.guardian_email)
    pages = ["/", "/home", f"/c/{w.baba}", f"/c/{w.baba}/calendar?m=2026-12",
             f"/c/{w.baba}/calendar?m=2026-12&view=list", f"/c/{w.baba}/surveys", "/settings"]
    for path in pages:
        response = await family.goto(f"{base}{path}")
        assert response is not None and response.status == 200, path
        html = await family.content()
        assert "職員会議" not in html and "職員室" not in html, path
    await family.goto(f"{base}/c/{w.baba}/calendar?m=2026-12")
    assert "学芸会" in await family.content()  # the family calendar does show school events
    feed = await family.request.get(f"{base}/ical/feed-token-baba-123456.ics")
    body = await feed.text()
    assert feed.status == 200 and "学芸会" in body and "職員会議" not in body
    # Nor may a family reach the staff calendar itself
    response = await family.goto(f"{base}/staff/staff-calendar")
    assert response is not None and response.status == 403


async def test_child_notes_for_the_childs_staff_only_with_history(
    staff_portal: StaffPortal, sqlite_db: Database, browser: Any
) -> None:
    w = await build(sqlite_db.sessions)
    base = await staff_portal.base_url()
    notes_url = f"{base}/staff/children/{w.baba}/notes"
    teacher = await staff_portal.browser_login_staff(browser, "mori@sakura.test", PASSWORD)
    await teacher.goto(f"{base}/staff/classes/{w.mine}/today")
    await teacher.click(f"tr[data-child='{w.baba}'] a.notes-link")
    await teacher.wait_for_url(notes_url)
    await teacher.fill("#body", "卵アレルギー。お迎えは祖母のみ可。")
    await teacher.click("#note-form button[type=submit]")
    await teacher.wait_for_selector(".child-note .note-body:has-text('卵アレルギー')")
    # The author changes it: the text changes, the first version stays
    await teacher.fill(".note-edit textarea", "卵・乳アレルギー。お迎えは祖母のみ可。")
    await teacher.click(".note-edit button[type=submit]")
    await teacher.wait_for_selector(".child-note .note-body:has-text('卵・乳アレルギー')")
    versions = await teacher.locator(".note-history .version-body").all_text_contents()
    assert versions == ["卵アレルギー。お迎えは祖母のみ可。",
                        "卵・乳アレルギー。お迎えは祖母のみ可。"]

    for who in ("admin", "nurse", "principal"):
        page = await staff_portal.browser_login_staff(browser, f"{who}@sakura.test", PASSWORD)
        response = await page.goto(notes_url)
        assert response is not None and response.status == 200, who
        assert "卵・乳アレルギー" in await page.inner_text(".child-note .note-body"), who
        assert await page.locator(".note-edit").count() == (1 if who == "admin" else 0), who
    kato = await staff_portal.browser_login_staff(browser, "kato@sakura.test", PASSWORD)
    response = await kato.goto(notes_url)
    assert response is not None and response.status == 404
    assert "アレルギー" not in await kato.content()
    family = await staff_portal.browser_login_guardian(browser, w.guardian_email)
    response = await family.goto(notes_url)
    assert response is not None and response.status == 403
    for path in (f"/c/{w.baba}", f"/c/{w.baba}/profile"):
        await family.goto(f"{base}{path}")
        assert "アレルギー" not in await family.content(), path
    async with sqlite_db.sessions() as s:
        rows = list(await s.scalars(select(ChildNoteVersion).order_by(ChildNoteVersion.id)))
        mori = await s.get_one(Staff, w.staff["mori"])
    assert [v.staff_id for v in rows] == [mori.id, mori.id] and rows[0].at <= rows[1].at
