"""Signed-in guardian pages for one child: notices, calendar, absences, family events, surveys."""

from __future__ import annotations

import calendar as pycalendar
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from aiohttp import web
from babel import Locale
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import AbsenceReport, FamilyEvent
from models.db import transaction
from models.enums import Channel, ReportKind, ReportReason, ReportStatus, Symptom
from renraku.rules.schoolday import ClassRef, DayChange, SchoolCalendar
from renraku.services import absences, portal, receipts, surveys
from renraku.services.broadcast import record_answer
from renraku.services.schools import class_on, report_day_for, school_calendar
from webportal import i18n
from webportal.guardian.common import ChildPage, child_page, int_match, render_child
from webportal.security import app_of, require_guardian, safe_next, signed_guardian
from webportal.templating import flash, gettext_for, language_of

routes = web.RouteTableDef()
MAX_RANGE_DAYS = 62


@routes.get("/home")
@require_guardian
async def home(request: web.Request) -> web.Response:
    async with app_of(request).sessions() as s:
        children = await portal.guardian_children(s, signed_guardian(request).id)
    if not children:
        raise web.HTTPFound("/settings")
    raise web.HTTPFound(f"/c/{children[0].id}")


@routes.get(r"/c/{child_id:\d+}")
@require_guardian
async def child_home(request: web.Request) -> web.Response:
    lang = language_of(request)
    async with app_of(request).sessions() as s:
        cp = await child_page(request, s)
        notices = await portal.notices_for_child(s, cp.child, cp.now)
        earliest = await report_day_for(s, cp.app.clock, cp.child.school)
        upcoming = await absences.active_reports(s, [cp.child.id], earliest)
        unread = await receipts.unread(s, [n.id for n in notices], cp.child.id)
    if unread:  # opened by a guardian of the family: read (the teacher sees it)
        async with transaction(cp.app.sessions) as s:
            await receipts.mark_read(s, unread, cp.child.id, cp.guardian.id, cp.now)
    shown = [(n, *portal.notice_text(n, lang)) for n in notices]
    return render_child(cp, "guardian/home.html", {"notices": shown, "upcoming": upcoming},
                        "home")


def _month(value: str | None, today: date) -> date:
    try:
        year, month = (int(p) for p in (value or "").split("-"))
        return date(year, month, 1)
    except ValueError:
        return today.replace(day=1)


@routes.get(r"/c/{child_id:\d+}/calendar")
@require_guardian
async def calendar_page(request: web.Request) -> web.Response:
    lang = language_of(request)
    async with app_of(request).sessions() as s:
        cp = await child_page(request, s)
        first = _month(request.query.get("m"), cp.today)
        last = first.replace(day=pycalendar.monthrange(first.year, first.month)[1])
        items = await portal.month_items(s, cp.child, first, last)
        school_cal, room = await _class_calendar(s, cp, first)
        earliest = await report_day_for(s, cp.app.clock, cp.child.school)
    # Weeks start on the locale's first weekday (Sunday in Japan, Monday in Spain).
    first_wd = Locale.parse(i18n.BABEL_LOCALE[lang]).first_week_day
    weeks = pycalendar.Calendar(first_wd).monthdatescalendar(first.year, first.month)
    names = i18n.weekday_names(lang)
    prev_m = (first - timedelta(days=1)).replace(day=1)
    next_m = last + timedelta(days=1)
    return render_child(cp, "guardian/calendar.html", {
        "first": first, "weeks": weeks, "items": items,
        "weekday_header": [names[(first_wd + i) % 7] for i in range(7)],
        "is_school_day": lambda d: school_cal.is_school_day(d, room), "today_local": cp.today,
        "prev": f"{prev_m:%Y-%m}", "next": f"{next_m:%Y-%m}", "earliest": earliest,
        "month_list": sorted(items.items()),
    }, "calendar")


# ---------------------------------------------------------------------------------------------
# Absence, late arrival, early leave


def _parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def _parse_time(value: str) -> time | None:
    try:
        return time.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None


def _report_form(data: dict[str, str], earliest: date,
                 _: Callable[..., str]) -> tuple[dict[str, Any], str]:
    """Checked fields, or an error message for the first wrong one."""
    first = _parse_day(data.get("day", ""))
    last = _parse_day(data.get("until", "")) if data.get("until", "").strip() else first
    kind, reason = data.get("kind", ""), data.get("reason", "")
    at = _parse_time(data.get("at_time", ""))
    memo = data.get("memo", "").strip()[:1000]
    if first is None or last is None:
        return {}, _("Choose a date.")
    if first < earliest:
        return {}, _("Reports on the web are possible from %(day)s. For an earlier day, please "
                     "call the school.", day=i18n.format_day(earliest, data["_lang"]))
    if last < first or (last - first).days > MAX_RANGE_DAYS:
        return {}, _("The end date must be on or after the start date, within two months.")
    if kind not in {k.value for k in ReportKind}:
        return {}, _("Choose absence, late arrival or early leave.")
    if reason not in {r.value for r in ReportReason}:
        return {}, _("Choose a reason.")
    if kind != ReportKind.ABSENCE and at is None:
        return {}, _("Enter the time of arrival or leaving.")
    symptom = data.get("symptom", "")
    if symptom and symptom not in {v.value for v in Symptom}:
        return {}, _("Choose a symptom from the list.")
    return {"first": first, "last": last, "kind": kind, "reason": reason,
            "at": at if kind != ReportKind.ABSENCE else None, "memo": memo,
            "symptom": Symptom(symptom) if symptom else None}, ""


async def _class_calendar(s: AsyncSession, cp: ChildPage,
                          day: date) -> tuple[SchoolCalendar, ClassRef | None]:
    """The school's calendar and the child's class on ``day``, for class closures."""
    return await school_calendar(s, cp.child.school), await class_on(s, cp.child.id, day)


def _closed_error(closures: list[DayChange], _: Callable[..., str], lang: str) -> str:
    first = closures[0]
    return _("The class is closed (%(name)s) from %(start)s to %(end)s: no report is needed "
             "for those days.", name=first.name or _("class closure"),
             start=i18n.format_day(first.start, lang), end=i18n.format_day(first.end, lang))


@routes.get(r"/c/{child_id:\d+}/absence/new")
@require_guardian
async def absence_form(request: web.Request) -> web.Response:
    async with app_of(request).sessions() as s:
        cp = await child_page(request, s)
        earliest = await report_day_for(s, cp.app.clock, cp.child.school)
        cal, room = await _class_calendar(s, cp, earliest)
    day = _parse_day(request.query.get("day", "")) or earliest
    form = {"day": max(day, earliest).isoformat(), "kind": "absence", "reason": "illness"}
    # Closures of the child's class in the coming weeks, so nobody reports a closed day.
    closures = cal.class_closures(room, earliest, earliest + timedelta(days=MAX_RANGE_DAYS))
    return render_child(cp, "guardian/absence_form.html",
                        {"form": form, "earliest": earliest, "report": None,
                         "closures": closures}, "absence")


@routes.post(r"/c/{child_id:\d+}/absence/new")
@require_guardian
async def absence_submit(request: web.Request) -> web.Response:
    _ = gettext_for(request)
    data = {k: str(v) for k, v in (await request.post()).items()}
    data["_lang"] = language_of(request)
    async with transaction(app_of(request).sessions) as s:
        cp = await child_page(request, s)
        earliest = await report_day_for(s, cp.app.clock, cp.child.school)
        form, error = _report_form(data, earliest, _)
        days: list[date] = []
        if not error:
            cal, room = await _class_calendar(s, cp, form["first"])
            # Days the class is closed are left out: nobody is absent from a closed class.
            days = cal.school_days(form["first"], form["last"], room)
            closures = cal.class_closures(room, form["first"], form["last"])
            if not days and closures:
                error = _closed_error(closures, _, data["_lang"])
            elif not days:
                error = _("There is no school day in that period.")
        if error:
            return render_child(cp, "guardian/absence_form.html",
                                {"form": data, "earliest": earliest, "error": error,
                                 "report": None}, "absence", status=400)
        for day in days:  # a range is one report per school day, as the register counts
            await absences.submit(
                s, absences.ReportDraft(cp.child.id, day, ReportKind(form["kind"]),
                                        ReportReason(form["reason"]), form["at"], form["memo"],
                                        form["symptom"]),
                channel=Channel.WEB, guardian_id=cp.guardian.id, now=cp.now)
    flash(request, _("Your report has been sent to the school (%(n)s school days).", n=len(days)))
    raise web.HTTPFound(f"/c/{cp.child.id}/calendar?m={days[0]:%Y-%m}")


async def _own_report(s: AsyncSession, cp: ChildPage, request: web.Request) -> AbsenceReport:
    report = await s.get(AbsenceReport, int_match(request, "report_id"),
                         options=[selectinload(AbsenceReport.changes)])
    if report is None or report.child_id != cp.child.id:
        raise web.HTTPNotFound()
    return report


@routes.get(r"/c/{child_id:\d+}/absence/{report_id:\d+}")
@require_guardian
async def report_edit_form(request: web.Request) -> web.Response:
    async with app_of(request).sessions() as s:
        cp = await child_page(request, s)
        report = await _own_report(s, cp, request)
        earliest = await report_day_for(s, cp.app.clock, cp.child.school)
    editable = report.status == ReportStatus.ACTIVE and report.day >= earliest
    form = {"day": report.day.isoformat(), "kind": report.kind, "reason": report.reason,
            "symptom": report.symptom or "",
            "at_time": report.at_time.strftime("%H:%M") if report.at_time else "",
            "memo": report.memo}
    return render_child(cp, "guardian/absence_form.html", {
        "form": form, "earliest": earliest, "report": report, "editable": editable,
    }, "absence")


@routes.post(r"/c/{child_id:\d+}/absence/{report_id:\d+}")
@require_guardian
async def report_edit_submit(request: web.Request) -> web.Response:
    _ = gettext_for(request)
    data = {k: str(v) for k, v in (await request.post()).items()}
    data["_lang"] = language_of(request)
    data["until"] = ""  # a change is about one day
    try:
        async with transaction(app_of(request).sessions) as s:
            cp = await child_page(request, s)
            report = await _own_report(s, cp, request)
            earliest = await report_day_for(s, cp.app.clock, cp.child.school)
            form, error = _report_form(data, earliest, _)
            if not error and (report.status != ReportStatus.ACTIVE or report.day < earliest):
                error = _("This report can no longer be changed. Please call the school.")
            if not error:
                cal, room = await _class_calendar(s, cp, form["first"])
                closures = cal.class_closures(room, form["first"], form["first"])
                if closures:
                    error = _closed_error(closures, _, data["_lang"])
                elif not cal.is_school_day(form["first"]):
                    error = _("There is no school day in that period.")
            if error:
                return render_child(cp, "guardian/absence_form.html", {
                    "form": data, "earliest": earliest, "error": error, "report": report,
                    "editable": True}, "absence", status=400)
            await absences.change(
                s, report, absences.ReportDraft(cp.child.id, form["first"],
                                                ReportKind(form["kind"]),
                                                ReportReason(form["reason"]), form["at"],
                                                form["memo"], form["symptom"]),
                channel=Channel.WEB, guardian_id=cp.guardian.id, now=cp.now)
    except IntegrityError:
        flash(request, _("There is already a report of this kind for that day."), "error")
        raise web.HTTPFound(request.path) from None
    flash(request, _("The report has been changed."))
    raise web.HTTPFound(f"/c/{cp.child.id}/calendar?m={form['first']:%Y-%m}")


@routes.post(r"/c/{child_id:\d+}/absence/{report_id:\d+}/cancel")
@require_guardian
async def report_cancel(request: web.Request) -> web.Response:
    _ = gettext_for(request)
    async with transaction(app_of(request).sessions) as s:
        cp = await child_page(request, s)
        report = await _own_report(s, cp, request)
        earliest = await report_day_for(s, cp.app.clock, cp.child.school)
        if report.day < earliest:
            flash(request, _("This report can no longer be changed. Please call the school."),
                  "error")
            raise web.HTTPFound(f"/c/{cp.child.id}/absence/{report.id}")
        await absences.cancel(s, report, channel=Channel.WEB, guardian_id=cp.guardian.id,
                              now=cp.now)
    flash(request, _("The report has been cancelled."))
    # From the absence history the guardian goes back there; otherwise to the calendar.
    raise web.HTTPFound(safe_next(str((await request.post()).get("next", "")),
                                  f"/c/{cp.child.id}/calendar?m={report.day:%Y-%m}"))


# ---------------------------------------------------------------------------------------------
# Family events: seen by this child's guardians only


@routes.get(r"/c/{child_id:\d+}/family/new")
@require_guardian
async def family_form(request: web.Request) -> web.Response:
    async with app_of(request).sessions() as s:
        cp = await child_page(request, s)
    day = _parse_day(request.query.get("day", "")) or cp.today
    return render_child(cp, "guardian/family_form.html", {"form": {"day": day.isoformat()}},
                        "calendar")


@routes.post(r"/c/{child_id:\d+}/family/new")
@require_guardian
async def family_submit(request: web.Request) -> web.Response:
    _ = gettext_for(request)
    data = {k: str(v) for k, v in (await request.post()).items()}
    async with transaction(app_of(request).sessions) as s:
        cp = await child_page(request, s)
        day = _parse_day(data.get("day", ""))
        start_t, end_t = _parse_time(data.get("start", "")), _parse_time(data.get("end", ""))
        title = data.get("title", "").strip()[:200]
        error = ""
        if not title:
            error = _("Enter a title.")
        elif day is None:
            error = _("Choose a date.")
        elif start_t and end_t and end_t < start_t:
            error = _("The end time must be after the start time.")
        if error:
            return render_child(cp, "guardian/family_form.html", {"form": data, "error": error},
                                "calendar", status=400)
        assert day is not None
        all_day = start_t is None
        starts = datetime.combine(day, start_t or time(0), cp.tz)
        ends = (datetime.combine(day, end_t, cp.tz) if end_t else
                starts + (timedelta(days=1) if all_day else timedelta(hours=1)))
        s.add(FamilyEvent(child_id=cp.child.id, created_by=cp.guardian.id, title=title,
                          starts_at=starts, ends_at=ends, all_day=all_day,
                          note=data.get("note", "").strip()[:1000], created_at=cp.now))
    flash(request, _("The family event has been added. Only this child's guardians see it."))
    raise web.HTTPFound(f"/c/{cp.child.id}/calendar?m={day:%Y-%m}")


@routes.post(r"/c/{child_id:\d+}/family/{event_id:\d+}/delete")
@require_guardian
async def family_delete(request: web.Request) -> web.Response:
    _ = gettext_for(request)
    async with transaction(app_of(request).sessions) as s:
        cp = await child_page(request, s)
        event = await s.get(FamilyEvent, int_match(request, "event_id"))
        if event is None or event.child_id != cp.child.id or event.deleted_at is not None:
            raise web.HTTPNotFound()
        event.deleted_at = cp.now
        month = event.starts_at.astimezone(cp.tz)
    flash(request, _("The family event has been deleted."))
    raise web.HTTPFound(f"/c/{cp.child.id}/calendar?m={month:%Y-%m}")


# ---------------------------------------------------------------------------------------------
# Surveys: the primary guardian answers for the child; the others see the answers


@routes.get(r"/c/{child_id:\d+}/surveys")
@require_guardian
async def surveys_page(request: web.Request) -> web.Response:
    lang = language_of(request)
    async with app_of(request).sessions() as s:
        cp = await child_page(request, s)
        rows = []
        for survey in await portal.child_surveys(s, cp.child):
            answers = await portal.survey_answers(s, survey, cp.child.id)
            rows.append({"survey": survey, "answers": answers,
                         "closed": surveys.is_closed(survey, cp.now)})
    return render_child(cp, "guardian/surveys.html",
                        {"rows": rows, "text": lambda t: portal.localized(t, lang)}, "surveys")


@routes.post(r"/c/{child_id:\d+}/surveys/{survey_id:\d+}")
@require_guardian
async def survey_answer(request: web.Request) -> web.Response:
    _ = gettext_for(request)
    data = await request.post()
    back = f"/c/{int_match(request, 'child_id')}/surveys"
    try:
        async with transaction(app_of(request).sessions) as s:
            cp = await child_page(request, s)
            if not cp.is_primary:
                raise web.HTTPForbidden(text="Only the primary guardian answers surveys")
            survey_id = int_match(request, "survey_id")
            survey = next((x for x in await portal.child_surveys(s, cp.child)
                           if x.id == survey_id), None)
            if survey is None:
                raise web.HTTPNotFound()
            tz = cp.child.school.timezone
            for question in survey.questions:  # refused as a whole after the deadline
                raw = str(data.get(f"q{question.id}", ""))
                if raw.isdigit():
                    await record_answer(s, question_id=question.id, digit=int(raw),
                                        child_ids=[cp.child.id], channel=Channel.WEB,
                                        now=cp.now, guardian_id=cp.guardian.id)
    except surveys.SurveyClosed as closed:
        flash(request, _("This survey closed on %(when)s. Answers are no longer accepted.",
                         when=i18n.format_datetime(closed.closes_at, language_of(request), tz)),
              "error")
        raise web.HTTPFound(back) from None
    flash(request, _("Thank you. Your answers have been sent."))
    raise web.HTTPFound(back)
