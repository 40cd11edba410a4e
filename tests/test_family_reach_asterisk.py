"""Phone-only families hear of a moved or cancelled event through real Asterisk.

The event changes; the family with an email address gets the change email at the real
SMTP sink and no call; the family without one — two children, two guardians' mobiles —
gets exactly one call, on the primary guardian's number, in her language; its simulated
phone answers and hears the change (the flow plays the message spoken from the event's
fields); the staff counts say one household emailed, one called, one reached. A call
queued outside the calling window waits for the morning.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ivr.dialer import Dialer, DialerConfig, PanoramiskPort
from models import Campaign, CampaignHousehold, ChangeReach, Event
from models.db import transaction
from models.enums import AttemptStatus
from renraku.app import App
from renraku.clock import FakeClock
from renraku.services import events, family_reach, mail
from tests.asterisk_harness import PhoneLines
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school, morning_zone
from tests.test_broadcast_asterisk import ToneVoice, _app, _route, _wait_done, dial_until_done
from tests.web_fixtures import Mailbox

pytestmark = pytest.mark.asterisk
TOKYO = ZoneInfo("Asia/Tokyo")


async def _families(app: App, lines: PhoneLines, tz: str,
                    digits: str) -> tuple[int, dict[str, str]]:
    """A class: an email family, a phone-only family (siblings, English-speaking primary
    guardian and a second guardian with her own mobile). Returns the event and numbers."""
    numbers = {"email_family": f"8190{digits}0001", "primary": f"8190{digits}0002",
               "second": f"8190{digits}0003"}
    now = app.clock.now()
    async with transaction(app.sessions) as s:
        school = await make_school(s, f"さくら小 {digits}", timezone=tz)
        room = await make_class(s, school)
        emily = await make_child(s, school, "鈴木 エミ", "すずき えみ", room)
        await make_guardian(s, "鈴木 母", "+" + numbers["email_family"], "ja", (emily,),
                            email=f"suzuki{digits}@example.jp")
        big = await make_child(s, school, "Smith Tom", "すみす とむ", room)
        small = await make_child(s, school, "Smith Amy", "すみす えいみー", room)
        await make_guardian(s, "Jane Smith", "+" + numbers["primary"], "en", (big, small))
        await make_guardian(s, "John Smith", "+" + numbers["second"], "ja", (big, small))
        start = now.replace(microsecond=0) + timedelta(days=7)
        event = await events.create_event(s, school.id, events.EventDraft(
            "Sports day", start, start + timedelta(hours=3), place="Park", class_id=room.id),
            None, now)
        event_id = event.id
    for number in numbers.values():
        await lines.household(number, "answer:0:")
    return event_id, numbers



async def _notify(app: App) -> None:
    async with transaction(app.sessions) as s:
        await events.notify_pending(s, mail.sender(app.settings), sender="school@sakura.test",
                                    base_url="http://school", now=app.clock.now(),
                                    settings=app.settings)


async def _campaign_of_latest(app: App) -> Campaign:
    async with app.sessions() as s:
        reach = await s.scalar(select(ChangeReach).order_by(ChangeReach.id.desc()))
        assert reach is not None and reach.campaign_id is not None
        return await s.get_one(Campaign, reach.campaign_id)


def _heard(lines: PhoneLines, first: int) -> list[str]:
    return [p for r in lines.calls[first:] for p in r.agi.streamed]


async def test_moved_event_email_family_mailed_phone_only_family_called_once(
    lines: PhoneLines, sqlite_db: Database, smtp_server: Mailbox
) -> None:
    smtp_server.messages.clear()
    app = _app(lines, sqlite_db, smtp_host="127.0.0.1", smtp_port=smtp_server.port)
    voice: ToneVoice = _route(lines, app)
    event_id, numbers = await _families(app, lines, morning_zone(app.clock.now()), "6100")
    async with transaction(app.sessions) as s:
        event = await s.get_one(Event, event_id)
        moved = events.EventDraft("Sports day", event.starts_at + timedelta(days=1),
                                  event.ends_at + timedelta(days=1), place="Park",
                                  class_id=event.class_id)
        assert await events.change_event(s, event, moved, None, app.clock.now()) is not None
    await _notify(app)
    mail_msg = await smtp_server.wait_for("@example.jp")
    assert "予定変更" in str(mail_msg["Subject"]) and "Sports day" in str(mail_msg["Subject"])
    campaign = await _campaign_of_latest(app)
    said = campaign.message["en"]
    assert said.startswith("The date or time of Sports day has changed. It was ")
    first_call = len(lines.calls)  # the session's phone lines keep earlier tests' calls
    await dial_until_done(app, lines, campaign.id)
    assert await lines.household_attempts(numbers["primary"]) == 1
    assert await lines.household_attempts(numbers["second"]) == 0
    assert await lines.household_attempts(numbers["email_family"]) == 0
    assert f"bt/{voice.names[said]}-en" in _heard(lines, first_call)  # the change, in English
    async with app.sessions() as s:
        households = list(await s.scalars(select(CampaignHousehold).where(
            CampaignHousehold.campaign_id == campaign.id)))
        assert [(h.phone_e164, h.language, h.status) for h in households] == [
            ("+" + numbers["primary"], "en", AttemptStatus.COMPLETED)]
        rows = await family_reach.event_changes(s, event_id)
    assert [(r.change.action, r.counts) for r in rows] == [
        ("changed", family_reach.ReachCounts(emailed=1, called=1, reached=1, waiting=0,
                                             unreachable=0))]


async def test_cancelled_at_night_the_call_waits_for_the_morning(
    lines: PhoneLines, sqlite_db: Database, smtp_server: Mailbox
) -> None:
    smtp_server.messages.clear()
    night = datetime(2026, 12, 4, 21, 30, tzinfo=TOKYO)
    clock = FakeClock(night)
    app = _app(lines, sqlite_db, clock=clock, smtp_host="127.0.0.1",
               smtp_port=smtp_server.port)
    voice: ToneVoice = _route(lines, app)
    event_id, numbers = await _families(app, lines, "Asia/Tokyo", "6200")
    async with transaction(app.sessions) as s:
        event = await s.get_one(Event, event_id)
        await events.cancel_event(s, event, None, clock.now())
    await _notify(app)
    mail_msg = await smtp_server.wait_for("@example.jp")
    assert "中止" in str(mail_msg["Subject"])
    campaign = await _campaign_of_latest(app)
    said = campaign.message["en"]
    assert said == "Sports day, Friday, December 11 at 9:30 PM, has been cancelled."
    first_call = len(lines.calls)
    dialer = Dialer(app, PanoramiskPort(lines.ivr_ami),
                    DialerConfig(ring_timeout_s=4, answer_grace_s=1.0))
    stop = asyncio.Event()
    task = asyncio.ensure_future(dialer.run(stop))
    try:
        await asyncio.sleep(4)  # the dialer ticks all along: nobody is called at night
        assert await lines.household_attempts(numbers["primary"]) == 0
        async with app.sessions() as s:
            rows = await family_reach.event_changes(s, event_id)
        assert rows[0].counts == family_reach.ReachCounts(1, 1, 0, 1, 0)  # one still to call
        clock.set(datetime(2026, 12, 5, 8, 0, 1, tzinfo=TOKYO))
        await _wait_done(app, campaign.id, 60)
    finally:
        stop.set()
        await task
    assert await lines.household_attempts(numbers["primary"]) == 1
    assert await lines.household_attempts(numbers["second"]) == 0
    assert await lines.household_attempts(numbers["email_family"]) == 0
    assert f"bt/{voice.names[said]}-en" in _heard(lines, first_call)
    async with app.sessions() as s:
        attempt_day = (await s.scalar(select(CampaignHousehold.finished_at).where(
            CampaignHousehold.campaign_id == campaign.id)))
        rows = await family_reach.event_changes(s, event_id)
    assert attempt_day is not None and attempt_day.astimezone(UTC) >= datetime(
        2026, 12, 4, 23, 0, tzinfo=UTC)  # 08:00 Tokyo, not the night before
    assert rows[0].counts == family_reach.ReachCounts(1, 1, 1, 0, 0)
