"""The roster and the school year (school admin only): classes of a year, CSV import with a
preview, export, 転出 / 転入, and the rollover to the next year (進級処理).

An uploaded file waits under ``data_dir/uploads`` between the preview and the confirm (its
name carries the school and a random token), so the confirm re-plans the very same file
against the database as it is then, and writes only when that plan still has no problem.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Child, Classroom
from models.db import transaction
from renraku.rules.permissions import can_manage_staff
from renraku.rules.roster import ENCODINGS, MAX_GRADE, RosterFileError
from renraku.rules.schoolyear import academic_year_of
from renraku.services import roster as roster_svc
from renraku.services.schoolyear import RolloverRefused, latest_year, rollover
from webportal.speech import render_children_names
from webportal.staff import fw
from webportal.staff.common import StaffRequest, int_param, render, staff_request
from webportal.staff.roster_texts import problem_text, say
from webportal.templating import flash

routes = web.RouteTableDef()
MAX_FILE = 4 * 1024 * 1024  # 10,000 children are under 1 MB
SHOWN = 300  # rows listed per kind in a preview; the counts are always complete
KEEP_UPLOAD_S = 24 * 3600  # an unconfirmed preview's file is removed after a day
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


async def _admin(request: web.Request, session: AsyncSession) -> StaffRequest:
    sr = await staff_request(request, session)
    if not can_manage_staff(sr.scope, sr.school.id):
        raise web.HTTPForbidden(text="forbidden")
    return sr


async def _admin_form(request: web.Request) -> tuple[StaffRequest, MultiDictProxy[Any]]:
    """The admin and the posted form, for handlers that read files before any transaction."""
    data = await request.post()
    async with fw.app_of(request).sessions() as session:
        return await _admin(request, session), data


def _year(sr: StaffRequest, value: str | None) -> int:
    return int_param(value, academic_year_of(sr.today)) or academic_year_of(sr.today)


def _upload_path(sr: StaffRequest, kind: str, token: str) -> Path:
    if not TOKEN.match(token):
        raise web.HTTPBadRequest(text="bad token")
    return fw.app_of(sr.request).settings.data_dir / "uploads" / f"{kind}-{sr.school.id}-{token}"


async def _save_upload(sr: StaffRequest, kind: str, content: bytes) -> str:
    token = secrets.token_urlsafe(16)
    path = _upload_path(sr, kind, token)

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        stale = time.time() - KEEP_UPLOAD_S
        for old in path.parent.glob(f"{kind}-*"):  # previews nobody confirmed
            if old.stat().st_mtime < stale:
                old.unlink(missing_ok=True)
        path.write_bytes(content)

    await asyncio.to_thread(write)
    return token


async def _read_upload(sr: StaffRequest, kind: str, token: str) -> bytes:
    path = _upload_path(sr, kind, token)
    try:
        return await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError as exc:
        raise web.HTTPGone(text="this preview has expired: upload the file again") from exc


def _file_field(data: MultiDictProxy[Any], name: str) -> bytes | None:
    """The uploaded file's bytes, None when none was chosen; too large → 413."""
    field = data.get(name)
    if not isinstance(field, web.FileField) or not field.filename:
        return None
    content = field.file.read(MAX_FILE + 1)
    if len(content) > MAX_FILE:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_FILE, actual_size=len(content))
    return content


def _encoding(value: object) -> str | None:
    text = str(value or "")
    return text if text in ENCODINGS else None


# --------------------------------------------------------------------------------------------
# Classes and roster


async def _page(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await _admin(request, session)
        year = _year(sr, request.query.get("year"))
        years = sorted({year, *await roster_svc.school_years(session, sr.school.id)},
                       reverse=True)
        classes = await roster_svc.year_classes(session, sr.school.id, year)
        _ = fw.gettext_for(request)
        return render(sr, "staff/roster.html", {
            "page_title": _("Classes and roster"), "year": year, "years": years,
            "classes": classes, "error": error, "encodings": ENCODINGS,
            "max_grade": MAX_GRADE, "csrf_token": fw.csrf_token(request),
            "next_year": (await latest_year(session, sr.school.id) or year) + 1,
        }, status=status)


@routes.get("/staff/roster")
async def roster_page(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/staff/roster/classes")
async def save_class(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    data = await request.post()
    _ = fw.gettext_for(request)
    messages = {"class_taken": _("A class of that name already exists in this year."),
                "class_name": _("Give the class a name and a grade from 0 to 9.")}
    try:
        async with transaction(app.sessions) as session:
            sr = await _admin(request, session)
            year = _year(sr, str(data.get("year", "")))
            await roster_svc.save_class(
                session, sr.school.id, year, int_param(str(data.get("grade", "")), -1) or 0,
                str(data.get("name", "")), int_param(str(data.get("class_id", ""))))
    except LookupError as exc:
        raise web.HTTPNotFound(text="not found") from exc
    except ValueError as exc:
        return await _page(request, messages.get(str(exc), str(exc)), 400)
    raise web.HTTPSeeOther(f"/staff/roster?year={year}")


@routes.get("/staff/roster.csv")
async def export(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await _admin(request, session)
        year = _year(sr, request.query.get("year"))
        body = await roster_svc.export_csv(session, sr.school.id, year)
    return web.Response(body=body, headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="roster-{year}.csv"',
        "Cache-Control": "no-store",
    })


def _preview_context(sr: StaffRequest, result: roster_svc.RosterImport) -> dict[str, Any]:
    _ = fw.gettext_for(sr.request)
    plan = result.plan
    return {
        "plan": plan, "counts": plan.counts(), "shown": SHOWN,
        "problems": [problem_text(_, p) for p in plan.problems],
        "lists": [(kind, plan.of(kind)) for kind in ("add", "move", "change")],
        "year": result.year, "encoding": result.encoding,
    }


async def _preview(request: web.Request, token: str, content: bytes, year: int,
                   encoding: str | None, create: bool) -> web.Response:
    app = fw.app_of(request)
    _ = fw.gettext_for(request)
    async with app.sessions() as session:
        sr = await _admin(request, session)
        base = {"page_title": _("Roster import: preview"), "token": token, "create": create,
                "csrf_token": fw.csrf_token(request), "year": year}
        try:
            result = await roster_svc.import_roster(session, sr.school, content, year=year,
                                                    encoding=encoding, create_classes=create)
        except RosterFileError as exc:
            return render(sr, "staff/roster_preview.html",
                          {**base, "file_error": problem_text(_, exc.problem)}, status=400)
        return render(sr, "staff/roster_preview.html", {**base, **_preview_context(sr, result)},
                      status=200 if result.plan.ok else 400)


@routes.post("/staff/roster/import")
async def upload(request: web.Request) -> web.Response:
    sr, data = await _admin_form(request)
    _ = fw.gettext_for(request)
    content = _file_field(data, "file")
    if content is None:
        return await _page(request, _("Choose a CSV file to import."), 400)
    token = await _save_upload(sr, "roster", content)
    return await _preview(request, token, content, _year(sr, str(data.get("year", ""))),
                          _encoding(data.get("encoding")), data.get("create_classes") == "1")


@routes.post("/staff/roster/import/confirm")
async def confirm(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    sr, data = await _admin_form(request)
    token = str(data.get("token", ""))
    create = data.get("create_classes") == "1"
    content = await _read_upload(sr, "roster", token)
    year, encoding = _year(sr, str(data.get("year", ""))), _encoding(data.get("encoding"))
    try:
        async with transaction(app.sessions) as session:
            sr = await _admin(request, session)
            result = await roster_svc.import_roster(session, sr.school, content, year=year,
                                                    encoding=encoding, create_classes=create,
                                                    apply=True)
    except RosterFileError:
        result = None
    if result is None or not result.applied:  # the database changed since the preview
        return await _preview(request, token, content, year, encoding, create)
    await asyncio.to_thread(_upload_path(sr, "roster", token).unlink, True)
    render_children_names(request, result.renamed or [])
    _ = fw.gettext_for(request)
    c = result.plan.counts()
    flash(request, _("Imported: %(add)s added, %(change)s changed, %(move)s moved, "
                        "%(unchanged)s unchanged.", **{k: str(v) for k, v in c.items()}))
    raise web.HTTPSeeOther(f"/staff/roster?year={year}")


# --------------------------------------------------------------------------------------------
# 転出 and 転入


@routes.post(r"/staff/children/{child_id:\d+}/leave")
async def leave(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    data = await request.post()
    async with transaction(app.sessions) as session:
        sr = await _admin(request, session)
        child = await session.get(Child, int(request.match_info["child_id"]))
        if child is None or child.school_id != sr.school.id or not child.active:
            raise web.HTTPNotFound(text="not found")
        try:
            day = date.fromisoformat(str(data.get("day", "")))
        except ValueError:
            day = sr.today
        await roster_svc.leave(session, child, day, sr.now)
        _ = fw.gettext_for(request)
        flash(request, _("%(name)s has left the school (転出). Their records are kept.",
                            name=child.name))
    back = str(data.get("back", ""))
    raise web.HTTPSeeOther(back if back.startswith("/staff/classes/") else "/staff/roster")


@routes.post("/staff/roster/admit")
async def admit(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    data = await request.post()
    _ = fw.gettext_for(request)
    messages = {"student_number_taken": _("That student number is already used."),
                "admit_fields": _("Fill in the student number, name and reading.")}
    try:
        async with transaction(app.sessions) as session:
            sr = await _admin(request, session)
            room = await session.get(Classroom, int_param(str(data.get("class_id", ""))) or 0)
            if room is None or room.school_id != sr.school.id:
                raise web.HTTPNotFound(text="not found")
            birth = str(data.get("birth_date", ""))
            child = await roster_svc.admit(
                session, sr.school.id, room, student_number=str(data.get("student_number", "")),
                family_name=str(data.get("family_name", "")),
                given_name=str(data.get("given_name", "")), reading=str(data.get("reading", "")),
                number=int_param(str(data.get("number", ""))),
                birth_date=date.fromisoformat(birth) if birth else None)
    except ValueError as exc:
        return await _page(request, messages.get(str(exc), _("Check the date of birth.")), 400)
    raise web.HTTPSeeOther(f"/staff/classes/{room.id}/qr?child={child.id}")


@routes.post("/staff/roster/second-class")
async def second_class(request: web.Request) -> web.Response:
    """A child (by student number) joins or leaves a second class of the year."""
    app = fw.app_of(request)
    data = await request.post()
    _ = fw.gettext_for(request)
    number = str(data.get("student_number", "")).strip()
    joining = str(data.get("action", "")) != "remove"
    messages = {"child_left": _("That child has left the school."),
                "only_class": _("That is the child's only class of the year: use the roster "
                                "import to move them.")}
    async with transaction(app.sessions) as session:
        sr = await _admin(request, session)
        room = await session.get(Classroom, int_param(str(data.get("class_id", ""))) or 0)
        if room is None or room.school_id != sr.school.id:
            raise web.HTTPNotFound(text="not found")
        child = await session.scalar(select(Child).where(
            Child.school_id == sr.school.id, Child.student_number == number)) if number else None
        back = f"/staff/roster?year={room.academic_year}"
        if child is None:
            return await _page(request, _("No child has that student number."), 400)
        try:
            if joining:
                added = await roster_svc.join_class(session, child, room)
            else:
                await roster_svc.drop_class(session, child, room, sr.now)
        except ValueError as exc:
            return await _page(request, messages[str(exc)], 400)
        except LookupError:
            return await _page(request, _("%(name)s is not in %(class)s.", name=child.name,
                                          **{"class": room.name}), 400)
        names = {"name": child.name, "class": room.name}
    if not joining:
        flash(request, _("%(name)s is no longer in %(class)s.", **names))
        raise web.HTTPSeeOther(back)
    flash(request, _("%(name)s is now also in %(class)s: print the QR code for this class.",
                     **names) if added else _("%(name)s is already in %(class)s.", **names))
    raise web.HTTPSeeOther(f"/staff/classes/{room.id}/qr?child={child.id}")


# --------------------------------------------------------------------------------------------
# Rollover


async def _rollover(request: web.Request, data: MultiDictProxy[Any], token: str,
                    assignments: bytes | None, apply: bool) -> web.Response:
    app = fw.app_of(request)
    _ = fw.gettext_for(request)
    encoding = _encoding(data.get("encoding"))
    last = int_param(str(data.get("last_grade", "")))
    async with transaction(app.sessions) as session:
        sr = await _admin(request, session)
        to = int_param(str(data.get("to", ""))) or academic_year_of(sr.today) + 1
        base = {"page_title": _("New school year"), "to": to, "token": token,
                "last_grade": last or "", "encoding": encoding or "",
                "csrf_token": fw.csrf_token(request)}
        try:
            result = await rollover(session, sr.school, to, sr.now, assignments=assignments,
                                    encoding=encoding, last_grade=last, apply=apply)
        except RolloverRefused as exc:
            return render(sr, "staff/rollover.html",
                          {**base, "error": say(_, exc.code, exc.params)}, status=400)
        except RosterFileError as exc:
            return render(sr, "staff/rollover.html",
                          {**base, "error": problem_text(_, exc.problem)}, status=400)
        names = dict((c.id, c.name) for c in await roster_svc.year_classes(
            session, sr.school.id, result.from_year))
    if result.applied:
        flash(request, _("The school year %(year)s has started.", year=str(to)))
        raise web.HTTPSeeOther(f"/staff/roster?year={to}")
    sizes = {room: sum(1 for m in result.plan.moves if m.to == room)
             for room in result.plan.new_classes}
    return render(sr, "staff/rollover.html", {
        **base, "result": result, "sizes": sizes, "old_names": names,
        "early": say(_, "too_early", {"day": result.starts_on.isoformat()}),
        "problems": [problem_text(_, p) for p in result.plan.problems],
    }, status=200 if result.plan.ok else 400)


@routes.get("/staff/rollover")
async def rollover_form(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await _admin(request, session)
        latest = await latest_year(session, sr.school.id)
    _ = fw.gettext_for(request)
    return render(sr, "staff/rollover.html", {
        "page_title": _("New school year"), "csrf_token": fw.csrf_token(request),
        "to": (latest or academic_year_of(sr.today)) + 1, "form": True,
    })


@routes.post("/staff/rollover/preview")
async def rollover_preview(request: web.Request) -> web.Response:
    sr, data = await _admin_form(request)
    content = _file_field(data, "assignments")
    token = await _save_upload(sr, "assignments", content) if content is not None else ""
    return await _rollover(request, data, token, content, apply=False)


@routes.post("/staff/rollover/confirm")
async def rollover_confirm(request: web.Request) -> web.Response:
    sr, data = await _admin_form(request)
    token = str(data.get("token", ""))
    content = await _read_upload(sr, "assignments", token) if token else None
    return await _rollover(request, data, token, content, apply=True)

