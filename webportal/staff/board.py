"""The staff board (職員連絡) pages.

Routes (any signed-in staff member; a message only for its author and recipients):
  /staff/board                      inbox and sent messages, pinned first; email preference
  /staff/board/new                  compose: all staff, a grade team or named colleagues
  /staff/board/<id>                 read (marks it read); the author sees who has read it
  /staff/board/<id>/files/<aid>     an attachment
  /staff/board/<id>/pin             POST: pin or unpin (author, admin)
  /staff/board/prefs                POST: email notice on or off
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from models import StaffAttachment, StaffMessage
from models.db import transaction
from renraku.services import staffboard
from renraku.services.staff import school_classes, school_staff
from webportal.staff import fw
from webportal.staff.common import StaffRequest, int_param, render, staff_request
from webportal.templating import flash

routes = web.RouteTableDef()


def _errors(_: Any) -> dict[str, str]:
    return {
        "empty": _("Write a subject and a message."),
        "audience": _("Choose who the message is for."),
        "nobody": _("Nobody would receive this message."),
        "too_many_files": _("At most three files can be attached."),
        "file_too_big": _("A file is larger than 5 MB."),
        "file_type": _("Only PDF files and images (PNG, JPEG, GIF, WebP) can be attached."),
    }


@routes.get("/staff/board")
async def board(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        rows = await staffboard.inbox(session, sr.staff.id)
        wants = await staffboard.wants_email(session, sr.staff.id)
    _ = fw.gettext_for(request)
    return render(sr, "staff/board.html", {
        "page_title": _("Staff board"), "rows": rows, "wants_email": wants,
        "csrf_token": fw.csrf_token(request)})


async def _compose(sr: StaffRequest, session: Any, form: dict[str, Any],
                   error: str = "", status: int = 200) -> web.Response:
    _ = fw.gettext_for(sr.request)
    colleagues = [s for s in await school_staff(session, sr.school.id)
                  if s.active and s.id != sr.staff.id]
    return render(sr, "staff/board_new.html", {
        "page_title": _("New staff message"), "colleagues": colleagues, "form": form,
        "grades": sorted({r.grade for r in await school_classes(session, sr.school.id)}),
        "error": error, "csrf_token": fw.csrf_token(sr.request),
    }, status=status)


@routes.get("/staff/board/new")
async def new_form(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        return await _compose(sr, session, {"audience": "all", "people": []})


@routes.post("/staff/board/new")
async def new_post(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    data = await request.post()
    uploads = [staffboard.Upload(f.filename, f.file.read(staffboard.MAX_ATTACHMENT_BYTES + 1))
               for f in data.getall("files", []) if isinstance(f, web.FileField) and f.filename]
    form = {"audience": str(data.get("audience", "")), "grade": str(data.get("grade", "")),
            "people": [int(v) for v in data.getall("people", []) if str(v).isdigit()],
            "subject": str(data.get("subject", "")), "body": str(data.get("body", "")),
            "pinned": bool(data.get("pinned"))}
    _ = fw.gettext_for(request)
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        try:
            message = await staffboard.post(
                session, app.settings, sr.staff, audience=form["audience"],
                grade=int_param(form["grade"]), people=form["people"], subject=form["subject"],
                body=form["body"], pinned=form["pinned"], uploads=uploads, now=sr.now)
        except staffboard.BoardError as exc:
            return await _compose(sr, session, form, _errors(_)[str(exc)], status=400)
        message_id = message.id
    await staffboard.email_notices(app, message_id)
    flash(request, _("The message has been sent."))
    raise web.HTTPSeeOther(f"/staff/board/{message_id}")


async def _readable(request: web.Request, session: Any) -> tuple[StaffRequest, StaffMessage]:
    sr = await staff_request(request, session)
    message = await staffboard.readable_message(
        session, int(request.match_info["message_id"]), sr.staff.id)
    if message is None:
        raise web.HTTPNotFound(text="not found")
    return sr, message


@routes.get(r"/staff/board/{message_id:\d+}")
async def show(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with transaction(app.sessions) as session:
        sr, message = await _readable(request, session)
        await staffboard.mark_read(session, message.id, sr.staff.id, sr.now)
        files = await staffboard.attachments(session, message.id)
        mine = message.author_id == sr.staff.id
        status = await staffboard.read_status(session, message.id) if mine else []
        rows = {r.message.id: r for r in await staffboard.inbox(session, sr.staff.id)}
    return render(sr, "staff/board_show.html", {
        "page_title": message.subject, "message": message, "files": files, "mine": mine,
        "status": status, "row": rows.get(message.id), "csrf_token": fw.csrf_token(request),
        "can_pin": mine or sr.scope.is_admin})


@routes.get(r"/staff/board/{message_id:\d+}/files/{file_id:\d+}")
async def attachment(request: web.Request) -> web.StreamResponse:
    app = fw.app_of(request)
    async with app.sessions() as session:
        _sr, message = await _readable(request, session)
        found = await session.scalar(select(StaffAttachment).where(
            StaffAttachment.id == int(request.match_info["file_id"]),
            StaffAttachment.message_id == message.id))
    if found is None:
        raise web.HTTPNotFound(text="not found")
    path = staffboard.attachments_dir(app.settings) / found.token
    return web.Response(body=path.read_bytes(), headers={
        "Content-Type": found.content_type,
        "Content-Disposition": f'attachment; filename="{found.filename}"',
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})


@routes.post(r"/staff/board/{message_id:\d+}/pin")
async def pin(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with transaction(app.sessions) as session:
        sr, message = await _readable(request, session)
        if message.author_id != sr.staff.id and not sr.scope.is_admin:
            raise web.HTTPForbidden(text="forbidden")
        message.pinned = not message.pinned
    raise web.HTTPSeeOther(f"/staff/board/{message.id}")


@routes.post("/staff/board/prefs")
async def prefs(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    data = await request.post()
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        await staffboard.set_wants_email(session, sr.staff.id, bool(data.get("email_notice")))
    _ = fw.gettext_for(request)
    flash(request, _("Your email setting is saved."))
    raise web.HTTPSeeOther("/staff/board")
