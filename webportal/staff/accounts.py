"""Staff accounts (school admin only): list, create, assign classes, disable."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from models import Staff, StaffClass
from models.db import transaction
from renraku.rules.permissions import can_manage_staff
from renraku.services import staff as staff_svc
from webportal.security import login_staff
from webportal.staff import fw
from webportal.staff.common import StaffRequest, render, staff_request

routes = web.RouteTableDef()


def _admin_only(sr: StaffRequest) -> None:
    if not can_manage_staff(sr.scope, sr.school.id):
        raise web.HTTPForbidden(text="forbidden")


async def _page(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        _admin_only(sr)
        people = await staff_svc.school_staff(session, sr.school.id)
        links = await session.execute(
            select(StaffClass.staff_id, StaffClass.class_id).where(
                StaffClass.staff_id.in_([p.id for p in people]))
        )
        by_staff: dict[int, set[int]] = {}
        for staff_id, class_id in links:
            by_staff.setdefault(staff_id, set()).add(class_id)
        _ = fw.gettext_for(request)
        return render(sr, "staff/accounts.html", {
            "page_title": _("Staff accounts"),
            "accounts": [{"staff": p, "class_ids": by_staff.get(p.id, set())} for p in people],
            "classes": await staff_svc.school_classes(session, sr.school.id),
            "error": error, "csrf_token": fw.csrf_token(request),
        }, status=status)


@routes.get("/staff/accounts")
async def accounts(request: web.Request) -> web.Response:
    return await _page(request)


def _class_ids(data) -> list[int]:  # type: ignore[no-untyped-def]
    return [int(v) for v in data.getall("class_id", []) if str(v).isdigit()]


@routes.post("/staff/accounts")
async def create(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    data = await request.post()
    _ = fw.gettext_for(request)
    messages = {
        "email_taken": _("That email address already has an account."),
        "password_short": _("The password must be at least 10 characters."),
        "password_common": _("That password is one of the most common ones and easy to "
                             "guess. Please choose another."),
    }
    try:
        async with transaction(app.sessions) as session:
            sr = await staff_request(request, session)
            _admin_only(sr)
            await staff_svc.create_staff(
                session, sr.school.id, name=str(data.get("name", "")),
                email=str(data.get("email", "")), role=str(data.get("role", "teacher")),
                password=str(data.get("password", "")), class_ids=_class_ids(data),
            )
    except ValueError as exc:
        msg = messages.get(str(exc), _("Check the name, email and role."))
        return await _page(request, msg, 400)
    raise web.HTTPSeeOther("/staff/accounts")


async def _target(session, sr: StaffRequest, staff_id: int) -> Staff:  # type: ignore[no-untyped-def]
    person = await session.get(Staff, staff_id)
    if person is None or person.school_id != sr.school.id:
        raise web.HTTPNotFound(text="not found")
    return person


@routes.post(r"/staff/accounts/{staff_id:\d+}/classes")
async def set_classes(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    data = await request.post()
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        _admin_only(sr)
        person = await _target(session, sr, int(request.match_info["staff_id"]))
        await staff_svc.assign_classes(session, person, _class_ids(data))
    if person.id == sr.staff.id:  # one's own access changed: a new session, still signed in
        login_staff(request, person)
    raise web.HTTPSeeOther("/staff/accounts")


@routes.post(r"/staff/accounts/{staff_id:\d+}/active")
async def set_active(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    data = await request.post()
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        _admin_only(sr)
        person = await _target(session, sr, int(request.match_info["staff_id"]))
        if person.id == sr.staff.id:
            raise web.HTTPBadRequest(text="you cannot disable your own account")
        await staff_svc.set_active(session, person, data.get("active") == "1")
    raise web.HTTPSeeOther("/staff/accounts")
