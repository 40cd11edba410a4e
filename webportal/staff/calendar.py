"""Events (school-wide or per class) and notices (school, grade, class; now or scheduled)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from models import Event, Notice
from models.db import transaction
from models.enums import EventStatus
from renraku.app import App
from renraku.rules.permissions import can_edit_event, can_post_notice
from renraku.services import events, family_reach, notices
from renraku.services.staff import school_classes
from webportal.staff import fw
from webportal.staff.common import StaffRequest, classes_in_scope, render, staff_request

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
RETRY_SECONDS = 300


async def notify(app: App, event_id: int | None = None) -> int:
    """Send change emails now and queue the calls of the households without email;
    failures stay pending for the retry loop."""
    async with transaction(app.sessions) as session:
        return await events.notify_pending(
            session, fw.mail_sender(app), sender=app.settings.smtp_from,
            base_url=app.settings.base_url, now=app.clock.now(), event_id=event_id,
            settings=app.settings,
        )


async def notify_important(app: App, notice_id: int | None = None) -> int:
    """Important notices shown by now: emails, and calls to households without email."""
    async with transaction(app.sessions) as session:
        return await family_reach.notify_important(
            session, app.settings, fw.mail_sender(app), sender=app.settings.smtp_from,
            base_url=app.settings.base_url, now=app.clock.now(), notice_id=notice_id,
        )


async def retry_loop(aiohttp_app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: every few minutes, retry change emails that failed earlier, and tell
    the important notices whose publishing time came."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(RETRY_SECONDS)
            try:
                await notify(fw.app_of_application(aiohttp_app))
            except Exception:
                log.exception("event change emails: retry failed")
            try:
                await notify_important(fw.app_of_application(aiohttp_app))
            except Exception:
                log.exception("important notices: telling families failed")

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@routes.get("/staff/events")
async def list_events(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        rooms = {r.id: r for r in await classes_in_scope(session, sr)}
        since = datetime.combine(sr.today - timedelta(days=7), time(0), sr.tz)
        found = await events.school_events(
            session, sr.school.id, None if sr.scope.is_admin else list(rooms), since
        )
        rows = [
            {"event": e, "class_name": rooms[e.class_id].name if e.class_id in rooms else "",
             "editable": can_edit_event(sr.scope, e.school_id, e.class_id)}
            for e in found
        ]
        _ = fw.gettext_for(request)
        return render(sr, "staff/events.html", {"page_title": _("Events"), "events": rows})


def _event_form(sr: StaffRequest, event: Event | None) -> dict[str, Any]:
    if event is None:
        return {"date": sr.today.isoformat(), "start": "09:00", "end": "10:00"}
    start, end = sr.local(event.starts_at), sr.local(event.ends_at)
    return {
        "title": event.title, "class_id": str(event.class_id or ""),
        "date": start.date().isoformat(), "start": start.strftime("%H:%M"),
        "end_date": end.date().isoformat() if end.date() != start.date() else "",
        "end": end.strftime("%H:%M"), "all_day": event.all_day,
        "place": event.place, "note": event.note,
    }


def _draft(sr: StaffRequest, form: dict[str, str]) -> events.EventDraft:
    day = date.fromisoformat(form.get("date", ""))
    last = date.fromisoformat(form["end_date"]) if form.get("end_date") else day
    all_day = form.get("all_day") == "1"
    if all_day:
        start, end = time(0), time(23, 59)
    else:
        start = time.fromisoformat(form.get("start") or "09:00")
        end = time.fromisoformat(form.get("end") or form.get("start") or "09:00")
    return events.EventDraft(
        title=form.get("title", ""),
        starts_at=datetime.combine(day, start, sr.tz),
        ends_at=datetime.combine(last, end, sr.tz),
        all_day=all_day,
        place=form.get("place", ""),
        note=form.get("note", ""),
        class_id=int(form["class_id"]) if form.get("class_id") else None,
    )


async def _form_page(request: web.Request, event_id: int | None, form: dict | None = None,
                     error: str = "", status: int = 200) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        event = await _editable(session, sr, event_id) if event_id else None
        changes = await family_reach.event_changes(session, event.id) if event else []
        _ = fw.gettext_for(request)
        return render(sr, "staff/event_form.html", {
            "page_title": _("Change event") if event else _("New event"),
            "event": event, "form": form or _event_form(sr, event), "error": error,
            "changes": changes,
            "classes": await classes_in_scope(session, sr), "csrf_token": fw.csrf_token(request),
        }, status=status)


async def _editable(session: AsyncSession, sr: StaffRequest, event_id: int) -> Event:
    event = await session.get(Event, event_id)
    if event is None or not can_edit_event(sr.scope, event.school_id, event.class_id):
        raise web.HTTPNotFound(text="not found")
    return event


@routes.get("/staff/events/new")
async def new_event(request: web.Request) -> web.Response:
    return await _form_page(request, None)


@routes.get(r"/staff/events/{event_id:\d+}/edit")
async def edit_event(request: web.Request) -> web.Response:
    return await _form_page(request, int(request.match_info["event_id"]))


class _Invalid(Exception):
    """A form error: raised inside the transaction (rolling it back), shown after it."""


async def _save(request: web.Request, event_id: int | None) -> web.Response:
    app = fw.app_of(request)
    form = {k: str(v) for k, v in (await request.post()).items()}
    _ = fw.gettext_for(request)
    try:
        async with transaction(app.sessions) as session:
            sr = await staff_request(request, session)
            try:
                draft = _draft(sr, form)
                draft.check()
            except ValueError as exc:
                raise _Invalid(_("Check the title, date and times (the end must not be "
                                 "before the start).")) from exc
            if not can_edit_event(sr.scope, sr.school.id, draft.class_id):
                raise web.HTTPForbidden(text="forbidden")
            if event_id is None:
                await events.create_event(session, sr.school.id, draft, sr.staff.id, sr.now)
                changed = False
            else:
                event = await _editable(session, sr, event_id)
                if event.status == EventStatus.CANCELLED:
                    raise _Invalid(_("This event is cancelled; it cannot be changed."))
                changed = await events.change_event(session, event, draft, sr.staff.id,
                                                    sr.now) is not None
    except _Invalid as exc:
        return await _form_page(request, event_id, form, str(exc), status=400)
    if changed:
        await _notify_quietly(app, event_id)
    raise web.HTTPSeeOther("/staff/events")


async def _notify_quietly(app: App, event_id: int | None) -> None:
    try:
        await notify(app, event_id)
    except Exception:  # the change is saved; the retry loop sends the emails later
        log.exception("event %s: change emails not sent yet", event_id)


@routes.post("/staff/events/new")
async def create_event(request: web.Request) -> web.Response:
    return await _save(request, None)


@routes.post(r"/staff/events/{event_id:\d+}/edit")
async def update_event(request: web.Request) -> web.Response:
    return await _save(request, int(request.match_info["event_id"]))


@routes.post(r"/staff/events/{event_id:\d+}/cancel")
async def cancel_event(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    event_id = int(request.match_info["event_id"])
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        event = await _editable(session, sr, event_id)
        await events.cancel_event(session, event, sr.staff.id, sr.now)
    await _notify_quietly(app, event_id)
    raise web.HTTPSeeOther("/staff/events")


async def _notices_page(request: web.Request, error: str = "",
                        status: int = 200) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        rooms = await classes_in_scope(session, sr)
        names = {r.id: r.name for r in await school_classes(session, sr.school.id)}
        found = await notices.staff_notices(
            session, sr.school.id, None if sr.scope.is_admin else [r.id for r in rooms]
        )
        _ = fw.gettext_for(request)

        def target(n: Any) -> str:
            if n.scope == "class":
                return names.get(n.class_id, "")
            if n.scope == "grade":
                return _("Grade %(n)s") % {"n": n.grade}
            return _("Whole school")

        rows = [
            {"notice": n, "target": target(n), "scheduled": n.publish_at > sr.now,
             "editable": can_post_notice(sr.scope, n.school_id, n.scope, n.class_id)}
            for n in found
        ]
        grades = sorted({r.grade for r in rooms if r.grade > 0})
        return render(sr, "staff/notices.html", {
            "page_title": _("Notices"), "notices": rows, "classes": rooms, "grades": grades,
            "error": error, "csrf_token": fw.csrf_token(request),
        }, status=status)


def _translations(form: dict[str, str]) -> dict[str, dict[str, str]]:
    """Optional per-language title/body; a language left empty falls back to the original."""
    out: dict[str, dict[str, str]] = {}
    for code in ("en", "zh", "es", "ja"):
        title, body = form.get(f"title_{code}", "").strip(), form.get(f"body_{code}", "").strip()
        if title or body:
            out[code] = {k: v for k, v in (("title", title), ("body", body)) if v}
    return out


@routes.get("/staff/notices")
async def list_notices(request: web.Request) -> web.Response:
    return await _notices_page(request)


@routes.post("/staff/notices")
async def post_notice(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    form = {k: str(v) for k, v in (await request.post()).items()}
    _ = fw.gettext_for(request)
    try:
        async with transaction(app.sessions) as session:
            sr = await staff_request(request, session)
            scope_name, _sep, value = form.get("target", "school").partition(":")
            grade = class_id = None
            try:
                if scope_name == "grade":
                    grade = int(value)
                elif scope_name == "class":
                    class_id = int(value)
                publish_at = (datetime.fromisoformat(form["publish_at"]).replace(tzinfo=sr.tz)
                              if form.get("publish_at") else None)
            except ValueError as exc:
                raise _Invalid(_("Check the date and time.")) from exc
            if not can_post_notice(sr.scope, sr.school.id, scope_name, class_id):
                raise web.HTTPForbidden(text="forbidden")
            try:
                notice = await notices.create_notice(
                    session, sr.school.id,
                    notices.NoticeDraft(scope_name, form.get("title", ""), form.get("body", ""),
                                        grade=grade, class_id=class_id, publish_at=publish_at,
                                        translations=_translations(form),
                                        important=form.get("important") == "1"),
                    sr.staff.id, sr.now,
                )
            except ValueError as exc:
                raise _Invalid(_("Enter a title and a text.")) from exc
            tell_now = notice.important and notice.publish_at <= sr.now
            notice_id = notice.id
    except _Invalid as exc:
        return await _notices_page(request, str(exc), 400)
    if tell_now:
        try:
            await notify_important(app, notice_id)
        except Exception:  # the notice is saved; the retry loop tells the families later
            log.exception("notice %s: families not told yet", notice_id)
    raise web.HTTPSeeOther("/staff/notices")


@routes.post(r"/staff/notices/{notice_id:\d+}/withdraw")
async def withdraw_notice(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        notice = await session.get(Notice, int(request.match_info["notice_id"]))
        if notice is None or not can_post_notice(sr.scope, notice.school_id, notice.scope,
                                                 notice.class_id):
            raise web.HTTPNotFound(text="not found")
        await notices.withdraw_notice(session, notice, sr.now)
    raise web.HTTPSeeOther("/staff/notices")
