"""The private calendar feed, read back by two independent parsers (icalendar, which wrote it,
and ics): VTIMEZONE for every TZID (RFC 5545 §3.2.19), DTSTAMP = the entry's last change,
and the same instants in both."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import vobject
from icalendar import Calendar
from sqlalchemy import select

from models import Event, FamilyEvent, Guardian
from models.db import transaction
from models.enums import Channel, ReportKind, ReportReason
from renraku.services import absences, events
from tests.db_fixtures import Database
from tests.test_guardian_authz import Client
from tests.web_fixtures import Portal
from tests.web_world import NOW, build_world

CHANGED = NOW + timedelta(hours=2)


async def test_feed_has_timezones_and_last_change_and_parses_twice(
    portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    async with transaction(sqlite_db.sessions) as s:
        (await s.get_one(Guardian, world.hanako)).calendar_token = "feed-token-hanako"
        sports = await s.scalar(select(Event).where(Event.title == "運動会"))
        assert sports is not None
        # Moved an hour later, two hours after it was created.
        await events.change_event(s, sports, events.EventDraft(
            "運動会", sports.starts_at + timedelta(hours=1), sports.ends_at), None, CHANGED)
        s.add(FamilyEvent(child_id=world.taro, created_by=world.hanako, title="歯医者",
                          starts_at=datetime(2026, 12, 12, 1, 0, tzinfo=UTC),
                          ends_at=datetime(2026, 12, 12, 2, 0, tzinfo=UTC), created_at=NOW))
        await absences.submit(s, absences.ReportDraft(world.taro, date(2026, 12, 7),
                                                      ReportKind.ABSENCE, ReportReason.ILLNESS),
                              channel=Channel.WEB, guardian_id=world.hanako, now=CHANGED)
    client = Client(portal)
    try:
        status, text = await client.get("/ical/feed-token-hanako.ics")
    finally:
        await client.http.close()
    assert status == 200
    # icalendar: every TZID referenced has its VTIMEZONE.
    cal = Calendar.from_ical(text)
    zones = {str(z["TZID"]) for z in cal.walk("VTIMEZONE")}
    used = {p.params["TZID"] for ev in cal.walk("VEVENT") for p in (ev["DTSTART"], ev["DTEND"])
            if "TZID" in p.params}
    assert used == {"Asia/Tokyo"} and used <= zones
    stamps = {str(ev["SUMMARY"]).split(" (")[0]: ev["DTSTAMP"].dt for ev in cal.walk("VEVENT")}
    assert stamps["運動会"] == CHANGED  # the change, not the start nor the creation
    assert stamps["歯医者"] == NOW
    assert stamps["欠席: 太郎"] == CHANGED
    # vobject (another implementation) with the zone renamed to a name no IANA database
    # knows: the times can only come from the feed's own VTIMEZONE.
    other = vobject.readOne(text.replace("Asia/Tokyo", "Renraku-School-Zone"))
    starts = {str(ev.summary.value).split(" (")[0]: (ev.dtstart.value, ev.dtend.value)
              for ev in other.vevent_list}
    assert len(starts) == len(stamps)
    sports, dentist = starts["運動会"], starts["歯医者"]
    assert sports[0].utcoffset() == timedelta(hours=9)
    assert sports[0] == datetime(2026, 12, 11, 1, 0, tzinfo=UTC)  # 10:00 Tokyo, moved
    assert dentist == (datetime(2026, 12, 12, 1, 0, tzinfo=UTC),
                       datetime(2026, 12, 12, 2, 0, tzinfo=UTC))
    assert starts["欠席: 太郎"][0] == date(2026, 12, 7)  # all day: a date, no zone
    assert {str(ev.dtstamp.value) for ev in other.vevent_list} == {
        str(v) for v in stamps.values()}
