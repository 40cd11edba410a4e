"""Morning roll call (in the class's today page), follow-up calls, the school's summary and
the staff alerts.

Routes:
  /staff/classes/<id>/roll              POST mark-<child_id>=present|absent|late (one or many)
  /staff/classes/<id>/roll/rows         the roll's rows (the today page refreshes them live)
  /staff/classes/<id>/followup          POST: call the families of unexplained absences now
  /staff/summary[?day=]                 the school's morning per class (principal, admin), live
  /staff/summary/stream                 its server-sent "changed" events
  /staff/summary/followup               POST: follow up every unexplained absence now
  /staff/summary/settings               POST: times of the automatic follow-up and digest
  /staff/alerts/<id>/read               POST: an alert was seen
"""

from __future__ import annotations

from datetime import date, time

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import transaction
from models.enums import RollMark
from renraku.rules.permissions import can_view_school_summary
from renraku.services import followup, morning, rollcall
from renraku.services.staff import school_classes
from webportal.security import safe_next
from webportal.staff import fw
from webportal.staff.common import (
    StaffRequest,
    class_in_scope,
    day_param,
    int_param,
    render,
    staff_request,
)
from webportal.staff.register import change_bus, event_stream
from webportal.templating import flash

routes = web.RouteTableDef()


def _wants_json(request: web.Request) -> bool:
    return request.headers.get("Accept", "").startswith("application/json")


@routes.post(r"/staff/classes/{class_id:\d+}/roll")
async def mark(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    data = await request.post()
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        room = await class_in_scope(session, sr, int(request.match_info["class_id"]))
        day = day_param(sr, str(data.get("day", "")))
        children = {c.child_id for c in await rollcall.class_roll(session, room.id, day)}
        marks: dict[int, RollMark] = {}
        for key, value in data.items():
            if not key.startswith("mark-"):
                continue
            child_id = int_param(key[5:])
            if child_id not in children or value not in set(RollMark):
                raise web.HTTPBadRequest(text="bad mark")
            marks[child_id] = RollMark(str(value))
        for child_id, value in marks.items():
            await rollcall.set_mark(session, child_id, day, value, sr.staff.id, sr.now)
    change_bus(request.app).notify()
    if _wants_json(request):
        return web.json_response({"ok": True, "marked": len(marks)})
    _ = fw.gettext_for(request)
    flash(request, _("The roll call is saved."))
    raise web.HTTPSeeOther(f"/staff/classes/{room.id}/today?day={day.isoformat()}")


@routes.get(r"/staff/classes/{class_id:\d+}/roll/rows")
async def roll_rows(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        room = await class_in_scope(session, sr, int(request.match_info["class_id"]))
        day = day_param(sr, request.query.get("day"))
        roll = await rollcall.class_roll(session, room.id, day)
        return render(sr, "staff/_roll_rows.html", {"room": room, "day": day, "roll": roll})


async def _follow_up(request: web.Request, sr: StaffRequest, day: date,
                     class_ids: list[int] | None) -> None:
    """Start the follow-ups and say on the next page what happened."""
    _ = fw.gettext_for(request)
    if day != sr.today:
        flash(request, _("Follow-up calls are only made for today."), "error")
        return
    try:
        started = await followup.start(sr.app, sr.school, day, class_ids=class_ids,
                                       staff_id=sr.staff.id)
    except followup.OutsideCallingWindow:
        flash(request, _("Outside the calling window nobody is called."), "error")
        return
    change_bus(request.app).notify()
    flash(request, _("Follow-up started: %(calls)s calls, %(emails)s emails, "
                        "%(none)s without any contact.", calls=len(started.calls),
                        emails=len(started.emails), none=len(started.no_contact)))


@routes.post(r"/staff/classes/{class_id:\d+}/followup")
async def class_followup(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    data = await request.post()
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        room = await class_in_scope(session, sr, int(request.match_info["class_id"]))
        day = day_param(sr, str(data.get("day", "")))
    await _follow_up(request, sr, day, [room.id])
    raise web.HTTPSeeOther(f"/staff/classes/{room.id}/today?day={day.isoformat()}")


async def _summary_request(request: web.Request, session: AsyncSession) -> StaffRequest:
    sr = await staff_request(request, session)
    if not can_view_school_summary(sr.scope, sr.school.id):
        raise web.HTTPForbidden(text="forbidden")
    return sr


@routes.get("/staff/summary")
async def summary(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await _summary_request(request, session)
        day = day_param(sr, request.query.get("day"))
        rooms = await school_classes(session, sr.school.id)
        summary_rows = await rollcall.school_summary(session, rooms, day)
        alerts = await followup.unread_alerts(session, sr.staff.id)
        cfg = await morning.school_settings(session, sr.school.id)
    _ = fw.gettext_for(request)
    return render(sr, "staff/summary.html", {
        "day": day, "summary": summary_rows, "alerts": alerts, "today": sr.today, "cfg": cfg,
        "csrf_token": fw.csrf_token(request), "page_title": _("Morning summary"),
    })


@routes.get("/staff/summary/stream")
async def summary_stream(request: web.Request) -> web.StreamResponse:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await _summary_request(request, session)
        day = day_param(sr, request.query.get("day"))
    school_id, staff_id = sr.school.id, sr.staff.id

    async def stamp() -> object:
        async with app.sessions() as s:
            return (await rollcall.stamp(s, day, school_id=school_id),
                    len(await followup.unread_alerts(s, staff_id)))

    return await event_stream(request, stamp)


@routes.post("/staff/summary/followup")
async def summary_followup(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await _summary_request(request, session)
    await _follow_up(request, sr, sr.today, None)
    raise web.HTTPSeeOther("/staff/summary")


def _hhmm(value: str) -> time | None:
    """An HH:MM field; empty turns the job off. Bad input is a 400."""
    if not value.strip():
        return None
    try:
        return time.fromisoformat(value.strip()).replace(second=0, microsecond=0)
    except ValueError as exc:
        raise web.HTTPBadRequest(text="bad time") from exc


@routes.post("/staff/summary/settings")
async def summary_settings(request: web.Request) -> web.Response:
    """When the automatic follow-up calls and the principal's digest go out (or never)."""
    app = fw.app_of(request)
    data = await request.post()
    async with transaction(app.sessions) as session:
        sr = await _summary_request(request, session)
        cfg = await morning.school_settings(session, sr.school.id, for_update=True)
        cfg.followup_at = _hhmm(str(data.get("followup_at", "")))
        cfg.digest_at = _hhmm(str(data.get("digest_at", "")))
    _ = fw.gettext_for(request)
    flash(request, _("The times are saved."))
    raise web.HTTPSeeOther("/staff/summary")


@routes.post(r"/staff/alerts/{alert_id:\d+}/read")
async def alert_read(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    data = await request.post()
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        done = await followup.mark_alert_read(session, int(request.match_info["alert_id"]),
                                              sr.staff.id, sr.now)
    if not done:
        raise web.HTTPNotFound(text="not found")
    raise web.HTTPSeeOther(safe_next(str(data.get("next", "")), "/staff/"))
