"""Event changes and important notices reach households without email by one call each
(SQLite and PostgreSQL): the campaign, its households and language, the spoken message,
the counts staff see; the email households keep their email and get no call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import select

from models import Campaign, CampaignHousehold, ChangeReach
from models.db import transaction
from models.enums import AttemptStatus, CampaignStatus
from renraku.services import events, family_reach, notices
from renraku.settings import Settings
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school

NOW = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)  # Friday 09:30 in Tokyo
SETTINGS = Settings()


def _collect(sent: list[EmailMessage]) -> Callable[[EmailMessage], Awaitable[None]]:
    async def send(msg: EmailMessage) -> None:
        sent.append(msg)

    return send


async def _school(s):  # type: ignore[no-untyped-def]
    """A class with an email family, a phone-only family with two children and two
    guardians' mobiles (Chinese-speaking primary), and a family with no contact at all."""
    school = await make_school(s)
    room = await make_class(s, school)
    emily = await make_child(s, school, "Emily", "えみりー", room)
    await make_guardian(s, "Emily's mum", "090-2000-0001", "en", (emily,),
                        email="emily@example.com")
    big = await make_child(s, school, "王 大", "わん だー", room)
    small = await make_child(s, school, "王 小", "わん しゃお", room)
    await make_guardian(s, "王 芳", "090-2000-0002", "zh", (big, small))
    await make_guardian(s, "王 伟", "090-2000-0003", "ja", (big, small))
    lone = await make_child(s, school, "孤 独", "こ どく", room)
    await make_guardian(s, "孤 親", None, "ja", (lone,))
    return school, room


async def _calls(s, campaign_id: int) -> list[tuple[str, str, list[int]]]:  # type: ignore[no-untyped-def]
    rows = await s.scalars(select(CampaignHousehold).where(
        CampaignHousehold.campaign_id == campaign_id))
    return [(h.phone_e164, h.language, sorted(h.child_ids)) for h in rows]


async def test_moved_event_emails_and_calls_once_per_household(db: Database) -> None:
    sent: list[EmailMessage] = []
    send = _collect(sent)
    async with transaction(db.sessions) as s:
        school, room = await _school(s)
        start = datetime(2026, 12, 11, 0, 0, tzinfo=UTC)  # Friday 9:00 Tokyo
        event = await events.create_event(s, school.id, events.EventDraft(
            "遠足", start, start + timedelta(hours=3), place="公園", class_id=room.id), None, NOW)
        moved = events.EventDraft("遠足", start + timedelta(days=7, hours=1),
                                  start + timedelta(days=7, hours=4), place="公園",
                                  class_id=room.id)
        await events.change_event(s, event, moved, None, NOW)
        assert await events.notify_pending(s, send, sender="s@x", base_url="http://s", now=NOW,
                                           settings=SETTINGS) == 1
        event_id = event.id
    assert [m["To"] for m in sent] == ["emily@example.com"]
    async with db.sessions() as s:
        reach = await s.scalar(select(ChangeReach))
        assert reach is not None and (reach.emailed, reach.called, reach.unreachable) == (1, 1, 1)
        campaign = await s.get_one(Campaign, reach.campaign_id)
        assert campaign.status == CampaignStatus.RUNNING and campaign.voice
        assert not campaign.email
        # the siblings' household: one call, on the primary guardian's mobile, in Chinese
        assert await _calls(s, campaign.id) == [("+819020000002", "zh", sorted(
            campaign.target["children"]))]
        assert campaign.message["ja"] == (
            "遠足の日時が変更になりました。変更前は12月11日 金曜日、9時からでしたが、"
            "12月18日 金曜日、10時からに変わりました。")
        assert "December 18" in campaign.message["en"] and "10:00" in campaign.message["en"]
        assert "12月18日" in campaign.message["zh"] and "上午10点" in campaign.message["zh"]
        rows = await family_reach.event_changes(s, event_id)
        assert [(r.change.action, r.counts) for r in rows] == [
            ("changed", family_reach.ReachCounts(1, 1, 0, 1, 1))]
        first = campaign.id
    # Cancelled before the family was reached: the waiting call is replaced by the news
    async with transaction(db.sessions) as s:
        event = await s.get_one(events.Event, event_id)
        await events.cancel_event(s, event, None, NOW + timedelta(minutes=5))
        await events.notify_pending(s, send, sender="s@x", base_url="", now=NOW,
                                    settings=SETTINGS)
    async with db.sessions() as s:
        assert (await s.get_one(Campaign, first)).status == CampaignStatus.CANCELLED
        reaches = list(await s.scalars(select(ChangeReach).order_by(ChangeReach.id)))
        assert len(reaches) == 2
        second = await s.get_one(Campaign, reaches[1].campaign_id)
        assert second.message["ja"] == "12月18日 金曜日、10時からの遠足は、中止になりました。"
        assert second.message["es"].endswith("se ha cancelado.")
        assert [c[:2] for c in await _calls(s, second.id)] == [("+819020000002", "zh")]
        # A person heard it: the staff page counts the household as reached
        household = await s.scalar(select(CampaignHousehold).where(
            CampaignHousehold.campaign_id == second.id))
    async with transaction(db.sessions) as s:
        household = await s.get_one(CampaignHousehold, household.id)
        household.status, household.next_attempt_at = AttemptStatus.COMPLETED, None
        household.attempts = 1
    async with db.sessions() as s:
        rows = await family_reach.event_changes(s, event_id)
        assert [(r.change.action, r.counts) for r in rows] == [
            ("cancelled", family_reach.ReachCounts(1, 1, 1, 0, 1)),
            ("changed", family_reach.ReachCounts(1, 0, 0, 0, 1))]  # replaced before dialling
    assert "cancelled" in sent[-1]["Subject"]


async def test_important_notice_emails_and_calls_when_shown(db: Database) -> None:
    sent: list[EmailMessage] = []
    send = _collect(sent)
    async with transaction(db.sessions) as s:
        school, room = await _school(s)
        plain = await notices.create_notice(s, school.id, notices.NoticeDraft(
            "class", "持ち物", "体操服", class_id=room.id), None, NOW)
        later = await notices.create_notice(s, school.id, notices.NoticeDraft(
            "class", "休校", "明日は休校です", class_id=room.id, important=True,
            publish_at=NOW + timedelta(hours=2),
            translations={"zh": {"title": "停课", "body": "明天停课"}}), None, NOW)
        told = await family_reach.notify_important(
            s, SETTINGS, send, sender="s@x", base_url="http://s", now=NOW)
        assert told == 0 and sent == []  # not shown yet; the plain one is never called
        told = await family_reach.notify_important(
            s, SETTINGS, send, sender="s@x", base_url="http://s", now=NOW + timedelta(hours=2))
        assert told == 1
        assert await family_reach.notify_important(
            s, SETTINGS, send, sender="s@x", base_url="", now=NOW + timedelta(hours=3)) == 0
        plain_id, later_id = plain.id, later.id
    assert [m["To"] for m in sent] == ["emily@example.com"]
    assert sent[0]["Subject"].startswith("Important: 休校")
    async with db.sessions() as s:
        assert await family_reach.notice_counts(s, plain_id) is None
        assert await family_reach.notice_counts(s, later_id) == family_reach.ReachCounts(
            1, 1, 0, 1, 1)
        reach = await s.scalar(select(ChangeReach).where(ChangeReach.notice_id == later_id))
        campaign = await s.get_one(Campaign, reach.campaign_id)
        assert campaign.message["zh"] == "重要通知：停课。明天停课"
        assert campaign.message["ja"] == "重要なお知らせです。休校。明日は休校です"
        assert [c[:2] for c in await _calls(s, campaign.id)] == [("+819020000002", "zh")]


async def test_failed_email_tells_the_notice_later_without_a_call_twice(db: Database) -> None:
    async def broken(msg: EmailMessage) -> None:
        raise OSError("SMTP down")

    async def fine(msg: EmailMessage) -> None:
        return None

    async with transaction(db.sessions) as s:
        school, _room = await _school(s)
        await notices.create_notice(s, school.id, notices.NoticeDraft(
            "school", "断水", "本日断水", important=True), None, NOW)
        assert await family_reach.notify_important(
            s, SETTINGS, broken, sender="s@x", base_url="", now=NOW) == 0
        assert list(await s.scalars(select(Campaign))) == []
        assert await family_reach.notify_important(
            s, SETTINGS, fine, sender="s@x", base_url="", now=NOW) == 1
        assert len(list(await s.scalars(select(Campaign)))) == 1


async def test_spoken_change_new_place_or_only_the_end(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school, room = await _school(s)
        start = datetime(2026, 12, 11, 0, 0, tzinfo=UTC)  # Friday 9:00 Tokyo
        event = await events.create_event(s, school.id, events.EventDraft(
            "遠足", start, start + timedelta(hours=3), place="公園", class_id=room.id), None, NOW)
        place = await events.change_event(s, event, events.EventDraft(
            "遠足", start, start + timedelta(hours=3), place="動物園", class_id=room.id),
            None, NOW)
        end = await events.change_event(s, event, events.EventDraft(
            "遠足", start, start + timedelta(hours=5), place="動物園", class_id=room.id),
            None, NOW)
        assert place is not None and end is not None
    assert family_reach.change_message(place, "Asia/Tokyo")["ja"] == (
        "遠足の場所が、動物園に変わりました。日時は12月11日 金曜日、9時からです。")
    assert family_reach.change_message(end, "Asia/Tokyo")["en"] == (
        "There is a change to 遠足, Friday, December 11 at 9:00 AM.")


async def test_calls_that_cannot_be_queued_do_not_send_the_emails_again(db: Database) -> None:
    sent: list[EmailMessage] = []
    send = _collect(sent)
    async with transaction(db.sessions) as s:
        school, room = await _school(s)
        school.call_window_start, school.call_window_end = "20:00", "08:00"  # nothing fits
        start = datetime(2026, 12, 11, 0, 0, tzinfo=UTC)
        event = await events.create_event(s, school.id, events.EventDraft(
            "遠足", start, start + timedelta(hours=3), class_id=room.id), None, NOW)
        await events.cancel_event(s, event, None, NOW)
        await notices.create_notice(s, school.id, notices.NoticeDraft(
            "school", "断水", "本日断水", important=True), None, NOW)
    for _ in range(2):
        async with transaction(db.sessions) as s:
            await events.notify_pending(s, send, sender="s@x", base_url="", now=NOW,
                                        settings=SETTINGS)
            await family_reach.notify_important(s, SETTINGS, send, sender="s@x",
                                                base_url="", now=NOW)
    assert [m["To"] for m in sent] == ["emily@example.com"] * 2  # the change, the notice
    async with db.sessions() as s:
        reaches = list(await s.scalars(select(ChangeReach)))
        assert [(r.campaign_id, r.emailed, r.called, r.unreachable) for r in reaches] == [
            (None, 1, 0, 1), (None, 1, 0, 1)]
        assert list(await s.scalars(select(Campaign))) == []
