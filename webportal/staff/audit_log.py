"""The audit log page (school admin only): who opened or exported whose data, when."""

from __future__ import annotations

from aiohttp import web

from renraku.rules.permissions import can_manage_staff
from renraku.services import audit
from renraku.services.staff import school_classes, school_staff
from webportal.staff import fw
from webportal.staff.common import int_param, render, staff_request

routes = web.RouteTableDef()


def action_labels(_) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "register.day": _("Opened the day's register"),
        "register.month": _("Opened the month register"),
        "register.print": _("Printed the month register"),
        "register.pdf": _("Downloaded the month register (PDF)"),
        "register.csv": _("Downloaded the month register (CSV)"),
        "contacts.class": _("Opened the families' contacts"),
        "broadcast.csv": _("Downloaded broadcast results (CSV)"),
    }


@routes.get("/staff/audit")
async def audit_page(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        if not can_manage_staff(sr.scope, sr.school.id):
            raise web.HTTPForbidden(text="forbidden")
        who = int_param(request.query.get("staff"))
        room = int_param(request.query.get("class"))
        lines = await audit.school_log(session, sr.school.id, staff_id=who, class_id=room)
        _ = fw.gettext_for(request)
        return render(sr, "staff/audit.html", {
            "page_title": _("Audit log"), "lines": lines, "labels": action_labels(_),
            "people": await school_staff(session, sr.school.id),
            "classes": await school_classes(session, sr.school.id),
            "chosen_staff": who, "chosen_class": room, "limit": audit.PAGE,
        })
