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
    async with app_of(request).sessions() as s:  # each school's absence line, when set
        lines = [(name, PhoneNumber(e164, "").national) for name, e164 in await s.execute(
            select(School.name, School.absence_line_e164)
            .where(School.absence_line_e164.is_not(None)).order_by(School.id))]
    return render(request, "index.html", {"lines": lines})


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
