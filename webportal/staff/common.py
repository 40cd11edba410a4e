"""What every staff handler shares: the logged-in staff member, their scope, class loading
with the permission check, and rendering with the staff helpers.

Every staff page goes through ``staff_request``: no session → the login page; a guardian's
session or a disabled account → 403; a class outside the person's scope → 404 (so a
teacher cannot even learn which class ids exist elsewhere).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from babel.dates import format_date, format_datetime, format_time
from sqlalchemy.ext.asyncio import AsyncSession

from models import Classroom, School, Staff
from models.db import joins_reads, transaction
from renraku.app import App
from renraku.rules.permissions import StaffScope, can_view_class, visible_classes
from renraku.rules.phone import PhoneNumber
from renraku.services import audit as audit_log
from renraku.services.schools import school_now
from renraku.services.staff import school_classes, staff_school_scope
from webportal.staff import fw

BABEL = {"ja": "ja", "en": "en", "zh": "zh_Hans", "es": "es"}


@dataclass
class StaffRequest:
    request: web.Request
    app: App
    staff: Staff
    scope: StaffScope
    school: School

    @property
    def now(self) -> datetime:
        return self.app.clock.now()

    @property
    def today(self) -> date:
        return school_now(self.app.clock, self.school).date()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.school.timezone)

    def local(self, when: datetime) -> datetime:
        return when.astimezone(self.tz)


async def staff_request(request: web.Request, session: AsyncSession) -> StaffRequest:
    """The logged-in, active staff member or an HTTP error (login redirect / 403)."""
    return (await _signed_in(request, session, None))[0]


async def staff_class_request(request: web.Request, session: AsyncSession,
                              class_id: int) -> tuple[StaffRequest, Classroom]:
    """``staff_request`` and ``class_in_scope`` in one statement."""
    sr, room = await _signed_in(request, session, class_id)
    return sr, _in_scope(sr, room)


async def _signed_in(request: web.Request, session: AsyncSession,
                     class_id: int | None) -> tuple[StaffRequest, Classroom | None]:
    staff_id = fw.cookie_staff_id(request)
    if staff_id is None:
        raise fw.login_redirect(request)
    # The staff member, their school and scope (and the page's class) in one statement,
    # in the page's own session (this ran before as four statements in two sessions: ~1 ms
    # of Python each).
    found = await staff_school_scope(session, staff_id, class_id)
    if found is None or not fw.staff_still_signed_in(request, found[0]):
        raise fw.login_redirect(request)
    staff, school, scope, room = found
    return StaffRequest(request, fw.app_of(request), staff, scope, school), room


async def class_in_scope(session: AsyncSession, sr: StaffRequest, class_id: int) -> Classroom:
    return _in_scope(sr, await session.get(Classroom, class_id))


def _in_scope(sr: StaffRequest, room: Classroom | None) -> Classroom:
    if room is None or not can_view_class(sr.scope, room.school_id, room.id):
        raise web.HTTPNotFound(text="not found")
    return room


async def classes_in_scope(session: AsyncSession, sr: StaffRequest) -> list[Classroom]:
    """The school's classes this person may open (all of them for an admin)."""
    rooms = await school_classes(session, sr.school.id)
    ok = set(visible_classes(sr.scope, [(r.id, r.school_id) for r in rooms]))
    return [r for r in rooms if r.id in ok]


def day_param(sr: StaffRequest, raw: str | None) -> date:
    """A ``YYYY-MM-DD`` parameter; empty means the school's today."""
    if not raw:
        return sr.today
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise web.HTTPBadRequest(text="bad day") from exc


def int_param(value: str | None, default: int | None = None) -> int | None:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError as exc:
        raise web.HTTPBadRequest(text="bad number") from exc


@functools.cache
def _weekday_name(locale: str, weekday: int) -> str:
    """The short weekday name ("EEE"): it depends on the weekday alone, and babel takes
    ~50 µs a call, 31 calls a month register."""
    return format_date(date(2024, 1, 1 + weekday), "EEE", locale=locale)  # 1 Jan 2024: Monday


def helpers(sr: StaffRequest, lang: str) -> dict[str, Any]:
    """Formatting and label helpers for staff templates (school time, staff's language)."""
    _ = fw.gettext_for(sr.request)
    locale = BABEL.get(lang, "ja")

    def fmt_day(d: date | datetime) -> str:
        if isinstance(d, datetime):
            d = sr.local(d).date()
        return format_date(d, "medium", locale=locale) + f" ({weekday(d)})"

    def weekday(d: date) -> str:
        return _weekday_name(locale, d.weekday())

    kinds = {"absence": _("Absence"), "late": _("Late"), "early_leave": _("Early leave")}
    reasons = {
        "illness": _("Illness"),
        "injury": _("Injury or hospital visit"),
        "suspension": _("Attendance suspension (infectious disease)"),
        "bereavement": _("Bereavement or family matters"),
        "other": _("Other"),
    }
    channels = {"phone": _("Phone"), "web": _("Web"), "email": _("Email"), "staff": _("Staff")}
    statuses = {"scheduled": _("Scheduled"), "changed": _("Changed"), "cancelled": _("Cancelled")}
    roles = {"teacher": _("Teacher"), "admin": _("School administrator"),
             "nurse": _("School nurse (養護教諭)"), "principal": _("Principal")}
    languages = {"ja": "日本語", "en": "English", "zh": "中文", "es": "Español"}
    return {
        "staff": sr.staff,
        "scope": sr.scope,
        "school": sr.school,
        "format_day": fmt_day,
        "weekday": weekday,
        "format_time": lambda t: format_time(sr.local(t), "HH:mm", locale=locale),
        "format_datetime": lambda t: format_datetime(sr.local(t), "short", locale=locale),
        "kind_label": lambda k: kinds.get(k, k),
        "reason_label": lambda r: reasons.get(r, r),
        "channel_label": lambda c: channels.get(c, c),
        "event_status_label": lambda s: statuses.get(s, s),
        "role_label": lambda r: roles.get(r, r),
        "roles": list(roles),
        "language_name": lambda code: languages.get(code, code),
        "language_pairs": list(languages.items()),
        "national": lambda e164: PhoneNumber(e164, "").national,
    }


def render(sr: StaffRequest, template: str, context: dict[str, Any],
           status: int = 200) -> web.Response:
    lang = fw.language_of(sr.request)
    return fw.render(sr.request, template, {**helpers(sr, lang), **context}, status=status)


async def audit(sr: StaffRequest, action: str, *, class_id: int | None = None,
                detail: str = "", session: AsyncSession | None = None) -> None:
    """Note in the audit log that this person opened or exported personal data.

    With the page's own ``session``, the page's reading ends here. Where that session may
    write after reading (PostgreSQL), the entry is written and committed in it: one
    transaction a page instead of two. Elsewhere (SQLite) the session is closed first, as
    the page did before, so that a page holds one connection at a time.
    """
    if session is not None:
        if joins_reads(session):
            await audit_log.record(session, sr.staff, action, sr.now, class_id=class_id,
                                   detail=detail)
            await session.commit()
            return
        await session.close()
    async with transaction(sr.app.sessions) as own:
        await audit_log.record(own, sr.staff, action, sr.now, class_id=class_id,
                               detail=detail)


def made_by(sr: StaffRequest) -> str:
    """Who made an export and when, for its header line."""
    return f"{sr.staff.name} <{sr.staff.email}> {sr.local(sr.now):%Y-%m-%d %H:%M}"
