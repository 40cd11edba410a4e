"""School and class events: create, change, cancel, and tell the affected families.

Every change appends an EventChange (before/after snapshots) and sets Event.status, which
the guardian calendar uses to highlight changed and cancelled events. ``notify_pending``
emails the guardians of the affected children (school-wide: the whole school; class event:
that class) in their own language and stamps ``notified_at``, so a crash between the change
and the email only delays it: the next call picks the change up again. Households without
email get one automated call each in the same transaction (renraku.services.family_reach).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Child, Classroom, Enrolment, Event, EventChange, Guardian, Guardianship, School
from models.enums import EventStatus
from renraku.i18n import BABEL_LOCALE, tr
from renraku.services import family_reach, mail
from renraku.services.mail import Send
from renraku.settings import LANGUAGES, Settings

log = logging.getLogger(__name__)

EVENT_FIELDS = ("title", "starts_at", "ends_at", "all_day", "place", "note", "class_id")


@dataclass(frozen=True)
class EventDraft:
    title: str
    starts_at: datetime
    ends_at: datetime
    all_day: bool = False
    place: str = ""
    note: str = ""
    class_id: int | None = None

    def check(self) -> None:
        if not self.title.strip():
            raise ValueError("title")
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("naive datetime")
        if self.ends_at < self.starts_at:
            raise ValueError("ends before it starts")


def snapshot(event: Event) -> dict[str, Any]:
    return {
        "title": event.title,
        "starts_at": event.starts_at.isoformat(),
        "ends_at": event.ends_at.isoformat(),
        "all_day": event.all_day,
        "place": event.place,
        "note": event.note,
        "class_id": event.class_id,
        "status": event.status,
    }


async def create_event(
    session: AsyncSession, school_id: int, draft: EventDraft, staff_id: int | None, now: datetime
) -> Event:
    draft.check()
    event = Event(
        school_id=school_id,
        class_id=draft.class_id,
        title=draft.title.strip(),
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
        all_day=draft.all_day,
        place=draft.place.strip(),
        note=draft.note.strip(),
        status=EventStatus.SCHEDULED,
        created_by=staff_id,
        created_at=now,
        updated_at=now,
    )
    session.add(event)
    await session.flush()
    # A new event is on every calendar already; nothing to notify (notified_at = now).
    session.add(
        EventChange(event_id=event.id, action="created", before=None, after=snapshot(event),
                    staff_id=staff_id, at=now, notified_at=now)
    )
    await session.flush()
    return event


async def change_event(
    session: AsyncSession, event: Event, draft: EventDraft, staff_id: int | None, now: datetime
) -> EventChange | None:
    """Apply the draft; None when nothing a family would notice changed."""
    draft.check()
    if event.status == EventStatus.CANCELLED:
        raise ValueError("a cancelled event cannot be changed")
    before = snapshot(event)
    event.title = draft.title.strip()
    event.starts_at = draft.starts_at
    event.ends_at = draft.ends_at
    event.all_day = draft.all_day
    event.place = draft.place.strip()
    event.note = draft.note.strip()
    event.class_id = draft.class_id
    after = snapshot(event)
    if {k: before[k] for k in EVENT_FIELDS} == {k: after[k] for k in EVENT_FIELDS}:
        return None
    event.status = EventStatus.CHANGED
    event.updated_at = now
    after["status"] = event.status
    change = EventChange(event_id=event.id, action="changed", before=before, after=after,
                         staff_id=staff_id, at=now)
    session.add(change)
    await session.flush()
    return change


async def cancel_event(
    session: AsyncSession, event: Event, staff_id: int | None, now: datetime
) -> EventChange | None:
    if event.status == EventStatus.CANCELLED:
        return None
    before = snapshot(event)
    event.status = EventStatus.CANCELLED
    event.updated_at = now
    change = EventChange(event_id=event.id, action="cancelled", before=before,
                         after=snapshot(event), staff_id=staff_id, at=now)
    session.add(change)
    await session.flush()
    return change


async def affected_guardians(session: AsyncSession, event: Event) -> list[Guardian]:
    """Guardians of the active children the event concerns, each once."""
    query = (
        select(Guardian)
        .join(Guardianship, Guardianship.guardian_id == Guardian.id)
        .join(Child, Child.id == Guardianship.child_id)
        .where(Child.active.is_(True), Child.school_id == event.school_id)
    )
    if event.class_id is not None:
        query = query.join(Enrolment, Enrolment.child_id == Child.id).where(
            Enrolment.class_id == event.class_id
        )
    rows = await session.scalars(query.order_by(Guardian.id))
    return list(dict.fromkeys(rows.unique()))


def when_text(snap: dict[str, Any], lang: str, tz: str) -> str:
    """The date and time of an event snapshot, in the family's language and school time."""
    locale = BABEL_LOCALE.get(lang, "ja")
    start = datetime.fromisoformat(snap["starts_at"]).astimezone(ZoneInfo(tz))
    end = datetime.fromisoformat(snap["ends_at"]).astimezone(ZoneInfo(tz))
    def fmt_day(d: datetime) -> str:
        return format_date(d.date(), "full", locale=locale)

    def fmt_time(d: datetime) -> str:
        return format_time(d, "short", locale=locale)

    if snap.get("all_day"):
        return fmt_day(start)
    if end.date() != start.date():
        return f"{fmt_day(start)} {fmt_time(start)} – {fmt_day(end)} {fmt_time(end)}"
    return f"{fmt_day(start)} {fmt_time(start)}–{fmt_time(end)}"


def change_email(
    change: EventChange, guardian: Guardian, school: School, sender: str, calendar_url: str,
    now: datetime,
) -> EmailMessage:
    lang = guardian.language if guardian.language in LANGUAGES else "ja"
    before, after = change.before or {}, change.after or {}
    if change.action == "changed":
        subject = tr(lang, "Event changed: %(title)s (%(school)s)",
                     title=after.get("title", ""), school=school.name)
        intro = tr(lang, "Dear %(name)s,\n\nThe following event has changed.",
                   name=guardian.name)
    else:
        subject = tr(lang, "Event cancelled: %(title)s (%(school)s)",
                     title=after.get("title", ""), school=school.name)
        intro = tr(lang, "Dear %(name)s,\n\nThe following event has been cancelled.",
                   name=guardian.name)
    lines = [intro, "", f"■ {after['title']}"]
    when = when_text(after, lang, school.timezone)
    lines.append(tr(lang, "When: %(when)s", when=when))
    if change.action == "changed" and when_text(before, lang, school.timezone) != when:
        lines.append("  " + tr(lang, "(Before: %(value)s)",
                               value=when_text(before, lang, school.timezone)))
    if after.get("place"):
        place = after["place"]
        if change.action == "changed" and before.get("place") != place:
            place += "  " + tr(lang, "(Before: %(value)s)", value=before.get("place") or "-")
        lines.append(tr(lang, "Place: %(place)s", place=place))
    if after.get("note"):
        lines.append(tr(lang, "Note: %(note)s", note=after["note"]))
    lines += ["", tr(lang, "See it on your calendar: %(url)s", url=calendar_url), "",
              school.name]
    return mail.build(sender, guardian.email or "", subject, "\n".join(lines), now=now)


async def notify_pending(
    session: AsyncSession,
    send: Send,
    *,
    sender: str,
    base_url: str,
    now: datetime,
    event_id: int | None = None,
    settings: Settings | None = None,
) -> int:
    """Email every guardian with an address about un-notified changes; returns emails sent.

    A failed send leaves the change un-notified (logged), to be retried on the next call.
    With ``settings``, the households without email are then called, once each
    (renraku.services.family_reach), and the counts kept for staff.
    """
    query = select(EventChange).where(
        EventChange.notified_at.is_(None), EventChange.action.in_(("changed", "cancelled"))
    )
    if event_id is not None:
        query = query.where(EventChange.event_id == event_id)
    sent = 0
    # Each web worker retries on its own timer: a change being mailed by one is skipped by
    # the others (PostgreSQL; SQLite's write lock already lets one writer in at a time).
    query = query.order_by(EventChange.id).with_for_update(skip_locked=True, of=EventChange)
    for change in list(await session.scalars(query)):
        event = await session.get_one(Event, change.event_id)
        school = await session.get_one(School, event.school_id)
        try:
            for guardian in await affected_guardians(session, event):
                if not guardian.email:
                    continue  # households without email are called (family_reach)
                await send(change_email(change, guardian, school, sender,
                                        f"{base_url}/calendar", now))
                sent += 1
        except Exception:  # any SMTP trouble: keep the change for a retry
            log.exception("event change %s: email failed; will retry", change.id)
            continue
        change.notified_at = now
        await session.flush()
        if settings is not None:
            await family_reach.reach_event_change(session, settings, change, now)
    return sent


async def school_events(
    session: AsyncSession, school_id: int, class_ids: list[int] | None, start: datetime
) -> list[Event]:
    """Events from ``start`` on: all of the school's (class_ids None) or school-wide + these."""
    query = select(Event).where(Event.school_id == school_id, Event.ends_at >= start)
    if class_ids is not None:
        query = query.where(Event.class_id.is_(None) | Event.class_id.in_(class_ids))
    return list(await session.scalars(query.order_by(Event.starts_at, Event.id)))


async def class_name(session: AsyncSession, class_id: int | None) -> str:
    if class_id is None:
        return ""
    room = await session.get(Classroom, class_id)
    return room.name if room else ""
