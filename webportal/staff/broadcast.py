"""The broadcast console (staff), the no-login survey answer page (``/s/<token>``) and the
no-login message page of the email's tracked link (``/m/<token>``).

Compose (message per language or a recording; voice, email or both; school / grades /
classes / children; optional survey; now or scheduled; calling window) → preview
(households, calls, emails, estimated time) → send. The campaign page shows live progress
(polled JSON, once a second), survey tally bars, pause / resume / cancel, the results
CSV, and who has read it per family (email link / call heard / web) with a one-click
resend to the unread (renraku.services.broadcast_reads). The dialer (``renraku dialer``)
does the calling; this module only writes rows.

Scope: an admin may address the whole school or any grade, class or child; a teacher only
their own classes and the children in them.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Campaign, Child, Classroom, Enrolment, Prompt, School, Survey
from models.db import transaction
from prompts import store
from prompts.store import RecordingError
from renraku.i18n import N_
from renraku.rules import campaign as rules
from renraku.services import broadcast as bc
from renraku.services import broadcast_mail as bm
from renraku.services import broadcast_reads as reads
from renraku.services import surveys
from renraku.services.broadcast_form import CampaignRequest, parse_compose
from renraku.services.schools import calling_window
from renraku.services.staff import school_classes
from webportal import i18n
from webportal.security import app_of, csrf_token
from webportal.staff.common import StaffRequest, audit, int_param, render, staff_request
from webportal.templating import flash, gettext_for, language_of
from webportal.templating import render as render_page

routes = web.RouteTableDef()


STATE_KEYS = ("queued", "ringing", "answered", "completed", "left_message", "hung_up",
              "busy", "no_answer", "failed", "retrying")


def _labels(_: Any) -> dict[str, str]:
    return {
        "queued": _("Queued"), "ringing": _("Ringing"), "answered": _("Answered"),
        "completed": _("Completed"), "left_message": _("Left message"),
        "hung_up": _("Hung up early"), "busy": _("Busy"), "no_answer": _("No answer"),
        "failed": _("Failed"), "retrying": _("Retrying"),
        "draft": _("Draft"), "scheduled": _("Scheduled"), "running": _("Running"),
        "paused": _("Paused"), "cancelled": _("Cancelled"),
    }


async def _visible_classes(session: AsyncSession, sr: StaffRequest) -> list[Classroom]:
    rooms = await school_classes(session, sr.school.id)
    if sr.scope.is_admin:
        return rooms
    return [r for r in rooms if r.id in sr.scope.class_ids]


async def _children(session: AsyncSession, class_ids: list[int]) -> list[tuple[Child, int]]:
    rows = await session.execute(
        select(Child, Enrolment.class_id)
        .join(Enrolment, Enrolment.child_id == Child.id)
        .where(Enrolment.class_id.in_(class_ids), Child.active.is_(True))
        .order_by(Enrolment.class_id, Child.reading, Child.id)
    )
    return [(c, cid) for c, cid in rows]


async def _target_allowed(session: AsyncSession, sr: StaffRequest, target: dict) -> bool:
    if sr.scope.is_admin:
        if target.get("classes"):
            ok = {r.id for r in await school_classes(session, sr.school.id)}
            return set(target["classes"]) <= ok
        if target.get("children"):
            found = await session.scalars(
                select(Child.id).where(Child.id.in_(target["children"]),
                                       Child.school_id == sr.school.id))
            return set(found) == set(target["children"])
        return True
    mine = set(sr.scope.class_ids)
    if target.get("classes"):
        return set(target["classes"]) <= mine
    if target.get("children"):
        rows = await session.scalars(
            select(Enrolment.child_id).where(Enrolment.child_id.in_(target["children"]),
                                             Enrolment.class_id.in_(mine)))
        return set(rows) == set(target["children"])
    return False  # the school or a grade: the admin's


async def _recordings(session: AsyncSession) -> list[str]:
    rows = await session.scalars(
        select(Prompt.key).where(Prompt.source == "recorded", Prompt.active.is_(True))
        .distinct().order_by(Prompt.key)
    )
    return list(rows)


def _fmt_duration(seconds: int, _: Any) -> str:
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return _("about %(n)s min", n=minutes)
    return _("about %(h)s h %(m)s min", h=minutes // 60, m=minutes % 60)


async def _compose_page(
    request: web.Request, session: AsyncSession, sr: StaffRequest, *,
    form: dict[str, Any] | None = None, errors: list[str] | None = None,
    preview: bc.Preview | None = None, status: int = 200,
) -> web.Response:
    _ = gettext_for(request)
    rooms = await _visible_classes(session, sr)
    window = calling_window(sr.school, sr.app.settings)
    return render(sr, "staff/broadcast_new.html", {
        "page_title": _("New broadcast"),
        "classes": rooms,
        "grades": sorted({r.grade for r in rooms if r.grade}),
        "children": await _children(session, [r.id for r in rooms]),
        "recordings": await _recordings(session),
        "form": form or {"window_start": window[0], "window_end": window[1],
                         "channel": "voice",
                         "target": "school" if sr.scope.is_admin else "classes"},
        "errors": errors or [],
        "preview": preview,
        "duration": _fmt_duration(preview.estimated_s, _) if preview else "",
        "csrf_token": csrf_token(request),
    }, status=status)


@routes.get("/staff/broadcasts")
async def campaigns(request: web.Request) -> web.Response:
    app = app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        q = select(Campaign).where(Campaign.school_id == sr.school.id,
                                   Campaign.flow == "broadcast")  # not the follow-up calls
        if not sr.scope.is_admin:
            q = q.where(Campaign.created_by == sr.staff.id)
        rows = list(await session.scalars(q.order_by(Campaign.id.desc()).limit(100)))
        _ = gettext_for(request)
        return render(sr, "staff/broadcast_list.html", {
            "page_title": _("Broadcasts"), "campaigns": rows, "labels": _labels(_),
        })


@routes.get("/staff/broadcasts/new")
async def new(request: web.Request) -> web.Response:
    app = app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        return await _compose_page(request, session, sr)


async def _store_upload(app: Any, upload: web.FileField, staff_id: int) -> str:
    key = f"broadcast.upload-{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(upload.file.read())
        await store.add_recording(app.sessions, app.settings, key, "ja", path, staff_id)
    return key


def _form_dict(data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in set(data.keys()):
        if key == "recording":
            continue
        values = [str(v) for v in data.getall(key)]
        out[key] = values if key in ("grades", "classes", "children") else values[-1]
    return out


def _error_texts(req: CampaignRequest, _: Any) -> list[str]:
    out: list[str] = []
    survey = False
    for e in req.errors:
        if e.startswith("Survey:"):
            survey = True
        elif _(e) not in out:
            out.append(_(e))
    if survey:
        out.append(_("Survey: at most 5 questions, each with Japanese text and at least two "
                     "options on keys 1–9."))
    return out


@routes.post("/staff/broadcasts")
async def create(request: web.Request) -> web.Response:
    """``action=preview`` shows who would be reached; ``action=send`` launches."""
    app = app_of(request)
    data = await request.post()
    _ = gettext_for(request)
    form = _form_dict(data)
    upload = data.get("recording")
    if isinstance(upload, web.FileField) and upload.filename:
        # An uploaded recording becomes a prompt (prompts.store) and is chosen in the form
        async with app.sessions() as session:
            sr = await staff_request(request, session)
        try:
            key = await _store_upload(app, upload, sr.staff.id)
        except RecordingError:
            async with app.sessions() as session:
                sr = await staff_request(request, session)
                return await _compose_page(
                    request, session, sr, form=form, status=400,
                    errors=[_("The recording could not be used. Upload a WAV or MP3 file.")])
        form["recorded_prompt_key"] = key
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        req = parse_compose(
            lambda k: str(form.get(k, "") if k == "recorded_prompt_key" else data.get(k, "")),
            lambda k: [str(v) for v in data.getall(k, [])],
            sr.school.timezone,
            calling_window(sr.school, app.settings),
            now=app.clock.now(),
        )
        if not req.errors and not await _target_allowed(session, sr, req.target):
            req.errors.append(N_("You may only send to your own classes."))
        if req.errors:
            return await _compose_page(request, session, sr, form=form,
                                       errors=_error_texts(req, _), status=400)
        preview = await bc.preview(session, app.settings, sr.school.id, req.target,
                                   voice=req.voice, email=req.email)
        if data.get("action") != "send":
            return await _compose_page(request, session, sr, form=form, preview=preview)
        now = app.clock.now()
        survey_id = None
        if req.questions:
            survey = await bc.create_survey(session, sr.school.id, req.title, req.questions,
                                            now, created_by=sr.staff.id,
                                            closes_at=req.closes_at)
            survey_id = survey.id
        campaign = await bc.create_campaign(
            session, app.settings, school_id=sr.school.id, title=req.title,
            target=req.target, now=now, message=req.message,
            recorded_prompt_key=req.recorded_prompt_key, voice=req.voice, email=req.email,
            survey_id=survey_id, scheduled_at=req.scheduled_at,
            window_start=req.window_start, window_end=req.window_end,
            created_by=sr.staff.id,
        )
        await bc.launch(session, app.settings, campaign, now)
        cid = campaign.id
    raise web.HTTPSeeOther(f"/staff/broadcasts/{cid}")


async def campaign_in_scope(session: AsyncSession, sr: StaffRequest,
                            cid: int | None) -> Campaign:
    campaign = await session.get(Campaign, cid) if cid else None
    if campaign is None or campaign.school_id != sr.school.id or (
        not sr.scope.is_admin and campaign.created_by != sr.staff.id
    ):
        raise web.HTTPNotFound(text="not found")
    return campaign


def _progress_json(p: bc.Progress, tally: list[bc.TallyQuestion], lang: str) -> dict[str, Any]:
    def pick(texts: dict) -> str:
        return texts.get(lang) or texts.get("ja") or ""

    return {
        "status": p.status, "percent": p.percent, "households": p.households,
        "counts": p.counts, "emails": p.emails, "emails_sent": p.emails_sent,
        "emails_failed": p.emails_failed, "emails_queued": p.emails_queued,
        "tally": [
            {"position": q.position, "text": pick(q.text), "total": q.total,
             "options": [{"digit": o.digit, "label": pick(o.label), "count": o.count}
                         for o in q.options]}
            for q in tally
        ],
    }


async def _progress_data(session: AsyncSession, campaign: Campaign, lang: str) -> dict:
    p = await bc.progress(session, campaign.id)
    tally = await bc.tally(session, campaign.survey_id) if campaign.survey_id else []
    return _progress_json(p, tally, lang)


@routes.get("/staff/broadcasts/{cid}")
async def show(request: web.Request) -> web.Response:
    app = app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        campaign = await campaign_in_scope(session, sr, int_param(request.match_info["cid"]))
        _ = gettext_for(request)
        survey = await session.get(Survey, campaign.survey_id) if campaign.survey_id else None
        family_reads = await reads.family_reads(session, campaign)
        root = await session.get_one(Campaign, reads.receipts_of(campaign))
        return render(sr, "staff/broadcast_show.html", {
            "reads": family_reads, "read_count": sum(1 for r in family_reads if r.read_at),
            "read_labels": {"email": _("Email link"), "call": _("Call heard"),
                            "web": _("Web")},
            "resend_key": await reads.resend_key(session, campaign),
            "resends": await reads.resends(session, root.id),
            "resend_of": root if root.id != campaign.id else None,
            "page_title": campaign.title, "campaign": campaign, "survey": survey,
            "survey_closed": survey is not None and surveys.is_closed(survey, app.clock.now()),
            "progress": await _progress_data(session, campaign, language_of(request)),
            "labels": _labels(_), "state_keys": STATE_KEYS,
            "csrf_token": csrf_token(request),
        })


@routes.get("/staff/broadcasts/{cid}/progress.json")
async def progress_json(request: web.Request) -> web.Response:
    app = app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        campaign = await campaign_in_scope(session, sr, int_param(request.match_info["cid"]))
        return web.json_response(await _progress_data(session, campaign, language_of(request)))


@routes.post("/staff/broadcasts/{cid}/{action:pause|resume|cancel}")
async def change_state(request: web.Request) -> web.Response:
    app = app_of(request)
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        campaign = await campaign_in_scope(session, sr, int_param(request.match_info["cid"]))
        try:
            await bc.set_state(session, campaign.id, request.match_info["action"],
                               app.clock.now())
        except bc.CampaignError as exc:
            raise web.HTTPConflict(text=str(exc)) from exc
    raise web.HTTPSeeOther(f"/staff/broadcasts/{campaign.id}")


@routes.get("/staff/broadcasts/{cid}/results.csv")
async def results(request: web.Request) -> web.Response:
    app = app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        campaign = await campaign_in_scope(session, sr, int_param(request.match_info["cid"]))
        text = await bc.results_csv(session, campaign.id)
    await audit(sr, "broadcast.csv", detail=f"{campaign.id} {campaign.title}")
    # BOM: Excel in Japan opens UTF-8 CSV correctly only with it. Who exported it is in the
    # file name (a line in the file would break the columns' header row).
    name = f"broadcast-{campaign.id}-by-{sr.staff.id}-{sr.local(sr.now):%Y%m%d-%H%M}.csv"
    return web.Response(
        body=("\ufeff" + text).encode("utf-8"), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@routes.post("/staff/broadcasts/{cid}/resend")
async def resend(request: web.Request) -> web.Response:
    """One click: the broadcast again to every family that has not read it."""
    app = app_of(request)
    _ = gettext_for(request)
    key = str((await request.post()).get("resend_key", ""))
    try:
        async with transaction(app.sessions) as session:
            sr = await staff_request(request, session)
            campaign = await campaign_in_scope(session, sr,
                                               int_param(request.match_info["cid"]))
            back = campaign.id
            try:
                resent = await reads.resend_to_unread(session, app.settings, campaign, key,
                                                      app.clock.now(), sr.staff.id)
            except bc.CampaignError as exc:
                raise web.HTTPConflict(text=str(exc)) from exc
            unread = len(resent.target["children"]) if resent else 0
    except reads.AlreadyResent as done:  # a double click, or a page shown before a resend
        flash(request, _("This resend was already made: nothing was sent twice."))
        raise web.HTTPSeeOther(f"/staff/broadcasts/{done.campaign_id or back}") from None
    if resent is None:
        flash(request, _("Every family has read it: nothing to resend."))
        raise web.HTTPSeeOther(f"/staff/broadcasts/{back}")
    flash(request, _("Sent again to %(n)s families: by email where they have one, otherwise "
                     "by a call.", n=unread))
    raise web.HTTPSeeOther(f"/staff/broadcasts/{resent.id}")


# ---------------------------------------------------------------------------------------------
# The email's tracked link (no login: the token marks its guardian's families read and
# shows the message; nothing about other families)


@routes.get("/m/{token}")
async def message_page(request: web.Request) -> web.Response:
    app = app_of(request)
    _ = gettext_for(request)
    lang = language_of(request)
    try:
        async with transaction(app.sessions) as session:
            campaign = await bm.read_by_link(session, request.match_info["token"],
                                             app.clock.now())
            school = await session.get_one(School, campaign.school_id)
            title, message, school_name = campaign.title, campaign.message, school.name
    except bm.LinkError as exc:
        problem = (_("This link has expired. The message may still be on the school's "
                     "notices; please contact the school if you need it.")
                   if exc.kind == "expired" else _("This link is not valid."))
        return render_page(request, "broadcast_message.html", {
            "page_title": _("Message from the school"), "problem": problem,
        }, status=410 if exc.kind == "expired" else 404)
    text_lang = rules.pick_language(message, lang)
    return render_page(request, "broadcast_message.html", {
        "page_title": title, "school": school_name,
        "message": message.get(text_lang, ""),
        "original": message.get("ja", "") if text_lang != "ja" else "",
    })


# ---------------------------------------------------------------------------------------------
# The survey link (no login: the token is the permission, for this one survey only)


async def _survey_page(request: web.Request, token: str, *, saved: bool = False,
                       error: str = "", status: int = 200) -> web.Response:
    app = app_of(request)
    _ = gettext_for(request)
    lang = language_of(request)
    async with app.sessions() as session:
        try:
            link = await bm.resolve_link(session, token, app.clock.now())
        except bm.LinkError as exc:
            messages = {
                "expired": _("This survey link has expired."),
                "closed": _("This survey closed on %(when)s. Answers are no longer accepted.",
                            when=i18n.format_datetime(exc.closes_at, lang, exc.timezone))
                if exc.closes_at else _("This survey is closed."),
            }
            return render_page(request, "broadcast_survey.html", {
                "page_title": _("Survey"),
                "problem": messages.get(exc.kind, _("This survey link is not valid.")),
            }, status=404 if exc.kind == "unknown" else 410)
        names = [
            c.shown_name for c in await session.scalars(
                select(Child).where(Child.id.in_(link.child_ids)).order_by(Child.id))
        ]

    def pick(texts: dict) -> str:
        return texts.get(lang) or texts.get("ja") or ""

    return render_page(request, "broadcast_survey.html", {
        "page_title": link.campaign.title,
        "message": pick(link.campaign.message),
        "children": names,
        "questions": [
            {"id": q.id, "text": pick(q.text),
             "options": [{"digit": o.digit, "label": pick(o.label)} for o in q.options],
             "chosen": link.answered.get(q.id)}
            for q in link.questions
        ],
        "saved": saved, "error": error, "token": token,
        "closes_at": (i18n.format_datetime(link.closes_at, lang, link.timezone)
                      if link.closes_at else ""),
        "csrf_token": csrf_token(request),
    }, status=status)


@routes.get("/s/{token}")
async def survey_form(request: web.Request) -> web.Response:
    app = app_of(request)
    token, now = request.match_info["token"], app.clock.now()
    try:  # the survey page shows the message: following this link is reading it
        async with transaction(app.sessions) as session:
            await bm.resolve_link(session, token, now)  # not when the page shows no message
            await bm.read_by_link(session, token, now)
    except bm.LinkError:
        pass  # the page says what is wrong with the link
    return await _survey_page(request, request.match_info["token"])


@routes.post("/s/{token}")
async def survey_answer(request: web.Request) -> web.Response:
    app = app_of(request)
    token = request.match_info["token"]
    data = await request.post()
    answers: dict[int, int] = {}
    for key in data:
        if key.startswith("q") and key[1:].isdigit() and str(data[key]).isdigit():
            answers[int(key[1:])] = int(str(data[key]))
    _ = gettext_for(request)
    if not answers:
        return await _survey_page(request, token, error=_("Choose an answer."), status=400)
    try:
        async with transaction(app.sessions) as session:
            await bm.answer_by_link(session, token, answers, app.clock.now())
    except bm.LinkError:
        return await _survey_page(request, token)
    return await _survey_page(request, token, saved=True)


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
