"""Survey deadlines on every channel: the teacher's page, the guardian's web page (Chromium),
the email and its link (real SMTP), the phone keypad (real Asterisk); questions locked once
answered."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect
from sqlalchemy import select, update

from models import Campaign, Survey, SurveyResponse
from models.db import transaction
from renraku.app import App
from renraku.clock import FakeClock
from renraku.services import broadcast as bc
from renraku.services import broadcast_mail as bm
from renraku.services import staff as staff_svc
from renraku.services import surveys
from renraku.settings import Settings
from tests.asterisk_harness import PhoneLines
from tests.db_fixtures import Database
from tests.factories import make_child, make_guardian, make_school
from tests.test_broadcast_asterisk import _app, _campaign, _route, dial_until_done
from tests.test_broadcast_mail import YESNO
from tests.web_fixtures import Mailbox, Portal
from tests.web_world import PASSWORD, build_world

NOW = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)  # Friday 10:00 in Tokyo


async def test_email_says_deadline_link_refuses_after_and_questions_lock(
    sqlite_db: Database, smtp_server: Mailbox
) -> None:
    settings = Settings(smtp_port=smtp_server.port, public_url="http://school.test")
    clock = FakeClock(NOW, frozen=True)
    app = App(settings, clock, sqlite_db.engine, sqlite_db.sessions)
    closes = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)  # 18:00 in Tokyo
    async with transaction(app.sessions) as s:
        school = await make_school(s)
        kid = await make_child(s, school)
        await make_guardian(s, "Mum", "090-2222-0001", "en", (kid,), "mum@example.jp")
        survey = await bc.create_survey(s, school.id, "遠足", YESNO, NOW, closes_at=closes)
        camp = await bc.create_campaign(
            s, settings, school_id=school.id, title="遠足", target={"school": True}, now=NOW,
            message={"ja": "明日は遠足です"}, voice=False, email=True, survey_id=survey.id)
        await bc.launch(s, settings, camp, NOW)
        spare = await bc.create_survey(s, school.id, "未回答", YESNO, NOW)
    assert await bm.send_due_emails(app, camp) == 1
    text = Mailbox.text(await smtp_server.wait_for("mum@example.jp"))
    assert "Answers are accepted until 2026-12-04 18:00 (JST)." in text
    token = re.search(r"http://school\.test/s/(\S+)", text)
    assert token is not None
    async with transaction(app.sessions) as s:
        q = (await bc.survey_questions(s, survey.id))[0]
        link = await bm.answer_by_link(s, token.group(1), {q.id: 1}, clock.now())
        assert link.closes_at == closes and link.timezone == "Asia/Tokyo"
        # Answered: the questions are locked; the unanswered survey can still change.
        survey = await s.get_one(Survey, survey.id)
        with pytest.raises(surveys.SurveyAnswered):
            await surveys.replace_questions(s, survey, YESNO, clock.now())
        spare = await s.get_one(Survey, spare.id)
        await surveys.replace_questions(s, spare, [{**YESNO[0], "text": {"ja": "新しい質問"}}],
                                        clock.now())
    async with app.sessions() as s:
        assert [q.text["ja"] for q in await bc.survey_questions(s, spare.id)] == ["新しい質問"]
    clock.set(closes)  # the deadline itself: closed
    async with transaction(app.sessions) as s:
        with pytest.raises(bm.LinkError) as err:
            await bm.answer_by_link(s, token.group(1), {q.id: 2}, clock.now())
        assert err.value.kind == "closed" and err.value.closes_at == closes
        with pytest.raises(surveys.SurveyClosed):  # every channel goes through here
            await bc.record_answer(s, question_id=q.id, digit=2, child_ids=[kid.id],
                                   channel="phone", now=clock.now())
        with pytest.raises(surveys.SurveyClosed):  # final: not reopened
            surveys.set_deadline(await s.get_one(Survey, survey.id), None, clock.now())
    async with app.sessions() as s:
        tally = await bc.tally(s, survey.id)
        assert [(o.digit, o.count) for o in tally[0].options] == [(1, 1), (2, 0)]


@pytest.mark.browser
async def test_teacher_sets_deadline_guardian_answers_then_refused(
    browser_portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    async with transaction(sqlite_db.sessions) as s:
        await staff_svc.create_staff(s, world.school, name="教頭", email="vp@x.jp", role="admin",
                                     password="admin-pass-1", class_ids=[])
        cid = await s.scalar(select(Campaign.id).where(Campaign.survey_id == world.survey))
    staff = await browser_portal.page()
    await browser_portal.login_staff(staff, "vp@x.jp", "admin-pass-1")
    await staff.goto(f"/staff/broadcasts/{cid}")
    await staff.click("#survey-edit")
    # A deadline in the past is refused with a clear message; then 12:00 today.
    await staff.fill("#closes_at", "2026-12-04T09:00")
    await staff.click("#deadline-form button[value=deadline]")
    await expect(staff.locator("#survey-error")).to_contain_text("今すぐ締め切る")
    await staff.fill("#closes_at", "2026-12-04T12:00")
    await staff.click("#deadline-form button[value=deadline]")
    await expect(staff.locator(".flash.ok")).to_be_visible()
    # Nobody answered yet: the question may still change.
    await staff.fill("#q1_text", "面談を希望しますか（12月）")
    await staff.click("#questions-form button[value=questions]")
    await expect(staff.locator(".flash.ok")).to_contain_text("質問を変更しました")
    # The guardian sees the deadline and answers.
    family = await browser_portal.page()
    await browser_portal.login(family, "hanako@example.jp", PASSWORD)
    await family.goto(f"/c/{world.taro}/surveys")
    card = family.locator(f"section[data-survey='{world.survey}']")
    await expect(card.locator(".survey-deadline")).to_contain_text("12:00")
    await expect(card).to_contain_text("12月")
    await card.locator("input[value='1']").check()
    await card.locator("button[type=submit]").click()
    await expect(family.locator(".flash.ok")).to_be_visible()
    # Answers exist: the questions are locked on the page and refused by the server.
    await staff.reload()
    await expect(staff.locator("#answer-count")).to_contain_text("1")
    await expect(staff.locator("#questions-form button[value=questions]")).to_be_disabled()
    await staff.eval_on_selector("#questions-form fieldset", "e => e.disabled = false")
    await staff.fill("#q1_text", "別の質問")
    await staff.click("#questions-form button[value=questions]")
    await expect(staff.locator("#survey-error")).to_contain_text("すでに回答")
    # The family opens the form before noon and sends it after: refused, clearly.
    await family.goto(f"/c/{world.taro}/surveys")
    browser_portal.clock.set(datetime(2026, 12, 4, 3, 0, 1, tzinfo=UTC))  # 12:00:01
    await card.locator("input[value='2']").check()
    await card.locator("button[type=submit]").click()
    await expect(family.locator(".flash.error")).to_contain_text("締め切りました")
    await expect(card.locator(".survey-closed")).to_be_visible()
    await expect(card.locator("form")).to_have_count(0)
    async with sqlite_db.sessions() as s:
        answers = list(await s.scalars(select(SurveyResponse)))
        survey = await s.get_one(Survey, world.survey)
    assert len(answers) == 1 and survey.closes_at == datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
    # The teacher's tally is marked closed and final (hours later: signed in again, as the
    # staff session's 30 minutes without a request are long over).
    await browser_portal.login_staff(staff, "vp@x.jp", "admin-pass-1")
    await staff.goto(f"/staff/broadcasts/{cid}")
    await expect(staff.locator("#survey-state")).to_contain_text("集計は確定です")


@pytest.mark.asterisk
async def test_phone_says_the_deadline_and_refuses_after_it(
    lines: PhoneLines, sqlite_db: Database
) -> None:
    app = _app(lines, sqlite_db, channels=2)
    _route(lines, app)
    # The open survey's family speaks English, the closed one's Japanese: the sounds
    # they heard tell the calls apart.
    open_cid = await _campaign(app, {"819034100001": "answer:10:1"}, lines,
                               langs={"819034100001": "en"})
    closed_cid = await _campaign(app, {"819034100002": "answer:10:1"}, lines)
    now = app.clock.now()
    async with transaction(app.sessions) as s:
        for cid, closes in ((open_cid, now + timedelta(days=1)),
                            (closed_cid, now - timedelta(minutes=1))):
            sid = await s.scalar(select(Campaign.survey_id).where(Campaign.id == cid))
            await s.execute(update(Survey).where(Survey.id == sid).values(closes_at=closes))
    first_call = len(lines.calls)  # the session's phone lines keep earlier tests' calls
    await dial_until_done(app, lines, open_cid, closed_cid)
    heard = [p for r in lines.calls[first_call:] for p in r.agi.streamed]
    assert "bt/broadcast_survey_deadline-en" in heard
    assert "bt/broadcast_survey_closed-ja" in heard
    assert "bt/broadcast_question-ja" not in heard  # the closed survey asked nothing
    assert "bt/broadcast_survey_closed-en" not in heard
    async with app.sessions() as s:
        totals = {}
        for cid in (open_cid, closed_cid):
            sid = await s.scalar(select(Campaign.survey_id).where(Campaign.id == cid))
            totals[cid] = (await bc.tally(s, sid))[0].total
    assert totals == {open_cid: 1, closed_cid: 0}
