"""Who has read a notice, per family in the staff member's classes; resend to the others."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from models import Classroom, Notice
from models.db import transaction
from renraku.rules.permissions import visible_classes
from renraku.services import family_reach, receipts
from renraku.services.staff import school_classes
from webportal.staff import fw
from webportal.staff.common import StaffRequest, render, staff_request
from webportal.templating import flash

routes = web.RouteTableDef()


async def _notice_and_rooms(session: AsyncSession,
                            sr: StaffRequest) -> tuple[Notice, list[Classroom]]:
    """The notice if this person sees it (as on the notices page) and their classes."""
    notice = await session.get(Notice, int(sr.request.match_info["notice_id"]))
    rooms = await school_classes(session, sr.school.id)
    ok = set(visible_classes(sr.scope, [(r.id, r.school_id) for r in rooms]))
    mine = [r for r in rooms if r.id in ok]
    if notice is None or notice.school_id != sr.school.id or (
            not sr.scope.is_admin and notice.class_id is not None and notice.class_id not in ok):
        raise web.HTTPNotFound()
    return notice, mine


@routes.get(r"/staff/notices/{notice_id:\d+}/reads")
async def reads(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        notice, rooms = await _notice_and_rooms(session, sr)
        rows = await receipts.family_reads(session, notice, rooms)
        reach = await family_reach.notice_counts(session, notice.id)
    _ = fw.gettext_for(request)
    return render(sr, "staff/notice_reads.html", {
        "page_title": _("Read by families: %(title)s", title=notice.title), "notice": notice,
        "rows": rows, "read": sum(1 for r in rows if r.read_at),
        "csrf_token": fw.csrf_token(request), "reach": reach,
    })


@routes.post(r"/staff/notices/{notice_id:\d+}/resend")
async def resend(request: web.Request) -> web.Response:
    """One click: the notice again to every family in scope that has not opened it."""
    app = fw.app_of(request)
    _ = fw.gettext_for(request)
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        notice, rooms = await _notice_and_rooms(session, sr)
        unread = [r.child.id for r in await receipts.family_reads(session, notice, rooms)
                  if r.read_at is None]
        campaign = await receipts.resend_to_unread(session, app.settings, notice, unread,
                                                   app.clock.now(), sr.staff.id)
    if campaign is None:
        flash(request, _("Every family has read it: nothing to resend."))
        raise web.HTTPSeeOther(request.path.removesuffix("/resend") + "/reads")
    flash(request, _("Sent again to %(n)s families: by email where they have one, otherwise "
                     "by a call.", n=len(unread)))
    raise web.HTTPSeeOther(f"/staff/broadcasts/{campaign.id}")
