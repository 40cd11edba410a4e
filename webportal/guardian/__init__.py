"""The guardian portal: QR registration, calendar, absences, surveys, settings, feed."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from models import School
from renraku.rules.phone import PhoneNumber
from webportal.security import app_of, session_of
from webportal.templating import render

routes = web.RouteTableDef()


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    if session_of(request).get("gid") is not None:
        raise web.HTTPFound("/home")
    async with app_of(request).sessions() as s:
        schools = list(await s.execute(
            select(School.id, School.name, School.absence_line_e164).order_by(School.id)))
    # Each school's absence line, when set; every school's paper request form.
    lines = [(name, PhoneNumber(e164, "").national) for _id, name, e164 in schools if e164]
    return render(request, "index.html", {
        "lines": lines, "schools": [(school_id, name) for school_id, name, _e164 in schools]})


def setup(app: web.Application) -> None:
    from webportal.guardian import (
        account,
        history,
        pages,
        password_sms,
        proxy_request,
        register,
    )

    for module_routes in (routes, register.routes, pages.routes, history.routes,
                          account.routes, proxy_request.routes, password_sms.routes):
        app.router.add_routes(module_routes)
