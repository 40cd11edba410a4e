"""The staff portal: attendance register, families and QR codes, events, notices, accounts.

``setup(app)`` adds the routes; every handler loads the logged-in staff member and checks
role and class scope on the server (webportal.staff.common, renraku.rules.permissions).
Templates live in webportal/templates/staff/.
"""

from __future__ import annotations

from aiohttp import web

from webportal.staff import accounts, calendar, families, register


def setup(app: web.Application) -> None:
    for module in (register, families, calendar, accounts):
        app.router.add_routes(module.routes)
    app.cleanup_ctx.append(calendar.retry_loop)
    register.change_bus(app)
