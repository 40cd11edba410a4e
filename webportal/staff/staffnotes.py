"""Staff-only pages: the staff calendar (meetings, duty rotas) and notes about a child.

Routes:
  /staff/staff-calendar                   upcoming staff entries; POST adds one
  /staff/staff-calendar/<id>/delete       POST (its author or an admin)
  /staff/children/<id>/notes              a child's notes with every version; POST adds one
  /staff/children/<id>/notes/<nid>        POST: a new version (its author or an admin)
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from aiohttp import web
from sqlalchemy import select

from models import Child, ChildNote, Enrolment, StaffEvent
from models.db import transaction
from renraku.rules.permissions import can_view_child_notes
from renraku.services import staffnotes
from webportal.staff import fw
from webportal.staff.common import StaffRequest, day_param, render, staff_request
from webportal.templating import flash

routes = web.RouteTableDef()


def _errors(_: Any) -> dict[str, str]:
    return {
        "title": _("Give the entry a title."),
        "order": _("The end must not be before the start."),
        "time": _("Enter the date and times."),
        "empty": _("Write the note."),
        "long": _("The note is too long (at most 4000 characters)."),
    }


def _when(sr: StaffRequest, data: Any, key: str) -> datetime:
    day = day_param(sr, str(data.get("day", "")) or "x")
    try:
        at = time.fromisoformat(str(data.get(key, "")))
    except ValueError as exc:
        raise staffnotes.StaffNoteError("time") from exc
    return datetime.combine(day, at, tzinfo=sr.tz)


async def _calendar_page(sr: StaffRequest, session: Any, error: str = "",
                         status: int = 200) -> web.Response:
    _ = fw.gettext_for(sr.request)
    since = datetime.combine(sr.today, time(0), tzinfo=sr.tz)
    return render(sr, "staff/staff_calendar.html", {
        "page_title": _("Staff calendar"), "entries": await staffnotes.entries(
            session, sr.school.id, since), "error": error, "today": sr.today,
        "csrf_token": fw.csrf_token(sr.request)}, status=status)


@routes.get("/staff/staff-calendar")
async def staff_calendar(request: web.Request) -> web.Response:
    async with fw.app_of(request).sessions() as session:
        return await _calendar_page(await staff_request(request, session), session)


@routes.post("/staff/staff-calendar")
async def add_entry(request: web.Request) -> web.Response:
    data = await request.post()
    _ = fw.gettext_for(request)
    async with transaction(fw.app_of(request).sessions) as session:
        sr = await staff_request(request, session)
        try:
            await staffnotes.add_entry(
                session, sr.school.id, sr.staff.id, title=str(data.get("title", "")),
                starts_at=_when(sr, data, "start"), ends_at=_when(sr, data, "end"),
                place=str(data.get("place", "")), note=str(data.get("note", "")), now=sr.now)
        except (staffnotes.StaffNoteError, web.HTTPBadRequest) as exc:
            code = str(exc) if isinstance(exc, staffnotes.StaffNoteError) else "time"
            return await _calendar_page(sr, session, _errors(_)[code], status=400)
    flash(request, _("The staff entry is saved. Families never see it."))
    raise web.HTTPSeeOther("/staff/staff-calendar")


@routes.post(r"/staff/staff-calendar/{entry_id:\d+}/delete")
async def delete_entry(request: web.Request) -> web.Response:
    async with transaction(fw.app_of(request).sessions) as session:
        sr = await staff_request(request, session)
        entry = await session.get(StaffEvent, int(request.match_info["entry_id"]))
        if entry is None or entry.school_id != sr.school.id:
            raise web.HTTPNotFound(text="not found")
        if entry.created_by != sr.staff.id and not sr.scope.is_admin:
            raise web.HTTPForbidden(text="forbidden")
        await staffnotes.delete_entry(session, entry.id, sr.school.id)
    raise web.HTTPSeeOther("/staff/staff-calendar")


async def _child(request: web.Request, session: Any) -> tuple[StaffRequest, Child]:
    """The child if this staff member may see its notes; 404 otherwise (existence hidden)."""
    sr = await staff_request(request, session)
    child = await session.get(Child, int(request.match_info["child_id"]))
    class_ids = list(await session.scalars(
        select(Enrolment.class_id).where(Enrolment.child_id == child.id))) if child else []
    if child is None or not can_view_child_notes(sr.scope, child.school_id, class_ids):
        raise web.HTTPNotFound(text="not found")
    return sr, child


async def _notes_page(sr: StaffRequest, session: Any, child: Child, error: str = "",
                      status: int = 200) -> web.Response:
    _ = fw.gettext_for(sr.request)
    return render(sr, "staff/child_notes.html", {
        "page_title": _("Notes between staff: %(name)s", name=child.name), "child": child,
        "notes": await staffnotes.notes(session, child.id), "error": error,
        "csrf_token": fw.csrf_token(sr.request)}, status=status)


@routes.get(r"/staff/children/{child_id:\d+}/notes")
async def child_notes(request: web.Request) -> web.Response:
    async with fw.app_of(request).sessions() as session:
        sr, child = await _child(request, session)
        return await _notes_page(sr, session, child)


@routes.post(r"/staff/children/{child_id:\d+}/notes")
async def add_note(request: web.Request) -> web.Response:
    data = await request.post()
    _ = fw.gettext_for(request)
    async with transaction(fw.app_of(request).sessions) as session:
        sr, child = await _child(request, session)
        try:
            await staffnotes.add_note(session, child.id, sr.staff.id, str(data.get("body", "")),
                                      sr.now)
        except staffnotes.StaffNoteError as exc:
            return await _notes_page(sr, session, child, _errors(_)[str(exc)], status=400)
    raise web.HTTPSeeOther(f"/staff/children/{child.id}/notes")


@routes.post(r"/staff/children/{child_id:\d+}/notes/{note_id:\d+}")
async def edit_note(request: web.Request) -> web.Response:
    data = await request.post()
    _ = fw.gettext_for(request)
    async with transaction(fw.app_of(request).sessions) as session:
        sr, child = await _child(request, session)
        note = await session.get(ChildNote, int(request.match_info["note_id"]))
        if note is None or note.child_id != child.id:
            raise web.HTTPNotFound(text="not found")
        if note.author_id != sr.staff.id and not sr.scope.is_admin:
            raise web.HTTPForbidden(text="forbidden")
        try:
            await staffnotes.edit_note(session, note, sr.staff.id, str(data.get("body", "")),
                                       sr.now)
        except staffnotes.StaffNoteError as exc:
            return await _notes_page(sr, session, child, _errors(_)[str(exc)], status=400)
    raise web.HTTPSeeOther(f"/staff/children/{child.id}/notes")
