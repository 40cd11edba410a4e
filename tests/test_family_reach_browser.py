"""Phone-only families are not left out, in a real headless Chromium: a class teacher moves a
class event through the staff form, the portal emails the family with an address (real SMTP
sink) and queues one call for the family without, and the event's page shows per change how
many households were emailed, called and reached (in Japanese, then English); the call is
answered and heard through the dialer's own services and the page shows it reached; the
cancellation gets its own row. An important notice shows the same counts on its reads page.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from models import CampaignHousehold, Event
from models.db import transaction
from models.enums import AttemptStatus
from renraku.services import broadcast as bc
from renraku.services import events
from renraku.services import staff as staff_svc
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school
from tests.web_fixtures import PORTAL_NOW, Portal

pytestmark = pytest.mark.browser

TEACHER, PASSWORD = "mori@x.jp", "teacher-pass-1"


@pytest.fixture
async def school(sqlite_db: Database) -> dict[str, int]:
    """3年1組: one family with email, one with only a phone (Spanish). 3年2組: a family with
    email that a 3年1組 event must not count."""
    async with transaction(sqlite_db.sessions) as s:
        school = await make_school(s, "さくら小学校")
        room = await make_class(s, school, "3年1組", grade=3)
        other = await make_class(s, school, "3年2組", grade=3)
        taro = await make_child(s, school, "山田 太郎", "やまだ たろう", room)
        hal = await make_child(s, school, "鈴木 ハル", "すずき はる", room)
        jiro = await make_child(s, school, "佐藤 次郎", "さとう じろう", other)
        await make_guardian(s, "山田 花子", "090-1000-0001", "ja", (taro,), "hanako@example.jp")
        await make_guardian(s, "鈴木 マリア", "090-1000-0002", "es", (hal,))  # no email
        await make_guardian(s, "佐藤 良子", "090-1000-0003", "ja", (jiro,), "sato@example.jp")
        await staff_svc.create_staff(s, school.id, name="担任 森", email=TEACHER,
                                     role="teacher", password=PASSWORD, class_ids=[room.id])
        start = datetime(2026, 12, 11, 0, 0, tzinfo=UTC)  # Friday 09:00 in Tokyo
        visit = await events.create_event(s, school.id, events.EventDraft(
            "授業参観", start, start + timedelta(hours=3), place="3年1組教室",
            class_id=room.id), None, PORTAL_NOW)
    return {"room": room.id, "event": visit.id}


async def _answer_and_hear(portal: Portal) -> None:
    """The phone-only household answers and hears the message to its end: the dialer's and
    the call flow's own services (the Asterisk test places the real call)."""
    now = portal.clock.now()
    async with transaction(portal.app.sessions) as s:
        households = list(await s.scalars(select(CampaignHousehold).where(
            CampaignHousehold.next_attempt_at.is_not(None))))
        assert [h.phone_e164 for h in households] == ["+819010000002"]
        attempt = await bc.start_attempt(s, households[0].id, now)
        assert attempt is not None
        await bc.mark_answered(s, attempt.id, now)
        await bc.mark_message_completed(s, attempt.id)
        assert await bc.finish_attempt(s, portal.app.settings, attempt.id,
                                       AttemptStatus.COMPLETED, now)


async def _expect_counts(page: Any, row: str, emailed: str, called: str, reached: str,
                         unreachable: str = "0") -> None:
    cells = page.locator(f"#event-changes {row}")
    await expect(cells).to_have_count(1)
    await expect(cells.locator("td.emailed")).to_have_text(emailed)
    await expect(cells.locator("td.called")).to_have_text(called)
    await expect(cells.locator("td.reached")).to_have_text(reached)
    await expect(cells.locator("td.unreachable")).to_have_text(unreachable)


async def test_teacher_moves_and_cancels_a_class_event_and_sees_who_was_told(
    browser_portal: Portal, school: dict[str, int]
) -> None:
    portal = browser_portal
    event_id = school["event"]
    page = await portal.page()
    await portal.login_staff(page, TEACHER, PASSWORD)
    await page.click("nav.staff-nav a[href='/staff/events']")
    await expect(page.locator(f"#events tr[data-event='{event_id}'] a.event-reach")
                 ).to_have_count(0)  # nothing told yet: no counts to see
    await page.click(f"#events tr[data-event='{event_id}'] a.edit-event")
    await expect(page.locator("#event-changes")).to_have_count(0)
    await page.fill("#event-form input[name=date]", "2026-12-18")
    await page.click("#event-form button[type=submit]")
    await page.wait_for_url("**/staff/events")

    # The portal told the families as it saved: the email family's mail is in the sink
    # (and not the other class's), the phone-only family's call is queued.
    mail = await portal.mailbox.wait_for("hanako@example.jp")
    assert "授業参観" in str(mail["Subject"])
    assert portal.mailbox.to("sato@example.jp") == []
    await page.click(f"#events tr[data-event='{event_id}'] a.event-reach")
    await expect(page.locator("#event-changes")).to_be_visible()
    await expect(page.locator("#event-changes thead")).to_contain_text(
        "メールした家庭電話した家庭電話で伝わった家庭")
    await expect(page.locator("#event-changes tr.change.changed")).to_contain_text("変更あり")
    await _expect_counts(page, "tr.change.changed", "1", "1", "0 (あと1件発信予定)")

    await _answer_and_hear(portal)
    await page.reload()
    await _expect_counts(page, "tr.change.changed", "1", "1", "1")
    await expect(page.locator("#event-changes span.waiting")).to_have_count(0)

    # Cancelled in the browser: a second row, its own email and call; the first row stays.
    await page.click("#cancel-event button[type=submit]")
    await page.wait_for_url("**/staff/events")
    await portal.mailbox.wait_for("hanako@example.jp", count=2)
    await expect(page.locator(f"#events tr[data-event='{event_id}']")).to_contain_text("中止")
    await page.click(f"#events tr[data-event='{event_id}'] a.event-reach")
    await expect(page.locator("#event-cancelled")).to_be_visible()
    await expect(page.locator("#event-form")).to_have_count(0)
    await expect(page.locator("#event-changes tr.change")).to_have_count(2)
    await expect(page.locator("#event-changes tr.change.cancelled")).to_contain_text("中止")
    await _expect_counts(page, "tr.change.cancelled", "1", "1", "0 (あと1件発信予定)")
    await _expect_counts(page, "tr.change.changed", "1", "1", "1")

    # The same page in English, through the language links.
    await page.click("a[hreflang=en]")
    await expect(page.locator("#event-changes thead")).to_contain_text(
        "Households emailedHouseholds calledReached by the call")
    await expect(page.locator("#event-changes tr.change.cancelled")).to_contain_text(
        "Cancelled")
    await _expect_counts(page, "tr.change.cancelled", "1", "1", "0 (1 still to call)")
    await _expect_counts(page, "tr.change.changed", "1", "1", "1")
    async with portal.app.sessions() as s:
        event = await s.get_one(Event, event_id)
        assert event.status == "cancelled"


async def _post_notice(page: Any, room: int, title: str, body: str, *, important: bool) -> None:
    """Through the staff notices form, to the teacher's class."""
    await page.goto("/staff/notices")
    form = page.locator("#notice-form")
    await form.locator("select[name=target]").select_option(f"class:{room}")
    await form.locator("input[name=title]").fill(title)
    await form.locator("textarea[name=body]").fill(body)
    if important:
        await form.locator("input[name=important]").check()
    await form.locator("button[type=submit]").click()


async def test_teacher_posts_an_important_notice_and_sees_emailed_and_called(
    browser_portal: Portal, school: dict[str, int]
) -> None:
    portal = browser_portal
    page = await portal.page()
    await portal.login_staff(page, TEACHER, PASSWORD)
    await _post_notice(page, school["room"], "学級閉鎖", "明日から2日間、学級閉鎖です。",
                       important=True)
    row = page.locator("#notices tr", has_text="学級閉鎖")
    await expect(row.locator("strong.important")).to_have_text("重要")
    mail = await portal.mailbox.wait_for("hanako@example.jp")
    assert "学級閉鎖" in str(mail["Subject"])
    assert portal.mailbox.to("sato@example.jp") == []
    await row.locator("a.reads-link").click()
    reach = page.locator("#notice-reach")
    await expect(reach.locator("thead")).to_contain_text("メールした家庭電話した家庭")
    await expect(reach.locator("td.emailed")).to_have_text("1")
    await expect(reach.locator("td.called")).to_have_text("1")
    await expect(reach.locator("td.reached")).to_have_text("0 (あと1件発信予定)")
    await expect(reach.locator("td.unreachable")).to_have_text("0")

    # A plain notice calls nobody: its reads page has no such table.
    await _post_notice(page, school["room"], "図書室", "本の返却日です。", important=False)
    plain = page.locator("#notices tr", has_text="図書室")
    await expect(plain.locator("strong.important")).to_have_count(0)
    await plain.locator("a.reads-link").click()
    await expect(page.locator("#read-count")).to_be_visible()
    await expect(page.locator("#notice-reach")).to_have_count(0)
