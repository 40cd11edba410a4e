"""The nurse's (養護教諭) dashboard: 14 days of every class, absences by reason and symptom,
the share of the class absent, the class-closure flag, the CSV, the threshold setting.

Routes: /staff/health (nurse, principal, admin), /staff/health.csv, POST /staff/health/threshold
(nurse, admin).
"""

from __future__ import annotations

from aiohttp import web

from models.db import transaction
from renraku.rules.health import SYMPTOM_KEYS
from renraku.rules.permissions import can_set_closure_threshold, can_view_health
from renraku.services import health
from renraku.services.morning import school_settings
from webportal.guardian.common import symptom_labels
from webportal.staff import fw
from webportal.staff.common import StaffRequest, int_param, render, staff_request
from webportal.templating import flash

routes = web.RouteTableDef()


async def _board(request: web.Request) -> tuple[StaffRequest, health.Dashboard]:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        if not can_view_health(sr.scope, sr.school.id):
            raise web.HTTPForbidden(text="forbidden")
        cfg = await school_settings(session, sr.school.id)
        board = await health.dashboard(session, sr.school, sr.today, cfg.closure_threshold_pct)
    return sr, board


def _symptoms(request: web.Request) -> dict[str, str]:
    _ = fw.gettext_for(request)
    return {**symptom_labels(_), "not_given": _("Not given")}


@routes.get("/staff/health")
async def dashboard(request: web.Request) -> web.Response:
    sr, board = await _board(request)
    _ = fw.gettext_for(request)
    return render(sr, "staff/health.html", {
        "page_title": _("Health (nurse's dashboard)"), "board": board,
        "symptom_keys": SYMPTOM_KEYS, "symptoms": _symptoms(request),
        "can_set": can_set_closure_threshold(sr.scope, sr.school.id),
        "csrf_token": fw.csrf_token(request),
    })


@routes.get("/staff/health.csv")
async def dashboard_csv(request: web.Request) -> web.Response:
    sr, board = await _board(request)
    _ = fw.gettext_for(request)
    names = _symptoms(request)
    headers = [_("Class"), _("Date"), _("Children"), _("Absent"), _("Absent in percent"),
               _("Illness"), _("Infectious disease"), *(names[k] for k in SYMPTOM_KEYS),
               _("Class closure to consider")]
    return web.Response(body=health.dashboard_csv(board, headers), headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="health-{sr.today.isoformat()}.csv"',
        "Cache-Control": "no-store",
    })


@routes.post("/staff/health/threshold")
async def set_threshold(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    data = await request.post()
    _ = fw.gettext_for(request)
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        if not can_set_closure_threshold(sr.scope, sr.school.id):
            raise web.HTTPForbidden(text="forbidden")
        value = int_param(str(data.get("threshold", "")))
        if value is None or not 1 <= value <= 100:
            flash(request, _("The threshold is a percentage from 1 to 100."), "error")
        else:
            cfg = await school_settings(session, sr.school.id, for_update=True)
            cfg.closure_threshold_pct = value
            flash(request, _("The class-closure threshold is now %(n)s %%.", n=value))
    raise web.HTTPSeeOther("/staff/health")
