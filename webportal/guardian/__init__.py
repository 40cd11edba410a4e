"""The guardian portal: QR registration, calendar, absences, surveys, settings, feed."""

from __future__ import annotations

from aiohttp import web

from webportal.security import session_of
from webportal.templating import render

routes = web.RouteTableDef()


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    if session_of(request).get("gid") is not None:
        raise web.HTTPFound("/home")
    return render(request, "index.html")


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
