"""Campaign bookkeeping in the database (both backends): launch, claims, retries, tally, CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from models import CampaignHousehold, EmailDelivery, GuardianPhone
from models.db import transaction
from models.enums import AttemptStatus as S
from models.enums import CampaignStatus
from renraku.services import broadcast as bc
from renraku.settings import Settings
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school

NOW = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
SETTINGS = Settings(dialer_max_attempts=3, dialer_retry_delay_s=300)
YESNO = [
    {
        "text": {"ja": "参加しますか", "en": "Will you come?"},
        "options": [{"digit": 1, "label": {"ja": "はい"}}, {"digit": 2, "label": {"ja": "いいえ"}}],
    }
]


async def _school(session):  # type: ignore[no-untyped-def]
    school = await make_school(session)
    c1 = await make_class(session, school, "1年1組", 1)
    c2 = await make_class(session, school, "2年1組", 2)
    a = await make_child(session, school, "佐藤 一郎", classroom=c1)
    b = await make_child(session, school, "佐藤 二郎", classroom=c2)
    c = await make_child(session, school, "鈴木 花", classroom=c1)
    mum = await make_guardian(session, "佐藤母", "090-1111-0001", "en", (a, b), "mum@example.jp")
    await make_guardian(session, "佐藤父", "090-1111-0002", "ja", (a,))
    # The Suzukis: a landline shared by both guardians
    s1 = await make_guardian(session, "鈴木母", "03-1111-2222", "ja", (c,))
    s2 = await make_guardian(session, "鈴木祖母", None, "ja", (c,))
    session.add(GuardianPhone(guardian_id=s2.id, e164="+81311112222", kind="landline"))
    await session.flush()
    return school, (c1, c2), (a, b, c), (mum, s1)


async def test_launch_builds_households_and_emails(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school, _, (a, b, c), _ = await _school(s)
        survey = await bc.create_survey(s, school.id, "遠足", YESNO, NOW)
        pv = await bc.preview(s, SETTINGS, school.id, {"school": True}, voice=True, email=True)
        assert (pv.children, pv.calls, len(pv.emails), pv.survey_households) == (3, 3, 1, 2)
        assert pv.estimated_s > 0
        camp = await bc.create_campaign(
            s, SETTINGS, school_id=school.id, title="遠足", target={"school": True}, now=NOW,
            message={"ja": "明日は遠足です"}, email=True, survey_id=survey.id,
        )
        await bc.launch(s, SETTINGS, camp, NOW)
        assert camp.status == CampaignStatus.RUNNING
    async with db.sessions() as s:
        hh = {h.phone_e164: h for h in await s.scalars(select(CampaignHousehold))}
        assert set(hh) == {"+819011110001", "+819011110002", "+81311112222"}
        assert hh["+819011110001"].survey and hh["+819011110001"].language == "en"
        assert sorted(hh["+819011110001"].child_ids) == sorted([a.id, b.id])
        assert not hh["+819011110002"].survey
        assert hh["+81311112222"].survey and hh["+81311112222"].child_ids == [c.id]
        mails = list(await s.scalars(select(EmailDelivery)))
        assert [m.address for m in mails] == ["mum@example.jp"] and len(mails[0].token) >= 24


async def test_targets_grades_classes_children(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school, (c1, _), (a, b, c), _ = await _school(s)
        ids = lambda rows: sorted(x.id for x in rows)  # noqa: E731
        assert ids(await bc.target_children(s, school.id, {"grades": [2]})) == [b.id]
        assert ids(await bc.target_children(s, school.id, {"classes": [c1.id]})) == [a.id, c.id]
        assert ids(await bc.target_children(s, school.id, {"children": [c.id]})) == [c.id]


async def _launched(db: Database, survey: bool = True):  # type: ignore[no-untyped-def]
    async with transaction(db.sessions) as s:
        school, _, children, _ = await _school(s)
        sid = (await bc.create_survey(s, school.id, "q", YESNO, NOW)).id if survey else None
        camp = await bc.create_campaign(
            s, SETTINGS, school_id=school.id, title="t", target={"school": True}, now=NOW,
            message={"ja": "お知らせ"}, survey_id=sid,
        )
        await bc.launch(s, SETTINGS, camp, NOW)
        return camp, children


async def test_claim_once_retry_then_final(db: Database) -> None:
    camp, _ = await _launched(db)
    async with transaction(db.sessions) as s:
        due = await bc.due_households(s, camp.id, NOW, 10)
        assert len(due) == 3
        first = await bc.start_attempt(s, due[0].id, NOW)
        assert first is not None and first.attempt_no == 1
        # A second claim of the same household (another dialer, a restart) gets nothing
        assert await bc.start_attempt(s, due[0].id, NOW) is None
        assert await bc.finish_attempt(s, SETTINGS, first.id, S.BUSY, NOW, cause=17)
        assert not await bc.finish_attempt(s, SETTINGS, first.id, S.FAILED, NOW)  # first wins
        hid = due[0].id
    async with transaction(db.sessions) as s:
        assert hid not in [h.id for h in await bc.due_households(s, camp.id, NOW, 10)]
        later = NOW + timedelta(seconds=300)
        assert hid in [h.id for h in await bc.due_households(s, camp.id, later, 10)]
        p = await bc.progress(s, camp.id)
        assert p.counts["retrying"] == 1 and p.counts["queued"] == 2
        second = await bc.start_attempt(s, hid, later)
        assert second is not None and second.attempt_no == 2
        await bc.mark_answered(s, second.id, later)
        await bc.mark_message_completed(s, second.id)
        second = await s.get(type(second), second.id, populate_existing=True)
        assert bc.reconciled_outcome(second) == S.COMPLETED
        assert await bc.finish_attempt(s, SETTINGS, second.id, S.COMPLETED, later)
        h = await s.get(CampaignHousehold, hid)
        assert (h.status, h.attempts, h.next_attempt_at) == (S.COMPLETED, 2, None)


async def test_three_attempts_then_gives_up_and_campaign_completes(db: Database) -> None:
    camp, _ = await _launched(db, survey=False)
    t = NOW
    for n in range(3):
        async with transaction(db.sessions) as s:
            for h in await bc.due_households(s, camp.id, t, 10):
                a = await bc.start_attempt(s, h.id, t)
                assert a is not None and a.attempt_no == n + 1
                await bc.finish_attempt(s, SETTINGS, a.id, S.NO_ANSWER, t, cause=19)
        t += timedelta(seconds=300)
    async with transaction(db.sessions) as s:
        assert await bc.due_households(s, camp.id, t + timedelta(days=1), 10) == []
        p = await bc.progress(s, camp.id)
        assert p.counts["no_answer"] == 3 and p.percent == 100
        c = await s.get(type(camp), camp.id)
        assert await bc.finish_campaign_if_done(s, c, t)
        assert c.status == CampaignStatus.COMPLETED


async def test_answers_written_per_child_and_tally_csv(db: Database) -> None:
    camp, (a, b, c) = await _launched(db)
    async with transaction(db.sessions) as s:
        q = (await bc.survey_questions(s, camp.survey_id))[0]
        assert await bc.record_answer(s, question_id=q.id, digit=7, child_ids=[a.id],
                                      channel="phone", now=NOW) is None
        await bc.record_answer(s, question_id=q.id, digit=1, child_ids=[a.id, b.id],
                               channel="phone", now=NOW)
        await bc.record_answer(s, question_id=q.id, digit=2, child_ids=[c.id],
                               channel="web", now=NOW)
        await bc.record_answer(s, question_id=q.id, digit=1, child_ids=[c.id],
                               channel="phone", now=NOW)  # changed their mind
        t = await bc.tally(s, camp.survey_id)
        assert [(o.digit, o.count) for o in t[0].options] == [(1, 3), (2, 0)]
        text = await bc.results_csv(s, camp.id)
        assert text.splitlines()[0].endswith("Q1")
        assert len(text.splitlines()) == 4


async def test_pause_resume_cancel(db: Database) -> None:
    camp, _ = await _launched(db)
    async with transaction(db.sessions) as s:
        assert (await bc.set_state(s, camp.id, "pause", NOW)).status == CampaignStatus.PAUSED
        assert await bc.runnable_campaigns(s, NOW) == []
        assert (await bc.set_state(s, camp.id, "resume", NOW)).status == CampaignStatus.RUNNING
        assert (await bc.set_state(s, camp.id, "cancel", NOW)).status == CampaignStatus.CANCELLED
        try:
            await bc.set_state(s, camp.id, "resume", NOW)
        except bc.CampaignError:
            pass
        else:
            raise AssertionError("a cancelled campaign cannot resume")


async def test_scheduled_campaign_waits(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school, _, _, _ = await _school(s)
        camp = await bc.create_campaign(
            s, SETTINGS, school_id=school.id, title="t", target={"school": True}, now=NOW,
            message={"ja": "x"}, scheduled_at=NOW + timedelta(hours=1),
        )
        await bc.launch(s, SETTINGS, camp, NOW)
        assert camp.status == CampaignStatus.SCHEDULED
        assert await bc.runnable_campaigns(s, NOW) == []
        assert [c.id for c in await bc.runnable_campaigns(s, NOW + timedelta(hours=1))] == [
            camp.id
        ]
