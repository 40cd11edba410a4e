"""The school's settings page (admins of that school only): name and its reading, timezone,
phone cutoff, the phone line's languages and number, the broadcast calling window, school
days of the week. Checked by renraku.rules.school_settings; every bad field is shown."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from babel.dates import get_day_names
from multidict import MultiDictProxy

from models.db import transaction
from renraku.rules.permissions import can_manage_school
from renraku.rules.phone import PhoneNumber
from renraku.rules.school_settings import (
    InvalidSchoolSettings,
    SchoolSettings,
    parse_school_settings,
)
from renraku.services.schools import apply_settings, current_settings
from renraku.settings import LANGUAGES
from webportal import speech
from webportal.staff import fw
from webportal.staff.common import BABEL, StaffRequest, render, staff_request

routes = web.RouteTableDef()


def _errors(_: Any) -> dict[str, str]:
    return {
        "name": _("Enter the school's official name (at most 200 characters)."),
        "reading": _("The reading can be at most 200 characters."),
        "timezone": _("Unknown timezone. Use a name such as Asia/Tokyo."),
        "cutoff": _("Enter the cutoff as a time, e.g. 20:00."),
        "languages": _("Offer at least one language on the phone line."),
        "absence_line": _("That phone number is not valid. Include the area code, "
                          "e.g. 03-1234-5678."),
        "call_window": _("Enter both times of the calling window, the start before the end, "
                         "or leave both empty."),
        "weekdays": _("Choose at least one school day of the week."),
    }


def _form_of(values: SchoolSettings) -> dict[str, Any]:
    window = values.call_window or ("", "")
    return {
        "name": values.name, "reading": values.reading, "timezone": values.timezone,
        "cutoff": values.phone_cutoff.strftime("%H:%M"), "languages": list(values.languages),
        "absence_line": PhoneNumber(values.absence_line_e164, "").national
        if values.absence_line_e164 else "",
        "window_start": window[0], "window_end": window[1],
        "weekdays": [str(d) for d in values.school_weekdays],
    }


def _form_posted(data: MultiDictProxy[Any]) -> dict[str, Any]:
    one = {k: str(data.get(k, "")) for k in ("name", "reading", "timezone", "cutoff",
                                               "absence_line", "window_start", "window_end")}
    return {**one, "languages": [str(v) for v in data.getall("language", [])],
            "weekdays": [str(v) for v in data.getall("weekday", [])]}


async def _page(sr: StaffRequest, form: dict[str, Any], errors: dict[str, str] | None = None,
                saved: bool = False, status: int = 200) -> web.Response:
    _ = fw.gettext_for(sr.request)
    days = get_day_names("wide", locale=BABEL.get(fw.language_of(sr.request), "ja"))
    default_window = (sr.app.settings.calling_window_start, sr.app.settings.calling_window_end)
    return render(sr, "staff/school_settings.html", {
        "page_title": _("School settings"), "form": form, "errors": errors or {},
        "saved": saved, "all_languages": LANGUAGES, "default_window": default_window,
        "weekday_names": [(str(i + 1), days[i]) for i in range(7)],
        "csrf_token": fw.csrf_token(sr.request),
    }, status=status)


async def _admin(request: web.Request, session: Any) -> StaffRequest:
    sr = await staff_request(request, session)
    if not can_manage_school(sr.scope, sr.school.id):
        raise web.HTTPForbidden(text="forbidden")
    return sr


@routes.get("/staff/school")
async def settings_form(request: web.Request) -> web.Response:
    async with fw.app_of(request).sessions() as session:
        sr = await _admin(request, session)
        return await _page(sr, _form_of(current_settings(sr.school)),
                           saved=request.query.get("saved") == "1")


@routes.post("/staff/school")
async def settings_save(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    form = _form_posted(await request.post())
    try:
        values = parse_school_settings(
            name=form["name"], reading=form["reading"], timezone=form["timezone"],
            cutoff=form["cutoff"], languages=form["languages"],
            absence_line=form["absence_line"], window_start=form["window_start"],
            window_end=form["window_end"], weekdays=form["weekdays"],
            region=app.settings.default_region)
    except InvalidSchoolSettings as exc:
        async with app.sessions() as session:
            sr = await _admin(request, session)
            texts = _errors(fw.gettext_for(request))
            return await _page(sr, form, {f: texts[f] for f in exc.errors}, status=400)
    async with transaction(app.sessions) as session:
        sr = await _admin(request, session)
        apply_settings(sr.school, values)
        school = sr.school
    speech.render_school_welcome(request, school)
    raise web.HTTPSeeOther("/staff/school?saved=1")
