"""Password reset without email: a six-digit code by SMS to the registered mobile number.

``/password/sms``: the number → a code (15 minutes, single use, five tries) → a new
password. Requests and tries are counted per number and per address. Whether the number is
registered or not, the answer is the same page, so the form cannot be used to find out.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Guardian, GuardianPhone
from models.db import transaction
from models.enums import PhoneKind
from renraku.rules.phone import try_normalise
from renraku.services import verification
from renraku.services.passwords import GUARDIAN_MIN, set_password
from renraku.services.sms import SmsError, send_sms
from renraku.services.throttle import Limit
from renraku.settings import ensure_secret
from webportal.auth import password_refusal
from webportal.i18n import tr
from webportal.limits import client_ip, failed, locked, spend, succeeded, too_many
from webportal.security import app_of, logout, session_of
from webportal.templating import flash, gettext_for, render

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
NUMBER_LIMIT = Limit(3, timedelta(hours=1))  # codes sent to one number
ADDRESS_LIMIT = Limit(10, timedelta(hours=1))  # numbers asked for from one address
PENDING = "reset_sms"  # session key: the number a code was asked for


async def _guardian_on(s: AsyncSession, e164: str) -> Guardian | None:
    """The guardian who signs in with this verified mobile number, if any."""
    return await s.scalar(
        select(Guardian).join(GuardianPhone)
        .where(GuardianPhone.e164 == e164, GuardianPhone.verified.is_(True),
               GuardianPhone.kind == PhoneKind.MOBILE, Guardian.password_hash.is_not(None))
        .order_by(Guardian.id))


def _page(request: web.Request, status: int = 200, **ctx: object) -> web.Response:
    return render(request, "password_sms.html", ctx, status=status)


@routes.get("/password/sms")
async def sms_form(request: web.Request) -> web.Response:
    return _page(request, step="number" if PENDING not in session_of(request) else "code")


@routes.post("/password/sms")
async def sms_send(request: web.Request) -> web.Response:
    app = app_of(request)
    _ = gettext_for(request)
    raw = str((await request.post()).get("phone", "")).strip()
    number = try_normalise(raw, app.settings.default_region) if len(raw) <= 30 else None
    if number is None or number.kind != PhoneKind.MOBILE:
        return _page(request, 400, step="number", phone=raw, error=_(
            "Enter the mobile number you registered (070, 080 or 090)."))
    per_address = await spend(request, "reset-sms", client_ip(request), ADDRESS_LIMIT)
    per_number = await spend(request, "reset-sms", number.e164, NUMBER_LIMIT)
    if per_address is not None or per_number is not None:
        return _page(request, 429, step="number", phone=raw, error=_(
            "Too many attempts. Please wait an hour and try again."))
    async with transaction(app.sessions) as s:
        guardian = await _guardian_on(s, number.e164)
        if guardian is not None:
            _row, code = await verification.issue(
                s, guardian.id, "reset_sms", number.e164, app.clock.now(),
                ensure_secret(app.settings, "secret_key"))
            lang = guardian.language
    if guardian is not None:
        try:
            await send_sms(app, number.e164, tr(
                lang, "School contact: your code to set a new password is %(code)s. It works "
                "for 15 minutes. If you did not ask for it, ignore this message.", code=code))
        except SmsError:  # on record in sms_messages; the answer must not differ
            log.warning("password reset SMS to guardian %s not sent", guardian.id)
    session_of(request)[PENDING] = number.e164
    # The same answer whether or not the number is registered: no account probing.
    flash(request, _("If this number is registered, we have sent a code by SMS. It works for "
                     "15 minutes."))
    raise web.HTTPSeeOther("/password/sms")


@routes.post("/password/sms/verify")
async def sms_verify(request: web.Request) -> web.Response:
    app = app_of(request)
    _ = gettext_for(request)
    data = await request.post()
    code, password = str(data.get("code", "")).strip(), str(data.get("password", ""))
    e164 = session_of(request).get(PENDING)
    if not isinstance(e164, str):
        raise web.HTTPSeeOther("/password/sms")
    refusal = password_refusal(request, password, GUARDIAN_MIN)
    if refusal:
        return _page(request, 400, step="code", error=refusal)
    wait = await locked(request, "reset-sms-code", e164)
    if wait is not None:
        return _page(request, 429, step="code", error=too_many(request, wait))
    async with transaction(app.sessions) as s:
        guardian = await _guardian_on(s, e164)
        row = None
        if guardian is not None and code.isdigit():
            row = await verification.check(s, guardian.id, "reset_sms", code, app.clock.now(),
                                           ensure_secret(app.settings, "secret_key"))
        if row is not None and guardian is not None:
            set_password(guardian, password)
    if row is None:
        wait = await failed(request, "reset-sms-code", e164)
        if wait is not None:
            return _page(request, 429, step="code", error=too_many(request, wait))
        return _page(request, 400, step="code", error=_(
            "The code is not correct or has expired. Check the SMS, or ask for a new code."))
    await succeeded(request, "reset-sms-code", e164)
    logout(request)
    flash(request, _("Your password has been changed. Please log in with the new password."))
    raise web.HTTPFound("/login")


@routes.post("/password/sms/restart")
async def sms_restart(request: web.Request) -> web.Response:
    session_of(request).pop(PENDING, None)
    raise web.HTTPSeeOther("/password/sms")
