"""A running broadcast's survey: its deadline (set, moved, closed now) and its questions.

Questions can be changed only while nobody has answered: once answers exist, changing them
would tally two different surveys as one. After the deadline nothing changes: the tally is
final. Same scope as the campaign page (webportal.staff.broadcast._campaign).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from models import Survey
from models.db import transaction
from renraku.services import broadcast as bc
from renraku.services import surveys
from renraku.services.broadcast_form import parse_questions, question_fields
from webportal.security import app_of
from webportal.staff.broadcast import campaign_in_scope
from webportal.staff.common import StaffRequest, int_param, render, staff_request
from webportal.templating import flash, gettext_for

routes = web.RouteTableDef()


async def _page(sr: StaffRequest, survey: Survey, *, form: dict[str, str] | None = None,
                error: str = "", status: int = 200) -> web.Response:
    _ = gettext_for(sr.request)
    now = sr.app.clock.now()
    async with sr.app.sessions() as s:
        answers = await surveys.answer_count(s, survey.id)
        questions = await bc.survey_questions(s, survey.id)
    closes = (survey.closes_at.astimezone(ZoneInfo(sr.school.timezone)).strftime("%Y-%m-%dT%H:%M")
              if survey.closes_at else "")
    return render(sr, "staff/survey_edit.html", {
        "page_title": _("Survey: %(title)s", title=survey.title), "survey": survey,
        "form": form or {**question_fields(questions), "closes_at": closes},
        "answers": answers, "closed": surveys.is_closed(survey, now), "error": error,
        "campaign_id": sr.request.match_info["cid"],
    }, status=status)


async def _survey(sr: StaffRequest, s: AsyncSession) -> Survey:
    campaign = await campaign_in_scope(s, sr, int_param(sr.request.match_info["cid"]))
    survey = await s.get(Survey, campaign.survey_id) if campaign.survey_id else None
    if survey is None:
        raise web.HTTPNotFound(text="no survey")
    return survey


@routes.get(r"/staff/broadcasts/{cid:\d+}/survey")
async def survey_page(request: web.Request) -> web.Response:
    async with app_of(request).sessions() as s:
        sr = await staff_request(request, s)
        survey = await _survey(sr, s)
    return await _page(sr, survey)


@routes.post(r"/staff/broadcasts/{cid:\d+}/survey")
async def survey_save(request: web.Request) -> web.Response:
    """``action`` = deadline (set or clear ``closes_at``) | close (now) | questions."""
    _ = gettext_for(request)
    app = app_of(request)
    data = await request.post()
    form = {k: str(v) for k, v in data.items()}
    action = form.get("action", "")
    now = app.clock.now()
    async with transaction(app.sessions) as s:
        sr = await staff_request(request, s)
        survey = await _survey(sr, s)
        try:
            if action == "close":
                surveys.set_deadline(survey, now, now)
                done = _("The survey is closed. Its tally is final.")
            elif action == "deadline":
                raw = form.get("closes_at", "").strip()
                closes = None
                if raw:
                    try:
                        closes = datetime.fromisoformat(raw).replace(
                            tzinfo=ZoneInfo(sr.school.timezone))
                    except ValueError:
                        return await _page(sr, survey, form=form, status=400, error=_(
                            "Give the survey deadline as a date and time."))
                    if closes <= now:
                        return await _page(sr, survey, form=form, status=400, error=_(
                            "The deadline must be in the future. To stop answers now, use "
                            "“Close now”."))
                surveys.set_deadline(survey, closes, now)
                done = _("The deadline has been saved.")
            elif action == "questions":
                questions = parse_questions(lambda k: form.get(k, ""))
                try:
                    await surveys.replace_questions(s, survey, questions, now)
                except ValueError:
                    return await _page(sr, survey, form=form, status=400, error=_(
                        "Survey: at most 5 questions, each with Japanese text and at least "
                        "two options on keys 1–9."))
                done = _("The questions have been changed.")
            else:
                raise web.HTTPBadRequest(text="unknown action")
        except surveys.SurveyClosed:
            return await _page(sr, survey, form=form, status=409, error=_(
                "This survey is closed: its deadline and questions can no longer change."))
        except surveys.SurveyAnswered:
            return await _page(sr, survey, form=form, status=409, error=_(
                "Families have already answered, so the questions can no longer be changed. "
                "Send a new survey instead."))
    flash(request, done)
    raise web.HTTPSeeOther(request.path)
