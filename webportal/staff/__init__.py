"""The staff portal: attendance register, families and QR codes, events, notices, accounts.

``setup(app)`` adds the routes; every handler loads the logged-in staff member and checks
role and class scope on the server (webportal.staff.common, renraku.rules.permissions).
Templates live in webportal/templates/staff/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from renraku.app import App
from webportal.staff import accounts, calendar, families, register


async def _phone_reports_wake_registers(app: web.Application) -> AsyncIterator[None]:
    """When the call flow runs in this process, its reports wake open registers at once.

    (A FastAGI server in another process is covered by the registers' database poll.)
    """
    from ivr import absence_flow

    bus = register.change_bus(app)

    async def hook(_app: App, _report_id: int) -> None:
        bus.notify()

    absence_flow.on_report_confirmed.append(hook)
    yield
    absence_flow.on_report_confirmed.remove(hook)


def setup(app: web.Application) -> None:
    for module in (register, families, calendar, accounts):
        app.router.add_routes(module.routes)
    app.cleanup_ctx.append(calendar.retry_loop)
    app.cleanup_ctx.append(_phone_reports_wake_registers)
    app.on_shutdown.append(_end_streams)
    register.change_bus(app)


async def _end_streams(app: web.Application) -> None:
    register.change_bus(app).close()
