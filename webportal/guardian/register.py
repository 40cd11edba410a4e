"""QR registration: ``/r/<token>`` → form → SMS code (and email code) → signed in.

The guardian row is made at the form, but the child is linked only when the mobile number
is proven by the SMS code, so an unfinished registration never takes one of the child's
three places. The pending registration lives in the signed session cookie.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Child,
    Guardian,
    GuardianPhone,
    Guardianship,
    RegistrationToken,
    VerificationCode,
)
from models.db import transaction
from renraku.rules.phone import may_self_register, try_normalise
from renraku.services import registration, verification
from renraku.services.guardians import GuardianLimitReached, guardian_count, link_guardian
from renraku.services.mail import MailError, send_mail
from renraku.services.passwords import hash_password
from renraku.services.sms import SmsError, send_sms
from renraku.services.throttle import CODES_SENT, REGISTRATIONS
from renraku.settings import LANGUAGES, ensure_secret
from webportal.auth import password_refusal
from webportal.guardian.common import RELATIONS, labels
from webportal.i18n import tr
from webportal.limits import client_ip, failed, locked, spend, succeeded, too_many
from webportal.security import (
    app_of,
    current_guardian,
    login_guardian,
    rotate,
    session_of,
)
from webportal.speech import render_family_names
from webportal.templating import flash, gettext_for, language_of, render, render_string

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


async def _token(s: AsyncSession, value: str) -> RegistrationToken | None:
    tok = await registration.lookup(s, value)
    if tok is None:
        return None
    child = await s.get(Child, tok.child_id)
    if child is None or not child.active:
        return None
    await s.refresh(tok, ["child", "classroom"])
    await s.refresh(child, ["school"])
    return tok


def _page(request: web.Request, tok: RegistrationToken | None, ctx: dict,
          status: int = 200) -> web.Response:
    _ = gettext_for(request)
    return render(request, "guardian/register.html", {
        "tok": tok, "relations": RELATIONS, **labels(_),
        "language_options": [(c, n) for c, n in
                             (("ja", "日本語"), ("en", "English"), ("zh", "中文"),
                              ("es", "Español"))],
        **ctx}, status=status)


@routes.get(r"/r/{token}")
async def scan(request: web.Request) -> web.Response:
    app = app_of(request)
    me = await current_guardian(request)
    async with app.sessions() as s:
        tok = await _token(s, request.match_info["token"])
        if tok is None:
            return _page(request, None, {"state": "invalid"}, status=404)
        count = await guardian_count(s, tok.child_id)
        already = me is not None and await s.scalar(select(Guardianship.id).where(
            Guardianship.child_id == tok.child_id, Guardianship.guardian_id == me.id)) is not None
    if already:
        return _page(request, tok, {"state": "already"})
    if count >= 3:
        return _page(request, tok, {"state": "full"}, status=409)
    if me is not None:
        return _page(request, tok, {"state": "add", "me": me})
    return _page(request, tok, {"state": "form",
                                "form": {"language": language_of(request)}})


@routes.post(r"/r/{token}/add")
async def add_child(request: web.Request) -> web.Response:
    """A signed-in guardian scanning a sibling's code: the child joins their account."""
    me = await current_guardian(request)
    if me is None:
        raise web.HTTPFound(f"/login?next=/r/{request.match_info['token']}")
    relation = str((await request.post()).get("relation", ""))
    _ = gettext_for(request)
    try:
        async with transaction(app_of(request).sessions) as s:
            tok = await _token(s, request.match_info["token"])
            if tok is None:
                return _page(request, None, {"state": "invalid"}, status=404)
            await link_guardian(s, tok.child_id, me.id, relation if relation in RELATIONS else "")
            child_id = tok.child_id
        rotate(request)  # access to one more child: a new session id
    except GuardianLimitReached:
        return _page(request, tok, {"state": "full"}, status=409)
    render_family_names(request, me.id)
    flash(request, _("%(name)s has been added to your account.", name=tok.child.shown_name))
    raise web.HTTPFound(f"/c/{child_id}")


@routes.post(r"/r/{token}")
async def register_submit(request: web.Request) -> web.Response:
    app = app_of(request)
    _ = gettext_for(request)
    data = {k: str(v).strip() for k, v in (await request.post()).items()}
    if await spend(request, "register", client_ip(request), REGISTRATIONS) is not None:
        raise web.HTTPTooManyRequests()
    async with app.sessions() as s:
        tok = await _token(s, request.match_info["token"])
        if tok is None:
            return _page(request, None, {"state": "invalid"}, status=404)
        if await guardian_count(s, tok.child_id) >= 3:
            return _page(request, tok, {"state": "full"}, status=409)

    def again(error: str, status: int = 400) -> web.Response:
        form = {k: v for k, v in data.items() if k != "password"}
        return _page(request, tok, {"state": "form", "form": form, "error": error},
                     status=status)

    name, email = data.get("name", ""), data.get("email", "").lower()
    lang = data.get("language", "ja")
    if not name:
        return again(_("Enter your name."))
    if email and not EMAIL_RE.match(email):
        return again(_("That email address is not valid."))
    number = try_normalise(data.get("phone", ""), app.settings.default_region)
    if number is None:
        return again(_("That phone number is not valid. Enter it like 090-1234-5678."))
    if not may_self_register(number):
        # Landlines and IP phones cannot get an SMS code: the teacher registers them.
        return _page(request, tok, {"state": "landline", "number": number.national})
    refusal = password_refusal(request, data.get("password", ""))
    if refusal:
        return again(refusal)
    if lang not in LANGUAGES:
        lang = "ja"
    async with transaction(app.sessions) as s:
        await drop_unfinished(s, email, number.e164)
        taken_email = email and await s.scalar(
            select(func.count()).select_from(Guardian).where(Guardian.email == email))
        taken_phone = await s.scalar(
            select(func.count()).select_from(GuardianPhone).join(Guardian)
            .where(GuardianPhone.e164 == number.e164, GuardianPhone.verified.is_(True),
                   Guardian.password_hash.is_not(None)))
        if taken_email or taken_phone:
            # The same person scanning a sibling's code: one account, so log in and rescan.
            return _page(request, tok, {"state": "existing"}, status=409)
        guardian = Guardian(name=name[:200], reading=data.get("reading", "")[:200],
                            email=email or None, password_hash=hash_password(data["password"]),
                            language=lang)
        s.add(guardian)
        await s.flush()
        s.add(GuardianPhone(guardian_id=guardian.id, e164=number.e164, kind=number.kind,
                            verified=False))
    session = session_of(request)
    session.reset()
    session["lang"] = lang
    relation = data.get("relation", "")
    session["pending"] = {"gid": guardian.id, "tok": tok.token,
                          "rel": relation if relation in RELATIONS else ""}
    notes = await send_codes(request, guardian, number.e164, email)
    for note in notes:
        flash(request, note, "error")
    raise web.HTTPFound("/register/verify")


async def drop_unfinished(s: AsyncSession, email: str, e164: str) -> None:
    """Forget earlier registrations with this email or number that never got their SMS code.

    They hold no child and cannot log in; keeping them would lock the address out.
    """
    verified = select(GuardianPhone.guardian_id).where(GuardianPhone.verified.is_(True))
    linked = select(Guardianship.guardian_id)
    match = GuardianPhone.e164 == e164
    if email:
        match = match | (Guardian.email == email)
    stale = list(await s.scalars(
        select(Guardian.id).outerjoin(GuardianPhone).where(
            match, Guardian.proxy_registered.is_(False), Guardian.id.not_in(verified),
            Guardian.id.not_in(linked))))
    if stale:
        await s.execute(delete(VerificationCode).where(VerificationCode.guardian_id.in_(stale)))
        await s.execute(delete(GuardianPhone).where(GuardianPhone.guardian_id.in_(stale)))
        await s.execute(delete(Guardian).where(Guardian.id.in_(stale)))


async def send_codes(request: web.Request, guardian: Guardian, e164: str | None,
                     email: str | None) -> list[str]:
    """Send the SMS code and the email code; returns messages for what could not be sent."""
    app = app_of(request)
    secret = ensure_secret(app.settings, "secret_key")
    problems: list[str] = []
    _ = gettext_for(request)
    if e164:
        async with transaction(app.sessions) as s:
            _row, code = await verification.issue(s, guardian.id, "phone", e164,
                                                  app.clock.now(), secret)
        try:
            await send_sms(app, e164, tr(guardian.language, "School contact: your code is %(code)s",
                                        code=code))
        except SmsError:
            problems.append(_("We could not send the SMS just now. Please try again later."))
    if email:
        await send_email_code(request, guardian, email)
    return problems


async def send_email_code(request: web.Request, guardian: Guardian, email: str) -> bool:
    app = app_of(request)
    secret = ensure_secret(app.settings, "secret_key")
    async with transaction(app.sessions) as s:
        row, code = await verification.issue(s, guardian.id, "email", email, app.clock.now(),
                                             secret)
    link = f"{app.settings.base_url}/verify/email/{row.id}/{code}"
    text = render_string("mail/verify_email.txt", {"guardian": guardian, "code": code,
                                                   "link": link}, guardian.language)
    try:
        await send_mail(app.settings, email,
                        tr(guardian.language, "Please confirm your email address"), text,
                        now=app.clock.now())
    except MailError:
        return False
    return True


async def _pending(request: web.Request) -> tuple[dict, Guardian]:
    pending = session_of(request).get("pending")
    if not isinstance(pending, dict):
        raise web.HTTPFound("/")
    async with app_of(request).sessions() as s:
        guardian = await s.get(Guardian, int(pending["gid"]))
    if guardian is None:
        raise web.HTTPFound("/")
    return pending, guardian


@routes.get("/register/verify")
async def verify_form(request: web.Request) -> web.Response:
    _pend, guardian = await _pending(request)
    return render(request, "guardian/verify.html", {"guardian": guardian})


@routes.post("/register/verify")
async def verify_submit(request: web.Request) -> web.Response:
    app = app_of(request)
    _ = gettext_for(request)
    pending, guardian = await _pending(request)
    data = await request.post()
    sms_code = str(data.get("sms_code", "")).strip()
    email_code = str(data.get("email_code", "")).strip()
    wait = await locked(request, "code", f"g:{guardian.id}")
    if wait is not None:
        return render(request, "guardian/verify.html", {
            "guardian": guardian, "error": too_many(request, wait)}, status=429)
    secret = ensure_secret(app.settings, "secret_key")
    now = app.clock.now()
    try:
        async with transaction(app.sessions) as s:
            row = await verification.check(s, guardian.id, "phone", sms_code, now, secret)
            if row is None:
                error = _("The SMS code is not correct or has expired.")
            else:
                error = ""
                phone = await s.scalar(select(GuardianPhone).where(
                    GuardianPhone.guardian_id == guardian.id, GuardianPhone.e164 == row.target))
                if phone is not None:
                    phone.verified = True
                if email_code and guardian.email:
                    ok = await verification.check(s, guardian.id, "email", email_code, now,
                                                  secret)
                    if ok is not None and ok.target == guardian.email:
                        g = await s.get_one(Guardian, guardian.id)
                        g.email_verified = True
                tok = await registration.lookup(s, str(pending["tok"]))
                if tok is None:
                    raise web.HTTPFound(f"/r/{pending['tok']}")
                await link_guardian(s, tok.child_id, guardian.id, str(pending.get("rel", "")))
                child_id = tok.child_id
    except GuardianLimitReached:
        session_of(request).pop("pending")
        return render(request, "guardian/register.html", {"tok": None, "state": "full"},
                      status=409)
    if error:
        wait = await failed(request, "code", f"g:{guardian.id}")
        return render(request, "guardian/verify.html", {
            "guardian": guardian, "error": too_many(request, wait) if wait else error},
            status=429 if wait else 400)
    await succeeded(request, "code", f"g:{guardian.id}")
    async with app.sessions() as s:
        fresh = await s.get_one(Guardian, guardian.id)
    login_guardian(request, fresh)  # also drops "pending"
    render_family_names(request, guardian.id)
    flash(request, _("Registration complete. Welcome!"))
    raise web.HTTPFound(f"/c/{child_id}")


@routes.post("/register/resend")
async def resend(request: web.Request) -> web.Response:
    _ = gettext_for(request)
    _pend, guardian = await _pending(request)
    wait = await spend(request, "resend", f"g:{guardian.id}", CODES_SENT)
    if wait is not None:
        flash(request, too_many(request, wait), "error")
        raise web.HTTPFound("/register/verify")
    async with app_of(request).sessions() as s:
        phone = await s.scalar(select(GuardianPhone.e164).where(
            GuardianPhone.guardian_id == guardian.id, GuardianPhone.verified.is_(False)))
    problems = await send_codes(request, guardian, phone, guardian.email)
    flash(request, problems[0] if problems else _("We have sent the codes again."),
          "error" if problems else "ok")
    raise web.HTTPFound("/register/verify")


@routes.get(r"/verify/email/{id:\d+}/{code}")
async def verify_email_link(request: web.Request) -> web.Response:
    """The link in the email: confirms the address it was sent to."""
    app = app_of(request)
    account = "link:" + request.match_info["id"]
    if await locked(request, "code", account) is not None:
        raise web.HTTPTooManyRequests()
    async with transaction(app.sessions) as s:
        row = await verification.check_by_id(
            s, int(request.match_info["id"]), "email", request.match_info["code"],
            app.clock.now(), ensure_secret(app.settings, "secret_key"))
        ok = False
        if row is not None:
            guardian = await s.get_one(Guardian, row.guardian_id)
            if guardian.email == row.target:
                guardian.email_verified = ok = True
            elif not await s.scalar(select(func.count()).select_from(Guardian)
                                    .where(Guardian.email == row.target)):
                guardian.email, guardian.email_verified, ok = row.target, True, True
    if row is None:
        await failed(request, "code", account)
    return render(request, "guardian/email_verified.html", {"ok": ok},
                  status=200 if ok else 410)
