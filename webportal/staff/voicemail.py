"""Voicemail reports: messages the absence line recorded while the app was down.

Teachers hear their classes' messages (also listed on the class's today page), admins the
whole school's and the unknown callers'; one click makes a message an absence report.
The audio is served only through here, after the same scope check as the list.
"""

from __future__ import annotations

from aiohttp import web

from models.db import transaction
from models.enums import ReportReason
from renraku.services import voicemail
from webportal.staff import fw
from webportal.staff.common import int_param, render, staff_request
from webportal.staff.register import change_bus

routes = web.RouteTableDef()


@routes.get("/staff/voicemail")
async def inbox(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        messages = await voicemail.inbox(session, sr.scope)
        _ = fw.gettext_for(request)
        return render(sr, "staff/voicemail.html", {
            "page_title": _("Voicemail"), "messages": messages, "room": None,
            "reasons": list(ReportReason), "csrf_token": fw.csrf_token(request),
        })


@routes.get(r"/staff/voicemail/{id:\d+}.wav")
async def audio(request: web.Request) -> web.StreamResponse:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        message = await voicemail.visible(session, sr.scope, int(request.match_info["id"]))
    path = voicemail.audio_path(app, message) if message is not None else None
    if path is None:
        raise web.HTTPNotFound(text="not found")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav",
                                           "Cache-Control": "private, no-store"})


def _back(request: web.Request) -> str:
    room = int_param(request.query.get("class"))
    return f"/staff/classes/{room}/today" if room else "/staff/voicemail"


@routes.post(r"/staff/voicemail/{id:\d+}/confirm")
async def confirm(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    form = await request.post()
    child_id = int_param(str(form.get("child_id", "")))
    try:
        reason = ReportReason(str(form.get("reason", ReportReason.ILLNESS)))
    except ValueError as exc:
        raise web.HTTPBadRequest(text="bad reason") from exc
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        message = await voicemail.visible(session, sr.scope, int(request.match_info["id"]),
                                          lock=True)
        if message is None or child_id is None:
            raise web.HTTPNotFound(text="not found")
        try:
            await voicemail.confirm_absence(session, message, child_id, reason, sr.staff, sr.now)
        except voicemail.VoicemailError as exc:
            raise web.HTTPConflict(text=str(exc)) from exc
    change_bus(request.app).notify()
    raise web.HTTPSeeOther(_back(request))


@routes.post(r"/staff/voicemail/{id:\d+}/done")
async def done(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        message = await voicemail.visible(session, sr.scope, int(request.match_info["id"]),
                                          lock=True)
        if message is None:
            raise web.HTTPNotFound(text="not found")
        try:
            voicemail.mark_done(message, sr.staff, sr.now)
        except voicemail.VoicemailError as exc:
            raise web.HTTPConflict(text=str(exc)) from exc
    raise web.HTTPSeeOther(_back(request))
