"""Attendance register pages: today (live), month grid, CSV export, print view, mark seen."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AbsenceReport, Classroom, Enrolment
from models.db import retry_on_disconnect, transaction
from models.enums import ReportReason, ReportStatus
from renraku.rules.register import MonthRegister
from renraku.rules.schoolday import ClassRef, report_day
from renraku.rules.schoolyear import academic_year_of
from renraku.services import followup, live, pdf, proxy_requests, register, rollcall, voicemail
from renraku.services.schools import school_calendar
from renraku.services.staff import school_classes
from webportal.staff import fw
from webportal.staff.common import (
    StaffRequest,
    audit,
    class_in_scope,
    day_param,
    int_param,
    made_by,
    render,
    staff_class_request,
    staff_request,
)
from webportal.staff.month_table import month_table

routes = web.RouteTableDef()
BUS_KEY = web.AppKey("staff_change_bus", live.ChangeBus)
PRINT_CSS = Path(__file__).resolve().parents[1] / "static" / "month_print.css"


def change_bus(app: web.Application) -> live.ChangeBus:
    """The process's wake-up bus; the guardian portal calls ``.notify()`` after a web report."""
    if BUS_KEY not in app:
        app[BUS_KEY] = live.ChangeBus()
    return app[BUS_KEY]


def _day(sr: StaffRequest) -> date:
    return day_param(sr, sr.request.query.get("day"))


def _ym(sr: StaffRequest) -> tuple[int, int]:
    raw = sr.request.query.get("ym", "")
    if not raw:
        return sr.today.year, sr.today.month
    try:
        year, month = (int(p) for p in raw.split("-", 1))
        date(year, month, 1)
    except ValueError as exc:
        raise web.HTTPBadRequest(text="bad month") from exc
    return year, month


def _shift(year: int, month: int, by: int) -> str:
    n = year * 12 + month - 1 + by
    return f"{n // 12}-{n % 12 + 1:02d}"


async def _class_counts(
    session: AsyncSession, class_ids: list[int], day: date, *, unseen_only: bool
) -> dict[int, int]:
    """Active reports per class for ``day`` (or only those nobody has marked seen)."""
    query = (
        select(Enrolment.class_id, func.count(AbsenceReport.id))
        .join(AbsenceReport, AbsenceReport.child_id == Enrolment.child_id)
        .where(AbsenceReport.day == day, AbsenceReport.status == ReportStatus.ACTIVE,
               Enrolment.class_id.in_(class_ids))
        .group_by(Enrolment.class_id)
    )
    if unseen_only:
        query = query.where(AbsenceReport.seen_at.is_(None))
    return {class_id: count for class_id, count in await session.execute(query)}


@routes.get("/staff/")
@routes.get("/staff")
async def home(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        mine = [r for r in await school_classes(session, sr.school.id)
                if r.id in sr.scope.class_ids or sr.scope.is_admin]
        years = sorted({r.academic_year for r in mine}, reverse=True)
        # This year's classes first; last year's registers stay a click away.
        current = academic_year_of(sr.today)
        default = next((y for y in years if y <= current), years[-1] if years else current)
        year = int_param(request.query.get("year"), default) or default
        rooms = [r for r in mine if r.academic_year == year]
        ids = [r.id for r in rooms]
        counts = await _class_counts(session, ids, sr.today, unseen_only=False)
        unseen = await _class_counts(session, ids, sr.today, unseen_only=True)
        _ = fw.gettext_for(request)
        requests = await proxy_requests.waiting(session, ids)
        classes = [{"room": r, "reports": counts.get(r.id, 0), "unseen": unseen.get(r.id, 0),
                    "requests": requests.get(r.id, 0)} for r in rooms]
        return render(sr, "staff/home.html",
                      {"page_title": _("Classes"), "classes": classes, "today": sr.today,
                       "years": years, "year": year,
                       "past_ym": f"{year + 1}-03" if year < current else ""})


@routes.get(r"/staff/classes/{class_id:\d+}/today")
async def today(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        room = await class_in_scope(session, sr, int(request.match_info["class_id"]))
        day = _day(sr)
        entries = await register.day_reports(session, room.id, day)
        messages = await voicemail.inbox(session, sr.scope, class_id=room.id, pending_only=True)
        roll = await rollcall.class_roll(session, room.id, day)
        alerts = await followup.unread_alerts(session, sr.staff.id)
        # After the cutoff (or on a holiday) new reports are for the next school day.
        calendar = await school_calendar(session, sr.school)
        upcoming = report_day(sr.local(sr.now), sr.school.phone_cutoff, calendar)
        _ = fw.gettext_for(request)
        await audit(sr, "register.day", class_id=room.id, detail=day.isoformat())
        return render(sr, "staff/today.html", {
            "upcoming": upcoming if upcoming != day else None,
            "closure": calendar.class_closure(day, ClassRef(room.id, room.grade)),
            "page_title": _("Attendance today: %(name)s") % {"name": room.name},
            "room": room, "day": day, "entries": entries, "roll": roll, "alerts": alerts,
            "messages": messages, "reasons": list(ReportReason),
            "prev_day": day - timedelta(days=1), "next_day": day + timedelta(days=1),
            "csrf_token": fw.csrf_token(request),
        })


@routes.get(r"/staff/classes/{class_id:\d+}/today/rows")
async def today_rows(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        room = await class_in_scope(session, sr, int(request.match_info["class_id"]))
        day = _day(sr)
        entries = await register.day_reports(session, room.id, day)
        return render(sr, "staff/_today_rows.html", {
            "room": room, "day": day, "entries": entries, "csrf_token": fw.csrf_token(request),
        })


@routes.get(r"/staff/classes/{class_id:\d+}/today/stream")
async def today_stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: "changed" whenever the class's reports for the day change."""
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        room = await class_in_scope(session, sr, int(request.match_info["class_id"]))
        day = _day(sr)
    class_id = room.id

    async def stamp() -> object:
        # A fresh short session per poll: holding one open would pin a connection per page.
        async with app.sessions() as s:
            return (await register.change_stamp(s, class_id, day),
                    await rollcall.stamp(s, day, class_id=class_id))

    return await event_stream(request, stamp)


async def event_stream(
    request: web.Request, stamp: Callable[[], Awaitable[object]]
) -> web.StreamResponse:
    """Server-sent "changed" events whenever ``stamp()`` changes (live.changes)."""
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",  # a reverse proxy must not buffer the stream
    })
    await response.prepare(request)
    await response.write(b"retry: 3000\n: connected\n\n")
    try:
        async for changed in live.changes(stamp, change_bus(request.app)):
            await response.write(b"event: changed\ndata: {}\n\n" if changed else b": ping\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the page was closed
    return response


@routes.post(r"/staff/classes/{class_id:\d+}/reports/{report_id:\d+}/seen")
async def mark_seen(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        room = await class_in_scope(session, sr, int(request.match_info["class_id"]))
        report = await register.mark_seen(
            session, int(request.match_info["report_id"]), room.id, sr.staff, sr.now
        )
        if report is None:
            raise web.HTTPNotFound(text="not found")
        day = report.day
    change_bus(request.app).notify()
    if request.headers.get("Accept", "").startswith("application/json"):
        return web.json_response({"ok": True})
    raise web.HTTPSeeOther(f"/staff/classes/{room.id}/today?day={day.isoformat()}")


async def _grid(
    request: web.Request, action: str
) -> tuple[StaffRequest, Classroom, MonthRegister]:
    """The month's grid, its view noted in the audit log: one session, and on PostgreSQL
    one transaction (the page's share of the 40 a second of issue #17)."""
    app = fw.app_of(request)

    async def work() -> tuple[StaffRequest, Classroom, MonthRegister]:
        async with app.sessions() as session:
            sr, room = await staff_class_request(request, session,
                                                 int(request.match_info["class_id"]))
            year, month = _ym(sr)
            grid = await register.month_register(session, room, year, month, until=sr.today)
            await audit(sr, action, class_id=room.id, detail=f"{grid.year}-{grid.month:02d}",
                        session=session)
        return sr, room, grid

    return await retry_on_disconnect(work)


@routes.get(r"/staff/classes/{class_id:\d+}/month")
async def month(request: web.Request) -> web.Response:
    sr, room, grid = await _grid(request, "register.month")
    _ = fw.gettext_for(request)
    return render(sr, "staff/month.html", {
        "page_title": _("Attendance register: %(name)s") % {"name": room.name},
        "room": room, "grid": grid, "month_table": month_table,
        "ym": f"{grid.year}-{grid.month:02d}",
        "prev_ym": _shift(grid.year, grid.month, -1), "next_ym": _shift(grid.year, grid.month, 1),
    })


async def _printed(request: web.Request, action: str) -> tuple[StaffRequest, web.Response]:
    sr, room, grid = await _grid(request, action)
    return sr, render(sr, "staff/month_print.html", {
        "page_title": f"{room.name} {grid.year}年{grid.month}月 出席簿",
        "room": room, "grid": grid, "month_table": month_table, "now": sr.now,
        "lang": fw.language_of(request),
    })


@routes.get(r"/staff/classes/{class_id:\d+}/month/print")
async def month_print(request: web.Request) -> web.Response:
    return (await _printed(request, "register.print"))[1]


@routes.get(r"/staff/classes/{class_id:\d+}/month.pdf")
async def month_pdf(request: web.Request) -> web.Response:
    """The print view as a PDF file (one A4 landscape page per month)."""
    sr, page = await _printed(request, "register.pdf")
    assert isinstance(page.text, str)
    html = page.text.replace('<p class="noprint">', '<p class="noprint" hidden>', 1)
    # Chromium prints a file, not our server: the print styles go into the page itself.
    html = html.replace(f'<link rel="stylesheet" href="/static/{PRINT_CSS.name}">',
                        f"<style>{PRINT_CSS.read_text(encoding='utf-8')}</style>", 1)
    html = html.replace('<script src="/static/print.js" defer></script>', "", 1)
    try:
        body = await pdf.html_to_pdf(html)
    except pdf.PdfUnavailable as exc:
        raise web.HTTPServiceUnavailable(text="PDF is not available on this server") from exc
    name = (f"register-{request.match_info['class_id']}-{request.query.get('ym', 'month')}"
            f"-by-{sr.staff.id}.pdf")
    return web.Response(body=body, headers={
        "Content-Type": "application/pdf",
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",
    })


@routes.get(r"/staff/classes/{class_id:\d+}/month.csv")
async def month_csv(request: web.Request) -> web.Response:
    bom = int_param(request.query.get("bom"), 1) != 0
    sr, room, grid = await _grid(request, "register.csv")
    body = register.register_csv(grid, room.name, bom=bom, made_by=made_by(sr))
    filename = f"register-{room.id}-{grid.year}-{grid.month:02d}-by-{sr.staff.id}.csv"
    return web.Response(
        body=body,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
