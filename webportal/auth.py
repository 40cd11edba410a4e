"""Signing in and out: guardians (email or mobile + password, reset by email) and staff."""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Guardian, GuardianPhone, Staff
from models.db import transaction
from renraku.app import App
from renraku.rules.phone import try_normalise
from renraku.services import verification
from renraku.services.mail import MailError, send_mail
from renraku.services.passwords import (
    GUARDIAN_MIN,
    STAFF_MIN,
    set_password,
    verify_password,
    weakness,
)
from renraku.services.throttle import RESET_MAILS
from renraku.settings import ensure_secret
from webportal.i18n import tr
from webportal.limits import failed, locked, spend, succeeded, too_many
from webportal.security import (
    app_of,
    login_guardian,
    login_staff,
    logout,
    safe_next,
)
from webportal.templating import flash, gettext_for, render, render_string

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def password_refusal(request: web.Request, password: str,
                     min_length: int = GUARDIAN_MIN) -> str | None:
    """Why a new password is refused, in the visitor's language (None: it is fine)."""
    _ = gettext_for(request)
    problem = weakness(password, min_length)
    if problem == "short":
        return _("Use at least %(count)s characters for the password.", count=min_length)
    if problem == "common":
        return _("That password is one of the most common ones and easy to guess. "
                 "Please choose another.")
    return None


async def find_guardian(session: AsyncSession, identifier: str,
                        region: str) -> Guardian | None:
    """By email, or by a verified mobile number (guardians who gave no email)."""
    ident = identifier.strip()
    if "@" in ident:
        return await session.scalar(select(Guardian).where(Guardian.email == ident.lower()))
    number = try_normalise(ident, region)
    if number is None:
        return None
    return await session.scalar(
        select(Guardian).join(GuardianPhone)
        .where(GuardianPhone.e164 == number.e164, GuardianPhone.verified.is_(True),
               Guardian.password_hash.is_not(None))
        .order_by(Guardian.id)
    )


async def has_verified_phone(app: App, guardian_id: int) -> bool:
    """Self-registration ends with the SMS code; before that the account cannot sign in."""
    async with app.sessions() as s:
        return bool(await s.scalar(select(func.count()).select_from(GuardianPhone).where(
            GuardianPhone.guardian_id == guardian_id, GuardianPhone.verified.is_(True))))


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    return render(request, "login.html", {"next": safe_next(request.query.get("next"), "/home")})


@routes.post("/login")
async def login_submit(request: web.Request) -> web.Response:
    app = app_of(request)
    data = await request.post()
    ident = str(data.get("identifier", "")).strip()
    password = str(data.get("password", ""))
    nxt = safe_next(str(data.get("next", "")), "/home")
    _ = gettext_for(request)
    async with app.sessions() as s:
        guardian = await find_guardian(s, ident, app.settings.default_region)
    account = f"g:{guardian.id}" if guardian else f"?{ident.lower()}"
    wait = await locked(request, "login", account)
    if wait is None and (guardian is None
                         or not verify_password(guardian.password_hash, password)
                         or not await has_verified_phone(app, guardian.id)):
        wait = await failed(request, "login", account)
        if wait is None:
            return render(request, "login.html", {"next": nxt, "identifier": ident, "error": _(
                "The email address (or mobile number) or the password is not correct.")},
                status=401)
    if wait is not None or guardian is None:
        return render(request, "login.html", {"next": nxt, "identifier": ident,
                                              "error": too_many(request, wait or 1)},
                      status=429)
    await succeeded(request, "login", account)
    login_guardian(request, guardian)
    raise web.HTTPFound(nxt)


@routes.post("/logout")
async def logout_submit(request: web.Request) -> web.Response:
    logout(request)
    raise web.HTTPFound("/")


@routes.get("/password/forgot")
async def forgot_form(request: web.Request) -> web.Response:
    return render(request, "password_forgot.html")


@routes.post("/password/forgot")
async def forgot_submit(request: web.Request) -> web.Response:
    app = app_of(request)
    email = str((await request.post()).get("email", "")).strip().lower()
    _ = gettext_for(request)
    wait = await spend(request, "reset", email, RESET_MAILS) if email else None
    if wait is not None:
        return render(request, "password_forgot.html", {"error": too_many(request, wait)},
                      status=429)
    secret = ensure_secret(app.settings, "secret_key")
    async with transaction(app.sessions) as s:
        guardian = await s.scalar(select(Guardian).where(Guardian.email == email)) \
            if email else None
        if guardian is not None:
            row, code = await verification.issue(s, guardian.id, "reset", email,
                                                 app.clock.now(), secret)
            link = f"{app.settings.base_url}/password/reset/{row.id}/{code}"
    if guardian is not None:
        text = render_string("mail/reset.txt", {"guardian": guardian, "link": link},
                             guardian.language)
        subject = tr(guardian.language, "Resetting your password")
        try:
            await send_mail(app.settings, email, subject, text, now=app.clock.now())
        except MailError:
            return render(request, "password_forgot.html", {"error": _(
                "We could not send the email just now. Please try again later.")}, status=503)
    # The same answer whether or not the address is registered: no account probing.
    return render(request, "password_forgot.html", {"sent": True})


def _reset_ids(request: web.Request) -> tuple[int, str]:
    try:
        return int(request.match_info["id"]), request.match_info["code"]
    except ValueError as exc:
        raise web.HTTPNotFound() from exc


# The same link page serves a guardian's reset and a staff member's set-password link
# (``renraku staff create``, the admin's staff page); staff passwords are longer.
def _min_length(row: verification.VerificationCode | None) -> int:
    return STAFF_MIN if row is not None and row.staff_id is not None else GUARDIAN_MIN


def _reset_page(request: web.Request, row: verification.VerificationCode | None, usable: bool,
                error: str = "", status: int = 200) -> web.Response:
    return render(request, "password_reset.html", {
        "usable": usable, "error": error, "min_length": _min_length(row),
        "for_staff": row is not None and row.staff_id is not None,
    }, status=status)


@routes.get(r"/password/reset/{id:\d+}/{code}")
async def reset_form(request: web.Request) -> web.Response:
    app = app_of(request)
    code_id, _code = _reset_ids(request)
    async with app.sessions() as s:
        row = await s.get(verification.VerificationCode, code_id)
    usable = verification.link_usable(row, app.clock.now())
    return _reset_page(request, row, usable, status=200 if usable else 410)


@routes.post(r"/password/reset/{id:\d+}/{code}")
async def reset_submit(request: web.Request) -> web.Response:
    app = app_of(request)
    code_id, code = _reset_ids(request)
    password = str((await request.post()).get("password", ""))
    _ = gettext_for(request)
    async with app.sessions() as s:
        shown = await s.get(verification.VerificationCode, code_id)
    refusal = password_refusal(request, password, _min_length(shown))
    if refusal:
        return _reset_page(request, shown, True, refusal, 400)
    account = f"link:{code_id}"
    wait = await locked(request, "code", account)
    if wait is not None:
        return _reset_page(request, shown, True, too_many(request, wait), 429)
    secret = ensure_secret(app.settings, "secret_key")
    async with transaction(app.sessions) as s:
        row = await verification.check_by_id(s, code_id, verification.LINKS, code,
                                              app.clock.now(), secret)
        if row is not None and row.staff_id is not None:
            staff = await s.get_one(Staff, row.staff_id)
            set_password(staff, password)
        elif row is not None and row.guardian_id is not None:
            guardian = await s.get_one(Guardian, row.guardian_id)
            set_password(guardian, password)
            guardian.email_verified = True  # the link reached this inbox
    if row is None:
        await failed(request, "code", account)
        return _reset_page(request, shown, False, status=410)
    logout(request)
    flash(request, _("Your password has been changed. Please log in with the new password."))
    raise web.HTTPFound("/staff/login" if row.staff_id is not None else "/login")


# ---------------------------------------------------------------------------------------------
# Staff


@routes.get("/staff/login")
async def staff_login_form(request: web.Request) -> web.Response:
    return render(request, "staff_login.html",
                  {"next": safe_next(request.query.get("next"), "/staff/")})


@routes.post("/staff/login")
async def staff_login_submit(request: web.Request) -> web.Response:
    app = app_of(request)
    data = await request.post()
    email = str(data.get("email", "")).strip().lower()
    password = str(data.get("password", ""))
    nxt = safe_next(str(data.get("next", "")), "/staff/")
    _ = gettext_for(request)
    async with app.sessions() as s:
        staff = await s.scalar(select(Staff).where(func.lower(Staff.email) == email))
    account = f"s:{staff.id}" if staff else f"?{email}"
    wait = await locked(request, "staff-login", account)
    if wait is None and (staff is None or not staff.active
                         or not verify_password(staff.password_hash, password)):
        wait = await failed(request, "staff-login", account)
        if wait is None:
            return render(request, "staff_login.html", {"next": nxt, "email": email, "error": _(
                "The email address or the password is not correct.")}, status=401)
    if wait is not None or staff is None:
        return render(request, "staff_login.html", {"next": nxt, "email": email,
                                                    "error": too_many(request, wait or 1)},
                      status=429)
    await succeeded(request, "staff-login", account)
    login_staff(request, staff)
    raise web.HTTPFound(nxt)


@routes.post("/staff/logout")
async def staff_logout(request: web.Request) -> web.Response:
    logout(request)
    raise web.HTTPFound("/staff/login")


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
