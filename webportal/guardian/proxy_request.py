"""The public proxy registration request form (代理登録依頼, no login), and its paper twin.

For families who cannot register by QR code (no smartphone, a landline only). It only
writes: the confirmation page shows nothing stored, and no route reads a request back.
Rate-limited per address; CSRF-checked by the middleware like every POST.

The paper form (代理登録依頼書) is a PDF per school and language, printed by Chromium from
a template and kept in a PdfCache: it shows only what the start page shows already (the
school's name and absence line).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from aiohttp import web

from models import School
from models.db import transaction
from renraku.rules.phone import PhoneNumber
from renraku.rules.proxy_request import MAX_NAME, MAX_NOTE, RELATIONS, check_request
from renraku.services import pdf, proxy_requests
from renraku.services.throttle import Limit
from renraku.settings import LANGUAGES
from webportal import i18n
from webportal.guardian.common import labels
from webportal.limits import client_ip, spend
from webportal.security import app_of
from webportal.templating import ENV_KEY, gettext_for, language_of, render, render_string

routes = web.RouteTableDef()
REQUEST_LIMIT = Limit(5, timedelta(hours=1))  # per address: a family sends one, maybe two
# Chromium takes about a second per PDF; the forms are few (schools × 4 languages) and the
# same for everybody, so each is printed once per process (and again when a school's name
# or number changes, which changes the page and so the key).
FORM_PDFS = pdf.PdfCache()


def _messages(_: Callable[..., str]) -> dict[tuple[str, str], str]:
    """(field, code) → what the family reads next to the field."""
    too_long = _("This is too long: at most %(n)s characters.", n=MAX_NAME)
    markup = _("Please do not use the characters < and >.")
    control = _("This contains invisible control characters: please type it again.")
    return {
        ("child_name", "required"): _("Enter your child's name."),
        ("child_name", "too_long"): too_long, ("child_name", "markup"): markup,
        ("child_name", "control"): control,
        ("guardian_name", "required"): _("Enter your name."),
        ("guardian_name", "too_long"): too_long, ("guardian_name", "markup"): markup,
        ("guardian_name", "control"): control,
        ("class_id", "required"): _("Choose your child's school and class."),
        ("relation", "required"): _("Choose how you are related to the child."),
        ("language", "required"): _("Choose a language."),
        ("phone", "required"): _("Enter a phone number."),
        ("phone", "invalid"): _("That phone number is not valid. Include the area code, "
                                "e.g. 03-1234-5678."),
        ("email", "invalid"): _("That email address is not valid."),
        ("note", "too_long"): _("This is too long: at most %(n)s characters.", n=MAX_NOTE),
        ("note", "markup"): markup, ("note", "control"): control,
    }


async def _page(request: web.Request, form: dict[str, str] | None = None,
                errors: dict[str, str] | None = None, notice: str = "",
                status: int = 200) -> web.Response:
    _ = gettext_for(request)
    async with app_of(request).sessions() as s:
        schools = await proxy_requests.open_classes(s)
    return render(request, "proxy_request.html", {
        "form": form or {"language": language_of(request)}, "errors": errors or {},
        "schools": schools, "schools_plain": [(school.id, school.name) for school, _r in schools],
        "relation_codes": RELATIONS, "notice": notice,
        "max_name": MAX_NAME, "max_note": MAX_NOTE, **labels(_),
    }, status=status)


@routes.get("/proxy-request")
async def request_form(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/proxy-request")
async def request_submit(request: web.Request) -> web.Response:
    _ = gettext_for(request)
    app = app_of(request)
    form = {k: str(v) for k, v in (await request.post()).items() if k != "csrf_token"}
    async with app.sessions() as s:
        class_ids = {room.id for _school, rooms in await proxy_requests.open_classes(s)
                     for room in rooms}
    clean, codes = check_request(form, class_ids, app.settings.default_region)
    if clean is None:  # a typo costs nothing: only requests that could be stored count
        messages = _messages(_)
        errors = {field: messages[field, code] for field, code in codes.items()}
        return await _page(request, form, errors, notice=_(
            "Please check the fields marked below."), status=400)
    if await spend(request, "proxy-request", client_ip(request), REQUEST_LIMIT) is not None:
        return await _page(request, form, notice=_(
            "Too many requests from this connection. Please try again in an hour, or give "
            "the paper form to the class teacher."), status=429)
    try:
        async with transaction(app.sessions) as s:
            await proxy_requests.submit(s, clean, app.clock.now())
    except proxy_requests.AlreadyRequested:
        return await _page(request, form, notice=_(
            "We already have this request. The school will contact you; there is no need "
            "to send it again."), status=409)
    raise web.HTTPSeeOther("/proxy-request/sent")


@routes.get("/proxy-request/sent")
async def request_sent(request: web.Request) -> web.Response:
    return render(request, "proxy_request_sent.html", {})


def paper_form_html(request: web.Request, school: School, lang: str) -> str:
    """The paper form's page in ``lang``: what the PDF is printed from."""
    _ = i18n.translator(lang)
    line = (PhoneNumber(school.absence_line_e164, "").national
            if school.absence_line_e164 else "")
    return render_string("proxy_request_form_pdf.html", {
        "school_name": school.name, "line": line, "relation_codes": RELATIONS,
        "relations": labels(_)["relations"],
        "language_names": [(code, i18n.LANGUAGE_NAMES[code]) for code in LANGUAGES],
    }, lang, env=request.config_dict[ENV_KEY])


@routes.get(r"/proxy-request/form/{school_id:\d+}/{lang}.pdf")
async def paper_form(request: web.Request) -> web.Response:
    """The printable request form (代理登録依頼書) of one school, in one language."""
    lang, school_id = request.match_info["lang"], request.match_info["school_id"]
    if lang not in LANGUAGES or len(school_id) > 9:  # no id that long: not a database error
        raise web.HTTPNotFound()
    async with app_of(request).sessions() as s:
        school = await s.get(School, int(school_id))
    if school is None:
        raise web.HTTPNotFound()
    try:
        body = await FORM_PDFS.pdf(paper_form_html(request, school, lang))
    except pdf.PdfUnavailable as exc:
        raise web.HTTPServiceUnavailable(text="PDF is not available on this server") from exc
    return web.Response(body=body, headers={
        "Content-Type": "application/pdf",
        "Content-Disposition": (
            f'attachment; filename="proxy-request-form-{school.id}-{lang}.pdf"'),
        "Cache-Control": "no-cache",
    })
