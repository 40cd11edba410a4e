"""Guardians per child, proxy registration of landline families, QR registration sheets."""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from models import Child, Guardian, Guardianship, ProxyRequest
from models.db import transaction
from renraku.rules.phone import PhoneNumber
from renraku.services import proxy, proxy_requests, registration
from renraku.services.guardians import GuardianLimitReached
from renraku.services.register import class_children
from renraku.settings import LANGUAGES
from webportal.guardian.common import labels
from webportal.i18n import tr
from webportal.speech import render_family_names
from webportal.staff import fw
from webportal.staff.common import audit, class_in_scope, render, staff_request
from webportal.staff.texts import sheet_text
from webportal.templating import flash

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def _links(session, child_ids: list[int]) -> dict[int, list[Guardianship]]:  # type: ignore[no-untyped-def]
    rows = await session.scalars(
        select(Guardianship)
        .where(Guardianship.child_id.in_(child_ids))
        .options(selectinload(Guardianship.guardian).selectinload(Guardian.phones))
        .order_by(Guardianship.position)
    )
    out: dict[int, list[Guardianship]] = {cid: [] for cid in child_ids}
    for link in rows:
        out[link.child_id].append(link)
    return out


@routes.get(r"/staff/classes/{class_id:\d+}/guardians")
async def guardians(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        room = await class_in_scope(session, sr, int(request.match_info["class_id"]))
        children = await class_children(session, room.id)
        links = await _links(session, [c.id for c in children])
        await audit(sr, "contacts.class", class_id=room.id)
        rows = [
            {"child": c, "links": links[c.id],
             "token": await registration.active_token(session, c.id, room.id)}
            for c in children
        ]
        _ = fw.gettext_for(request)
        return render(sr, "staff/guardians.html", {
            "page_title": _("Guardians: %(name)s") % {"name": room.name},
            "room": room, "rows": rows, "csrf_token": fw.csrf_token(request),
        })


def completion_call_text(school: str) -> dict[str, str]:
    """What the completion call says, in every language (the family hears theirs)."""
    return {lang: tr(lang, "This is a message from %(school)s. Your phone number is now "
                     "registered with the school's contact line. To report an absence, a "
                     "late arrival or an early leave, call the school's contact line from "
                     "this phone, at any time of day.", school=school)
            for lang in LANGUAGES}


def _proxy_error(_, field: str) -> str:  # type: ignore[no-untyped-def]
    return {
        "name": _("Enter the guardian's name."),
        "phone": _("That phone number is not valid. Include the area code, e.g. 03-1234-5678."),
        "language": _("Choose a language."),
        "email": _("That email address is not valid."),
        "email_taken": _("That email address is already registered to another guardian."),
        "child": _("Choose a child of this class."),
        "limit": _("This child already has three guardians."),
        "request": _("This request has already been handled."),
    }.get(field, field)


def _squeezed(name: str) -> str:
    return "".join(name.split())


def _from_request(row: ProxyRequest, children: list[Child]) -> dict[str, str]:
    """The proxy form pre-filled from a family's request; the child matched by name."""
    match = next((c for c in children if _squeezed(c.name) == _squeezed(row.child_name)), None)
    return {"request_id": str(row.id), "child_id": str(match.id) if match else "",
            "name": row.guardian_name, "reading": "", "relation": row.relation,
            "phone": PhoneNumber(row.phone_e164, row.phone_kind).national,
            "language": row.language, "email": row.email or ""}


async def _proxy_page(request: web.Request, done: dict | None = None, error: str = "",
                      form: dict | None = None, status: int = 200) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        room = await class_in_scope(session, sr, int(request.match_info["class_id"]))
        children = await class_children(session, room.id)
        queue = await proxy_requests.queue(session, room.id)
        opened = next((r for r in queue if str(r.id) == request.query.get("request")), None)
        if form is None and opened is not None:  # "Register" clicked in the queue
            form = _from_request(opened, children)
        _ = fw.gettext_for(request)
        return render(sr, "staff/proxy.html", {
            "page_title": _("Proxy registration: %(name)s") % {"name": room.name},
            "room": room, "children": children, "languages": LANGUAGES,
            "form": form or {"language": "ja"}, "done": done, "error": error,
            "queue": queue, "opened": opened, "relations": labels(_)["relations"],
            "national": lambda row: PhoneNumber(row.phone_e164, row.phone_kind).national,
            "csrf_token": fw.csrf_token(request),
        }, status=status)


@routes.get(r"/staff/classes/{class_id:\d+}/proxy")
async def proxy_form(request: web.Request) -> web.Response:
    return await _proxy_page(request)


@routes.post(r"/staff/classes/{class_id:\d+}/proxy/requests/{request_id:\d+}/reject")
async def proxy_reject(request: web.Request) -> web.Response:
    """Refuse a family's request with a reason the school can tell them."""
    app = fw.app_of(request)
    reason = str((await request.post()).get("reason", ""))
    _ = fw.gettext_for(request)
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        room = await class_in_scope(session, sr, int(request.match_info["class_id"]))
        try:
            row = await proxy_requests.pending(session, room.id,
                                               int(request.match_info["request_id"]))
            proxy_requests.rejected(row, reason, sr.staff.id, app.clock.now())
        except LookupError as exc:
            raise web.HTTPNotFound() from exc
        except proxy_requests.NotPending:
            return await _proxy_page(request, error=_(
                "This request has already been handled."), status=409)
        except ValueError:
            return await _proxy_page(request, error=_(
                "Give a reason (at most %(n)s characters).", n=proxy_requests.MAX_REASON),
                status=400)
    flash(request, _("The request has been rejected."))
    raise web.HTTPSeeOther(f"/staff/classes/{room.id}/proxy")


@routes.post(r"/staff/classes/{class_id:\d+}/proxy")
async def proxy_submit(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    data = await request.post()
    form = {k: str(data.get(k, "")) for k in
            ("child_id", "name", "reading", "relation", "phone", "language", "email",
             "request_id")}
    _ = fw.gettext_for(request)
    try:
        async with transaction(app.sessions) as session:
            sr = await staff_request(request, session)
            room = await class_in_scope(session, sr, int(request.match_info["class_id"]))
            child_ids = {c.id for c in await class_children(session, room.id)}
            try:
                child_id = int(form["child_id"])
            except ValueError:
                child_id = 0
            if child_id not in child_ids:  # only children of a class in the person's scope
                raise proxy.ProxyError("child")
            result = await proxy.proxy_register(
                session,
                proxy.ProxyForm(child_id, form["name"], form["reading"], form["relation"],
                                form["phone"], form["language"] or "ja", form["email"]),
                region=app.settings.default_region,
            )
            if form["request_id"].isdigit():  # registered from a family's request
                try:
                    row = await proxy_requests.pending(session, room.id,
                                                       int(form["request_id"]))
                except (LookupError, proxy_requests.NotPending):
                    raise proxy.ProxyError("request") from None
                proxy_requests.registered(row, result.guardian.id, sr.staff.id,
                                          app.clock.now())
            child = await session.get_one(Child, child_id)
            message = proxy.completion_email(result.guardian, child.name, sr.school.name,
                                             result.number, app.settings.smtp_from,
                                             app.clock.now())
            called = message is None  # no email: the dialer says it on the phone instead
            if called:
                await proxy.queue_completion_call(
                    session, app.settings, school_id=sr.school.id, child_id=child_id,
                    number=result.number, now=app.clock.now(), staff_id=sr.staff.id,
                    title=_("Registration complete: %(name)s", name=result.guardian.name),
                    message=completion_call_text(sr.school.reading or sr.school.name))
    except proxy.ProxyError as exc:
        return await _proxy_page(request, error=_proxy_error(_, exc.field), form=form,
                                 status=400)
    except GuardianLimitReached:
        return await _proxy_page(request, error=_proxy_error(_, "limit"), form=form,
                                 status=409)
    render_family_names(request, result.guardian.id)
    emailed = False
    if message is not None:
        try:
            await fw.send_mail(request, message)
            emailed = True
        except Exception:  # the registration stands; the email is a courtesy
            log.exception("proxy registration email to guardian %s failed", result.guardian.id)
    return await _proxy_page(
        request,
        done={"guardian": result.guardian, "number": result.number, "emailed": emailed,
              "called": called},
    )


@routes.get(r"/staff/classes/{class_id:\d+}/qr")
async def qr_sheets(request: web.Request) -> web.Response:
    """One printable sheet per child; codes are issued on first print."""
    app = fw.app_of(request)
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        room = await class_in_scope(session, sr, int(request.match_info["class_id"]))
        children = await class_children(session, room.id)
        only = request.query.get("child")
        if only:
            children = [c for c in children if str(c.id) == only]
        links = await _links(session, [c.id for c in children])
        sheets = []
        for child in children:
            token = await registration.issue(session, child.id, room.id, sr.now)
            url = registration.registration_url(app.settings, token.token)
            # The family's language is that of its first registered guardian, else Japanese.
            lang = links[child.id][0].guardian.language if links[child.id] else "ja"
            text = sheet_text(lang)
            line = (text.absence_line.format(number=PhoneNumber(sr.school.absence_line_e164,
                                                                "").national)
                    if sr.school.absence_line_e164 else "")
            sheets.append({"child": child, "url": url, "svg": registration.qr_svg(url),
                           "lang": lang, "text": text, "line": line})
        _ = fw.gettext_for(request)
        return render(sr, "staff/qr_sheets.html", {
            "page_title": _("QR registration sheets: %(name)s") % {"name": room.name},
            "room": room, "sheets": sheets,
        })


@routes.post(r"/staff/classes/{class_id:\d+}/children/{child_id:\d+}/qr/{action:reissue|revoke}")
async def qr_change(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    async with transaction(app.sessions) as session:
        sr = await staff_request(request, session)
        room = await class_in_scope(session, sr, int(request.match_info["class_id"]))
        child_id = int(request.match_info["child_id"])
        if child_id not in {c.id for c in await class_children(session, room.id)}:
            raise web.HTTPNotFound(text="not found")
        if request.match_info["action"] == "revoke":
            await registration.revoke(session, child_id, room.id, sr.now)
        else:
            await registration.reissue(session, child_id, room.id, sr.now)
    raise web.HTTPSeeOther(f"/staff/classes/{room.id}/guardians")
