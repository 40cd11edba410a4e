"""Staff accounts (school admin only): list, create, role, classes, the recording line's
phone and PIN, a new set-password link, disable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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


def _messages(_: Any) -> dict[str, str]:
    return {
        "email_taken": _("That email address already has an account."),
        "password_short": _("The password must be at least 10 characters."),
        "password_common": _("That password is one of the most common ones and easy to "
                             "guess. Please choose another."),
        "phone": _("That phone number is not valid. Include the area code, e.g. 03-1234-5678."),
        "phone_taken": _("Another staff member already uses that phone number."),
        "pin": _("The PIN must be 4 to 8 digits."),
    }


async def _page(request: web.Request, error: str = "", status: int = 200,
                link: tuple[str, str] | None = None) -> web.Response:
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
            "error": error, "csrf_token": fw.csrf_token(request), "link": link,
        }, status=status)


@routes.get("/staff/accounts")
async def accounts(request: web.Request) -> web.Response:
    return await _page(request)


def _class_ids(data) -> list[int]:  # type: ignore[no-untyped-def]
    return [int(v) for v in data.getall("class_id", []) if str(v).isdigit()]


@routes.post("/staff/accounts")
async def create(request: web.Request) -> web.Response:
    """With a password the account is ready; without one, the page shows a one-time link
    (24 h) for the admin to hand over, and the person chooses their own password."""
    app = fw.app_of(request)
    data = await request.post()
    _ = fw.gettext_for(request)
    password = str(data.get("password", ""))
    try:
        async with transaction(app.sessions) as session:
            sr = await staff_request(request, session)
            _admin_only(sr)
            person = await staff_svc.create_staff(
                session, sr.school.id, name=str(data.get("name", "")),
                email=str(data.get("email", "")), role=str(data.get("role", "teacher")),
                password=password or None, class_ids=_class_ids(data),
            )
            link = "" if password else await staff_svc.password_link(
                session, person, app.settings, sr.now)
    except staff_svc.StaffError as exc:
        msg = _messages(_).get(str(exc), _("Check the name, email and role."))
        return await _page(request, msg, 400)
    if link:
        return await _page(request, link=(person.name, link))
    raise web.HTTPSeeOther("/staff/accounts")


async def _target(session, sr: StaffRequest, staff_id: int) -> Staff:  # type: ignore[no-untyped-def]
    person = await session.get(Staff, staff_id)
    if person is None or person.school_id != sr.school.id:
        raise web.HTTPNotFound(text="not found")
    return person


# A change to one of the school's staff: (session, admin's request, person, form) → a new
# set-password link to show, or None.
Change = Callable[[AsyncSession, StaffRequest, Staff, Any], Awaitable[str | None]]


async def _change(request: web.Request, change: Change) -> web.Response:
    """One POST on /staff/accounts/<id>/…: the school's admins only, on their own school's
    staff; a refused value shows the page with its message, nothing changed."""
    app = fw.app_of(request)
    data = await request.post()
    _ = fw.gettext_for(request)
    try:
        async with transaction(app.sessions) as session:
            sr = await staff_request(request, session)
            _admin_only(sr)
            person = await _target(session, sr, int(request.match_info["staff_id"]))
            link = await change(session, sr, person, data)
    except staff_svc.StaffError as exc:
        return await _page(request, _messages(_).get(str(exc), _(
            "Check the name, email and role.")), 400)
    if person.id == sr.staff.id:  # one's own access changed: a new session, still signed in
        login_staff(request, person)
    if link:
        return await _page(request, link=(person.name, link))
    raise web.HTTPSeeOther("/staff/accounts")


def _not_oneself(sr: StaffRequest, person: Staff, what: str) -> None:
    if person.id == sr.staff.id:  # an admin must not lock themselves (or everyone) out
        raise web.HTTPBadRequest(text=f"you cannot {what} your own account")


@routes.post(r"/staff/accounts/{staff_id:\d+}/classes")
async def set_classes(request: web.Request) -> web.Response:
    async def change(session: AsyncSession, sr: StaffRequest, person: Staff,
                     data: Any) -> None:
        await staff_svc.assign_classes(session, person, _class_ids(data))

    return await _change(request, change)


@routes.post(r"/staff/accounts/{staff_id:\d+}/role")
async def set_role(request: web.Request) -> web.Response:
    async def change(session: AsyncSession, sr: StaffRequest, person: Staff,
                     data: Any) -> None:
        _not_oneself(sr, person, "change the role of")
        await staff_svc.set_role(session, person, str(data.get("role", "")))

    return await _change(request, change)


@routes.post(r"/staff/accounts/{staff_id:\d+}/phone")
async def set_phone(request: web.Request) -> web.Response:
    """The recording line's caller ID and PIN (ivr/admin_record_flow.py)."""
    async def change(session: AsyncSession, sr: StaffRequest, person: Staff,
                     data: Any) -> None:
        await staff_svc.set_phone_and_pin(session, person, str(data.get("phone", "")),
                                          str(data.get("pin", "")),
                                          sr.app.settings.default_region)

    return await _change(request, change)


@routes.post(r"/staff/accounts/{staff_id:\d+}/link")
async def new_link(request: web.Request) -> web.Response:
    """A new set-password link (a forgotten password, or the first link expired)."""
    async def change(session: AsyncSession, sr: StaffRequest, person: Staff,
                     data: Any) -> str:
        return await staff_svc.password_link(session, person, sr.app.settings, sr.now)

    return await _change(request, change)


@routes.post(r"/staff/accounts/{staff_id:\d+}/active")
async def set_active(request: web.Request) -> web.Response:
    async def change(session: AsyncSession, sr: StaffRequest, person: Staff,
                     data: Any) -> None:
        _not_oneself(sr, person, "disable")
        await staff_svc.set_active(session, person, data.get("active") == "1")

    return await _change(request, change)
