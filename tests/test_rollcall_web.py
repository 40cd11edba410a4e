"""Morning roll call on the staff portal: pre-filled marks, unexplained absences, the live
summary, follow-ups (button and configured time), "did not know" alerts, the digest."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import select

from models import Campaign, CampaignHousehold, FollowUp, StaffAlert
from models.db import transaction
from renraku.services import followup, morning
from tests.db_fixtures import Database
from tests.staff_fixtures import StaffPortal
from tests.staffroom_world import DAY, PASSWORD, World, build
from tests.web_fixtures import Mailbox

ROW = re.compile(r'<tr class="roll([^"]*)" data-child="(\d+)" data-mark="(\w*)"')


def _rows(html: str) -> dict[int, tuple[str, str]]:
    """child id → (row classes, mark shown) from the roll's rows."""
    return {int(c): (cls.strip(), mark) for cls, c, mark in ROW.findall(html)}


def _use_mail(portal: StaffPortal, box: Mailbox) -> None:
    portal.app.settings = portal.app.settings.replace(smtp_host="127.0.0.1", smtp_port=box.port,
                                                      smtp_from="school@sakura.test")
    box.messages.clear()


async def test_roll_call_prefills_marks_and_highlights_unexplained(
    staff_portal: StaffPortal, sqlite_db: Database
) -> None:
    w = await build(sqlite_db.sessions)
    teacher = await staff_portal.client_as_staff("mori@sakura.test", PASSWORD)
    page = await (await teacher.get(f"/staff/classes/{w.mine}/today")).text()
    rows = _rows(page)
    assert rows[w.aoki] == ("", "absent") and rows[w.chiba] == ("", "late")  # from reports
    assert rows[w.baba] == ("", "") and 'id="roll-table"' in page
    # Marking: absences of reported and unreported children, the rest present
    r = await staff_portal.post(teacher, f"/staff/classes/{w.mine}/roll", {
        "day": DAY.isoformat(), f"mark-{w.aoki}": "absent", f"mark-{w.baba}": "absent",
        f"mark-{w.chiba}": "late", f"mark-{w.doi}": "absent", f"mark-{w.eto}": "present"})
    assert r.status == 303
    rows = _rows(await (await teacher.get(f"/staff/classes/{w.mine}/roll/rows")).text())
    assert {c for c, (cls, _m) in rows.items() if "unexplained" in cls} == {w.baba, w.doi}
    # One mark at a time (what the page's script sends), and a change of mind
    r = await teacher.post(f"/staff/classes/{w.mine}/roll", data={
        "day": DAY.isoformat(), f"mark-{w.doi}": "present"},
        headers={"X-CSRF-Token": teacher.csrf_token, "Accept": "application/json"})
    assert r.status == 200 and (await r.json())["marked"] == 1
    rows = _rows(await (await teacher.get(f"/staff/classes/{w.mine}/roll/rows")).text())
    assert rows[w.doi] == ("", "present") and "unexplained" in rows[w.baba][0]
    # Bad input is refused: another class's child, a mark that does not exist
    for field, value in ((f"mark-{w.other_kid}", "absent"), (f"mark-{w.baba}", "gone")):
        bad = await staff_portal.post(teacher, f"/staff/classes/{w.mine}/roll",
                                      {"day": DAY.isoformat(), field: value})
        assert bad.status == 400


async def test_summary_counts_and_updates_live(staff_portal: StaffPortal,
                                               sqlite_db: Database) -> None:
    w = await build(sqlite_db.sessions)
    teacher = await staff_portal.client_as_staff("mori@sakura.test", PASSWORD)
    principal = await staff_portal.client_as_staff("principal@sakura.test", PASSWORD)
    page = await (await principal.get("/staff/summary")).text()
    mine = re.search(rf'data-class="{w.mine}">(.*?)</tr>', page, re.S)
    assert mine and re.findall(r'class="(\w+)">(\d+)<', mine.group(1)) == [
        ("children", "5"), ("reported", "2"), ("unexplained", "0"),
        ("present", "1"), ("unmarked", "3")]
    stream = await principal.get("/staff/summary/stream")
    assert (await stream.content.readline()).startswith(b"retry:")
    await staff_portal.post(teacher, f"/staff/classes/{w.mine}/roll",
                            {"day": DAY.isoformat(), f"mark-{w.baba}": "absent"})
    async with asyncio.timeout(5):
        while b"event: changed" not in await stream.content.readline():
            pass
    stream.close()
    page = await (await principal.get("/staff/summary")).text()
    mine = re.search(rf'data-class="{w.mine}">(.*?)</tr>', page, re.S)
    assert mine and 'class="unexplained">1<' in mine.group(1)
    assert "has-unexplained" in page


async def test_followup_button_calls_emails_and_runs_once_a_day(
    staff_portal: StaffPortal, sqlite_db: Database, smtp_server: Mailbox
) -> None:
    w = await build(sqlite_db.sessions)
    _use_mail(staff_portal, smtp_server)
    teacher = await staff_portal.client_as_staff("mori@sakura.test", PASSWORD)
    await staff_portal.post(teacher, f"/staff/classes/{w.mine}/roll", {
        "day": DAY.isoformat(), f"mark-{w.aoki}": "absent", f"mark-{w.baba}": "absent",
        f"mark-{w.doi}": "absent", f"mark-{w.eto}": "absent"})
    r = await staff_portal.post(teacher, f"/staff/classes/{w.mine}/followup",
                                {"day": DAY.isoformat()})
    assert r.status == 303
    async with sqlite_db.sessions() as s:
        ups = {f.child_id: f for f in await s.scalars(select(FollowUp))}
        assert {c: f.status for c, f in ups.items()} == {
            w.baba: "calling", w.doi: "emailed", w.eto: "no_contact"}  # 青木 was reported
        campaign = await s.get_one(Campaign, ups[w.baba].campaign_id)
        households = list(await s.scalars(select(CampaignHousehold).where(
            CampaignHousehold.campaign_id == campaign.id).order_by(
            CampaignHousehold.next_attempt_at)))
    assert campaign.flow == "followup" and campaign.status == "running"
    assert [h.phone_e164 for h in households] == [w.baba_mother_phone, "+819020000002"]
    assert households[1].next_attempt_at > households[0].next_attempt_at  # mother first
    assert {h.language for h in households} == {"ja"}  # the primary guardian's language
    mail = await smtp_server.wait_for("doi@example.jp")
    assert "四郎さん" in str(mail["Subject"]) and "/" in Mailbox.text(mail)
    # The follow-up shows in the register; a second press calls nobody again
    rows = await (await teacher.get(f"/staff/classes/{w.mine}/roll/rows")).text()
    assert "家庭に電話しています" in rows and "電話もメールも登録されていません" in rows
    await staff_portal.post(teacher, f"/staff/classes/{w.mine}/followup", {"day": DAY.isoformat()})
    async with sqlite_db.sessions() as s:
        assert len(list(await s.scalars(select(FollowUp)))) == 3
        assert len(list(await s.scalars(select(Campaign)))) == 1
    # The broadcast console does not list follow-up calls
    admin = await staff_portal.client_as_staff("admin@sakura.test", PASSWORD)
    assert f"/staff/broadcasts/{campaign.id}" not in await (
        await admin.get("/staff/broadcasts")).text()


async def test_nobody_is_called_outside_the_calling_window(
    staff_portal: StaffPortal, sqlite_db: Database
) -> None:
    w = await build(sqlite_db.sessions)
    staff_portal.app.clock.set(datetime(2026, 12, 4, 11, 30, tzinfo=UTC))  # 20:30 in Tokyo
    teacher = await staff_portal.client_as_staff("mori@sakura.test", PASSWORD)
    await staff_portal.post(teacher, f"/staff/classes/{w.mine}/roll",
                            {"day": DAY.isoformat(), f"mark-{w.baba}": "absent"})
    await staff_portal.post(teacher, f"/staff/classes/{w.mine}/followup", {"day": DAY.isoformat()})
    page = await (await teacher.get(f"/staff/classes/{w.mine}/today")).text()
    assert "発信可能時間外" in page
    async with sqlite_db.sessions() as s:
        assert list(await s.scalars(select(FollowUp))) == []


async def _started_followup(portal: StaffPortal, w: World) -> FollowUp:
    async with transaction(portal.app.sessions) as s:
        await _mark(s, w, w.baba)
    async with portal.app.sessions() as s:
        from models import School
        school = await s.get_one(School, w.school)
    await followup.start(portal.app, school, DAY)
    async with portal.app.sessions() as s:
        return await s.scalar(select(FollowUp).where(FollowUp.child_id == w.baba))


async def _mark(s, w: World, child: int) -> None:  # type: ignore[no-untyped-def]
    from renraku.services import rollcall

    await rollcall.set_mark(s, child, DAY, "absent", w.staff["mori"], datetime.now(UTC))


async def test_did_not_know_alerts_teacher_and_principal(
    staff_portal: StaffPortal, sqlite_db: Database, smtp_server: Mailbox
) -> None:
    w = await build(sqlite_db.sessions)
    _use_mail(staff_portal, smtp_server)
    up = await _started_followup(staff_portal, w)
    async with transaction(staff_portal.app.sessions) as s:
        assert await followup.record_answer(s, up.campaign_id, "7", None,
                                            staff_portal.app.clock.now()) is None
        answered = await followup.record_answer(s, up.campaign_id, "3", None,
                                                staff_portal.app.clock.now())
        assert answered is not None and answered.answer == "did_not_know"
    await followup.email_alerts(staff_portal.app, up.id)
    async with sqlite_db.sessions() as s:
        alerted = set(await s.scalars(select(StaffAlert.staff_id)))
        campaign = await s.get_one(Campaign, up.campaign_id)
    assert alerted == {w.staff["mori"], w.staff["principal"]}
    assert campaign.status == "completed"  # nobody else is called
    for who in ("mori", "principal"):
        mail = await smtp_server.wait_for(f"{who}@sakura.test")
        assert "馬場 二郎" in str(mail["Subject"])
    assert not smtp_server.to("kato@sakura.test")
    principal = await staff_portal.client_as_staff("principal@sakura.test", PASSWORD)
    page = await (await principal.get("/staff/summary")).text()
    assert "馬場 二郎: 保護者は欠席を把握していませんでした" in page
    alert_id = re.search(r'/staff/alerts/(\d+)/read', page)
    assert alert_id
    r = await staff_portal.post(principal, f"/staff/alerts/{alert_id.group(1)}/read",
                                {"next": "/staff/summary"})
    assert r.status == 303 and r.headers["Location"] == "/staff/summary"
    assert "保護者は欠席を把握" not in await (await principal.get("/staff/summary")).text()
    teacher = await staff_portal.client_as_staff("mori@sakura.test", PASSWORD)
    rows = await (await teacher.get(f"/staff/classes/{w.mine}/roll/rows")).text()
    assert "did-not-know" in rows and "保護者は知らなかった" in rows
    # Another teacher cannot mark someone else's alert read
    kato = await staff_portal.client_as_staff("kato@sakura.test", PASSWORD)
    async with sqlite_db.sessions() as s:
        mori_alert = await s.scalar(select(StaffAlert.id).where(
            StaffAlert.staff_id == w.staff["mori"]))
    assert (await staff_portal.post(kato, f"/staff/alerts/{mori_alert}/read", {})).status == 404


async def test_configured_time_starts_followups_once_and_digest_goes_to_principal(
    staff_portal: StaffPortal, sqlite_db: Database, smtp_server: Mailbox
) -> None:
    from renraku.services.digest import send_digest

    w = await build(sqlite_db.sessions)
    _use_mail(staff_portal, smtp_server)
    app = staff_portal.app
    async with transaction(app.sessions) as s:
        await _mark(s, w, w.baba)
    principal = await staff_portal.client_as_staff("principal@sakura.test", PASSWORD)
    r = await staff_portal.post(principal, "/staff/summary/settings",
                                {"followup_at": "09:40", "digest_at": "09:45"})
    assert r.status == 303
    bad = await staff_portal.post(principal, "/staff/summary/settings", {"followup_at": "9h"})
    assert bad.status == 400
    async with app.sessions() as s:
        cfg = await morning.school_settings(s, w.school)
        assert (cfg.followup_at, cfg.digest_at) == (time(9, 40), time(9, 45))
    app.clock.set(datetime(2026, 12, 4, 0, 39, tzinfo=UTC))  # 09:39 in Tokyo
    await morning.tick(app, send_digest)
    async with app.sessions() as s:
        assert list(await s.scalars(select(FollowUp))) == []
    app.clock.set(datetime(2026, 12, 4, 0, 40, tzinfo=UTC))
    await morning.tick(app, send_digest)
    await morning.tick(app, send_digest)
    async with app.sessions() as s:
        assert [f.child_id for f in await s.scalars(select(FollowUp))] == [w.baba]
        assert len(list(await s.scalars(select(Campaign)))) == 1
    assert not smtp_server.to("principal@sakura.test")
    app.clock.set(datetime(2026, 12, 4, 0, 45, tzinfo=UTC))
    await morning.tick(app, send_digest)
    await morning.tick(app, send_digest)
    digest = await smtp_server.wait_for("principal@sakura.test")
    body = Mailbox.text(digest)
    assert "1年1組: 連絡あり 2 / 未確認の欠席 1 / 出席 1 / 未点呼 2" in body
    assert len(smtp_server.to("principal@sakura.test")) == 1
    # The next day, the day's leftover calls stop: the follow-up is settled unanswered
    app.clock.set(datetime(2026, 12, 5, 0, 0, tzinfo=UTC))
    await morning.tick(app)
    async with app.sessions() as s:
        up = await s.scalar(select(FollowUp))
        campaign = await s.get_one(Campaign, up.campaign_id)
    assert up.status == "unanswered" and campaign.status == "completed"


async def test_roll_call_by_keyboard_updates_the_summary_live(
    staff_portal: StaffPortal, sqlite_db: Database, browser: Any
) -> None:
    from playwright.async_api import expect

    w = await build(sqlite_db.sessions)
    base = await staff_portal.base_url()
    principal = await staff_portal.browser_login_staff(browser, "principal@sakura.test", PASSWORD)
    await principal.goto(f"{base}/staff/summary")
    await expect(principal.locator("#live-status")).to_have_attribute("data-live", "on")
    cell = principal.locator(f"tr[data-class='{w.mine}'] td.unexplained")
    await expect(cell).to_have_text("0")

    teacher = await staff_portal.browser_login_staff(browser, "mori@sakura.test", PASSWORD)
    await teacher.goto(f"{base}/staff/classes/{w.mine}/today")
    row = teacher.locator(f"#roll-rows tr[data-child='{w.baba}']")
    await row.locator("input[value=present]").focus()
    await teacher.keyboard.press("a")  # A: absent, saved at once
    await expect(teacher.locator(f"#roll-rows tr[data-child='{w.baba}']")).to_have_class(
        re.compile(r"\bunexplained\b"))
    await expect(cell).to_have_text("1")  # the principal's page, without a reload
    # The arrow keys move within the child's marks (absent → late) and save too
    await teacher.keyboard.press("ArrowRight")
    await expect(cell).to_have_text("0")
    async with sqlite_db.sessions() as s:
        from models import RollCall
        mark = await s.scalar(select(RollCall.mark).where(RollCall.child_id == w.baba))
    assert mark == "late"
    # Touch-sized targets: each mark is a label at least 36 px tall
    smallest = await teacher.eval_on_selector_all(
        "#roll-rows label.mark",
        "els => Math.min(...els.map(e => e.getBoundingClientRect().height))")
    assert smallest >= 36
