"""The school calendar page: terms of an academic year (admin), closures and extra school
days (admin: school-wide and grades; a class's teacher: closures of their class), and the
year's national holidays (read only, from the holidays library)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncSession

from models import Term
from models.db import transaction
from renraku.rules.jp_holidays import japan_holidays
from renraku.rules.permissions import can_change_calendar, can_manage_terms
from renraku.rules.schoolday import academic_year, academic_year_bounds
from renraku.services import school_calendar as cal
from webportal.staff import fw
from webportal.staff.common import (
    StaffRequest,
    classes_in_scope,
    int_param,
    render,
    staff_request,
)

routes = web.RouteTableDef()
PAGE = "/staff/calendar"
RECENT_DAYS = 31  # changes that ended this long ago still show (to correct a mistake)


def _messages(_: Callable[..., str]) -> dict[str, str]:
    return {
        "name": _("Give the term a name."),
        "order": _("The end date must be on or after the start date."),
        "outside_year": _("A term must lie within one academic year (April to March)."),
        "overlap": _("This term overlaps another term."),
        "too_long": _("A closure or school day can cover at most one year."),
        "scope": _("Choose either a class or a grade, not both."),
        "open_scope": _("Extra school days are for the whole school."),
        "grade": _("Choose a grade from 1 to 9."),
        "class": _("Choose one of your school's classes."),
        "date": _("Enter the dates as YYYY-MM-DD."),
    }


def _year(sr: StaffRequest) -> int:
    year = int_param(sr.request.query.get("year"), academic_year(sr.today))
    assert year is not None
    if not 2000 <= year <= 2100:
        raise web.HTTPBadRequest(text="bad year")
    return year


async def _page(request: web.Request, error: str = "", status: int = 200,
                year: int | None = None) -> web.Response:
    async with fw.app_of(request).sessions() as session:
        sr = await staff_request(request, session)
        year = year or _year(sr)
        rooms = await classes_in_scope(session, sr)
        names = {r.id: r.name for r in rooms}
        changes = [
            {"change": c, "class_name": names.get(c.class_id or 0, ""),
             "deletable": can_change_calendar(sr.scope, sr.school.id, c.class_id)}
            for c in await cal.changes_from(session, sr.school.id,
                                            sr.today - timedelta(days=RECENT_DAYS))
            if c.class_id is None or c.class_id in names
        ]
        first, last = academic_year_bounds(year)
        holidays = japan_holidays()
        _ = fw.gettext_for(request)
        return render(sr, "staff/school_calendar.html", {
            "page_title": _("School calendar"), "year": year, "error": error,
            "terms": await cal.year_terms(session, sr.school.id, year),
            "can_terms": can_manage_terms(sr.scope, sr.school.id),
            "changes": changes, "rooms": rooms,
            "holidays": [(d, holidays.get(d, "")) for d in _days(first, last) if d in holidays],
            "csrf_token": fw.csrf_token(request),
        }, status=status)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@routes.get(PAGE)
async def page(request: web.Request) -> web.Response:
    return await _page(request)


def _dates(data: MultiDictProxy[Any]) -> tuple[date, date]:
    try:
        start = date.fromisoformat(str(data.get("start", "")).strip())
        end_text = str(data.get("end", "")).strip()
        return start, date.fromisoformat(end_text) if end_text else start
    except ValueError as exc:
        raise cal.CalendarInputError("date") from exc


async def _save(request: web.Request,
                action: Callable[[AsyncSession, StaffRequest, MultiDictProxy[Any]],
                                 Awaitable[int]]) -> web.Response:
    """Run ``action`` in one transaction; bad input → the page again with the reason."""
    data = await request.post()
    try:
        async with transaction(fw.app_of(request).sessions) as session:
            sr = await staff_request(request, session)
            year = await action(session, sr, data)
    except cal.CalendarInputError as exc:
        _ = fw.gettext_for(request)
        return await _page(request, _messages(_).get(str(exc), str(exc)), 400)
    raise web.HTTPSeeOther(f"{PAGE}?year={year}")


def _terms_admin(sr: StaffRequest) -> None:
    if not can_manage_terms(sr.scope, sr.school.id):
        raise web.HTTPForbidden(text="forbidden")


@routes.post(PAGE + "/terms")
async def add_term(request: web.Request) -> web.Response:
    async def action(session: AsyncSession, sr: StaffRequest, data: MultiDictProxy[Any]) -> int:
        _terms_admin(sr)
        start, end = _dates(data)
        await cal.add_term(session, sr.school.id, str(data.get("name", "")), start, end)
        return academic_year(start)

    return await _save(request, action)


async def _term(session: AsyncSession, sr: StaffRequest, request: web.Request) -> Term:
    _terms_admin(sr)
    term = await cal.school_term(session, sr.school.id, int(request.match_info["term_id"]))
    if term is None:
        raise web.HTTPNotFound(text="not found")
    return term


@routes.post(PAGE + r"/terms/{term_id:\d+}")
async def edit_term(request: web.Request) -> web.Response:
    async def action(session: AsyncSession, sr: StaffRequest, data: MultiDictProxy[Any]) -> int:
        term = await _term(session, sr, request)
        start, end = _dates(data)
        await cal.edit_term(session, term, str(data.get("name", "")), start, end)
        return academic_year(start)

    return await _save(request, action)


@routes.post(PAGE + r"/terms/{term_id:\d+}/delete")
async def delete_term(request: web.Request) -> web.Response:
    async def action(session: AsyncSession, sr: StaffRequest, data: MultiDictProxy[Any]) -> int:
        term = await _term(session, sr, request)
        await cal.delete_term(session, term)
        return academic_year(term.start_date)

    return await _save(request, action)


@routes.post(PAGE + "/changes")
async def add_change(request: web.Request) -> web.Response:
    async def action(session: AsyncSession, sr: StaffRequest, data: MultiDictProxy[Any]) -> int:
        scope = str(data.get("scope", "class"))
        start, end = _dates(data)
        class_id = int_param(str(data.get("class_id", ""))) if scope == "class" else None
        grade = int_param(str(data.get("grade", ""))) if scope == "grade" else None
        if scope == "class" and class_id is None:
            raise cal.CalendarInputError("class")
        if scope == "grade" and grade is None:
            raise cal.CalendarInputError("grade")
        if not can_change_calendar(sr.scope, sr.school.id, class_id):
            raise web.HTTPForbidden(text="forbidden")
        await cal.add_change(session, sr.school.id, start, end, open_day=scope == "open",
                             name=str(data.get("name", "")), class_id=class_id, grade=grade,
                             staff_id=sr.staff.id)
        return academic_year(start)

    return await _save(request, action)


@routes.post(PAGE + r"/changes/{change_id:\d+}/delete")
async def delete_change(request: web.Request) -> web.Response:
    async def action(session: AsyncSession, sr: StaffRequest, data: MultiDictProxy[Any]) -> int:
        change = await cal.school_change(session, sr.school.id,
                                         int(request.match_info["change_id"]))
        if change is None:
            raise web.HTTPNotFound(text="not found")
        if not can_change_calendar(sr.scope, sr.school.id, change.class_id):
            raise web.HTTPForbidden(text="forbidden")
        await cal.delete_change(session, change)
        return academic_year(change.start_date)

    return await _save(request, action)
