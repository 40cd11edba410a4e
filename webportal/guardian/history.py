"""欠席履歴: every report of a school year, past and upcoming, cancelled ones too.

Per child (``/c/{id}/history``) and for all the guardian's children on My page
(``/history``). Only the guardian's own children are ever queried: the child in the URL is
checked by :func:`child_page`, and ``/history`` reads the guardian's own children only.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from models import Child, Guardian
from models.enums import ReportStatus
from renraku.rules.school_year import school_year_days, school_year_of
from renraku.services import absences, portal
from renraku.services.schools import report_day_for, school_now
from webportal import i18n
from webportal.guardian.common import child_page, labels, render_child
from webportal.security import app_of, require_guardian, signed_guardian
from webportal.templating import gettext_for, language_of, render

routes = web.RouteTableDef()


async def _history(s: AsyncSession, request: web.Request,
                   children: list[Child]) -> dict[str, Any]:
    """The template's context: the chosen year, the years to choose from, the rows."""
    app = app_of(request)
    ids = [c.id for c in children]
    school = children[0].school if children else None
    today = school_now(app.clock, school).date() if school else app.clock.now().date()
    current = school_year_of(today)
    span = await absences.report_years(s, ids)
    years = list(range(max([current, *(school_year_of(d) for d in span)]),
                       min([current, *(school_year_of(d) for d in span)]) - 1, -1))
    try:
        year = int(request.query.get("year", current))
    except ValueError:
        year = current
    if year not in years:
        year = current
    first, last = school_year_days(year)
    reports = await absences.history(s, ids, first, last)
    by_id = {c.id: c for c in children}
    # Changeable from the first day a new report could be made for (each child's school).
    earliest: dict[int, date] = {}
    for child in children:
        earliest[child.id] = await report_day_for(s, app.clock, child.school)
    lang = language_of(request)
    return {
        "when": lambda dt, child_id: i18n.format_datetime(
            dt, lang, by_id[child_id].school.timezone),
        "date_of": date.fromisoformat, "year": year, "years": years, "reports": reports,
        "names": await absences.actor_names(s, reports),
        "by_id": by_id,
        "editable": {r.id for r in reports if r.status == ReportStatus.ACTIVE
                     and r.day >= earliest[r.child_id]},
        "upcoming": {r.id for r in reports if r.day >= earliest[r.child_id]},
    }


@routes.get(r"/c/{child_id:\d+}/history")
@require_guardian
async def child_history(request: web.Request) -> web.Response:
    async with app_of(request).sessions() as s:
        cp = await child_page(request, s)
        context = await _history(s, request, [cp.child])
    return render_child(cp, "guardian/history.html", {**context, "base": request.path},
                        "history")


@routes.get("/history")
@require_guardian
async def family_history(request: web.Request) -> web.Response:
    guardian: Guardian = signed_guardian(request)
    _ = gettext_for(request)
    async with app_of(request).sessions() as s:
        children = await portal.guardian_children(s, guardian.id)
        context = await _history(s, request, children)
    return render(request, "guardian/history.html", {
        "guardian": guardian, "children": children, "child": None, "section": "settings",
        "base": request.path, **labels(_), **context,
    })
