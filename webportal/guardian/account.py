"""マイページ: language, email and phone (re-verified), guardians per child and the primary
role, the child's display name and icon, and the private calendar feed."""

from __future__ import annotations

import io
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web
from icalendar import Calendar
from icalendar import Event as IcsEvent
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Child, Guardian, GuardianPhone
from models.db import transaction
from renraku.rules.phone import may_self_register, try_normalise
from renraku.services import portal, verification
from renraku.services.schools import school_now
from renraku.services.sms import SmsError, send_sms
from renraku.services.throttle import CODES_SENT
from renraku.settings import LANGUAGES, ensure_secret
from webportal.guardian.common import child_page, labels, render_child
from webportal.guardian.register import EMAIL_RE, send_email_code
from webportal.i18n import tr, translator
from webportal.limits import failed, locked, spend, succeeded, too_many
from webportal.security import (
    app_of,
    require_guardian,
    session_of,
    signed_guardian,
)
from webportal.templating import flash, gettext_for, render

routes = web.RouteTableDef()
ICON_SIZE = 256
MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding


async def _settings_page(request: web.Request, status: int = 200, **extra: object) -> web.Response:
    app = app_of(request)
    guardian: Guardian = signed_guardian(request)
    _ = gettext_for(request)
    async with app.sessions() as s:
        children = await portal.guardian_children(s, guardian.id)
        per_child = [(c, await portal.child_guardians(s, c.id)) for c in children]
        phones = list(await s.scalars(select(GuardianPhone).where(
            GuardianPhone.guardian_id == guardian.id).order_by(GuardianPhone.id)))
        pending_phone = await verification.pending(s, guardian.id, "phone", app.clock.now())
        pending_email = await verification.pending(s, guardian.id, "email", app.clock.now())
    feed = (f"{app.settings.base_url}/ical/{guardian.calendar_token}.ics"
            if guardian.calendar_token else "")
    return render(request, "guardian/settings.html", {
        "guardian": guardian, "children": children, "child": None, "per_child": per_child,
        "phones": phones, "pending_phone": pending_phone, "pending_email": pending_email,
        "feed_url": feed, "section": "settings", **labels(_), **extra,
    }, status=status)


@routes.get("/settings")
@require_guardian
async def settings_page(request: web.Request) -> web.Response:
    return await _settings_page(request)


@routes.post("/settings/language")
@require_guardian
async def set_language(request: web.Request) -> web.Response:
    lang = str((await request.post()).get("language", ""))
    if lang not in LANGUAGES:
        raise web.HTTPBadRequest()
    async with transaction(app_of(request).sessions) as s:
        guardian = await s.get_one(Guardian, signed_guardian(request).id)
        guardian.language = lang  # the phone line speaks this language too
    session_of(request)["lang"] = lang
    flash(request, tr(lang, "Your language has been changed."))
    raise web.HTTPFound("/settings")


@routes.post("/settings/email")
@require_guardian
async def change_email(request: web.Request) -> web.Response:
    _ = gettext_for(request)
    email = str((await request.post()).get("email", "")).strip().lower()
    guardian: Guardian = signed_guardian(request)
    if not EMAIL_RE.match(email):
        return await _settings_page(request, 400, error=_("That email address is not valid."))
    wait = await spend(request, "resend", f"g:{guardian.id}", CODES_SENT)
    if wait is not None:
        return await _settings_page(request, 429, error=too_many(request, wait))
    async with app_of(request).sessions() as s:
        taken = await s.scalar(select(func.count()).select_from(Guardian).where(
            Guardian.email == email, Guardian.id != guardian.id))
    if taken:
        return await _settings_page(request, 409, error=_(
            "That email address is already registered to another guardian."))
    if not await send_email_code(request, guardian, email):
        return await _settings_page(request, 503, error=_(
            "We could not send the email just now. Please try again later."))
    flash(request, _("We have sent a code to %(email)s. The address changes when you enter it.",
                     email=email))
    raise web.HTTPFound("/settings")


async def _verify_code(
    request: web.Request, purpose: str,
    apply: Callable[[AsyncSession, int, str], Awaitable[None]],
    confirmed: Callable[[Callable[..., str]], str],
) -> web.Response:
    """Check a code sent to a new email address or mobile; ``apply`` stores the target."""
    _ = gettext_for(request)
    app = app_of(request)
    guardian: Guardian = signed_guardian(request)
    code = str((await request.post()).get("code", ""))
    wait = await locked(request, "code", f"g:{guardian.id}")
    if wait is not None:
        return await _settings_page(request, 429, error=too_many(request, wait))
    async with transaction(app.sessions) as s:
        row = await verification.check(s, guardian.id, purpose, code, app.clock.now(),
                                       ensure_secret(app.settings, "secret_key"))
        if row is not None:
            await apply(s, guardian.id, row.target)
    if row is None:
        wait = await failed(request, "code", f"g:{guardian.id}")
        if wait is not None:
            return await _settings_page(request, 429, error=too_many(request, wait))
        return await _settings_page(request, 400, error=_(
            "The code is not correct or has expired."))
    await succeeded(request, "code", f"g:{guardian.id}")
    flash(request, confirmed(_))
    raise web.HTTPFound("/settings")


async def _store_email(s: AsyncSession, guardian_id: int, address: str) -> None:
    taken = await s.scalar(select(func.count()).select_from(Guardian).where(
        Guardian.email == address, Guardian.id != guardian_id))
    if not taken:
        g = await s.get_one(Guardian, guardian_id)
        g.email, g.email_verified = address, True


async def _store_mobile(s: AsyncSession, guardian_id: int, e164: str) -> None:
    # The new mobile replaces the old one; a home landline (proxy) stays.
    await s.execute(delete(GuardianPhone).where(
        GuardianPhone.guardian_id == guardian_id, GuardianPhone.kind == "mobile",
        GuardianPhone.e164 != e164))
    existing = await s.scalar(select(GuardianPhone).where(
        GuardianPhone.guardian_id == guardian_id, GuardianPhone.e164 == e164))
    if existing is None:
        s.add(GuardianPhone(guardian_id=guardian_id, e164=e164, kind="mobile", verified=True))
    else:
        existing.verified = True


@routes.post("/settings/email/verify")
@require_guardian
async def verify_email_code(request: web.Request) -> web.Response:
    return await _verify_code(request, "email", _store_email,
                              lambda _: _("Your email address has been confirmed."))


@routes.post("/settings/phone")
@require_guardian
async def change_phone(request: web.Request) -> web.Response:
    _ = gettext_for(request)
    app = app_of(request)
    guardian: Guardian = signed_guardian(request)
    number = try_normalise(str((await request.post()).get("phone", "")),
                           app.settings.default_region)
    if number is None:
        return await _settings_page(request, 400, error=_(
            "That phone number is not valid. Enter it like 090-1234-5678."))
    if not may_self_register(number):
        return await _settings_page(request, 400, error=_(
            "Only mobile numbers (070, 080, 090) can be confirmed by SMS. To register a "
            "landline, please ask the class teacher."))
    wait = await spend(request, "resend", f"g:{guardian.id}", CODES_SENT)
    if wait is not None:
        return await _settings_page(request, 429, error=too_many(request, wait))
    async with transaction(app.sessions) as s:
        _row, code = await verification.issue(s, guardian.id, "phone", number.e164,
                                              app.clock.now(),
                                              ensure_secret(app.settings, "secret_key"))
    try:
        await send_sms(app, number.e164, tr(
            guardian.language, "School contact: your code is %(code)s", code=code))
    except SmsError:
        return await _settings_page(request, 503, error=_(
            "We could not send the SMS just now. Please try again later."))
    flash(request, _("We have sent a code by SMS to %(phone)s.", phone=number.national))
    raise web.HTTPFound("/settings")


@routes.post("/settings/phone/verify")
@require_guardian
async def verify_phone_code(request: web.Request) -> web.Response:
    return await _verify_code(request, "phone", _store_mobile,
                              lambda _: _("Your mobile number has been changed."))


@routes.post(r"/c/{child_id:\d+}/primary")
@require_guardian
async def hand_primary(request: web.Request) -> web.Response:
    _ = gettext_for(request)
    raw = str((await request.post()).get("guardian_id", ""))
    async with transaction(app_of(request).sessions) as s:
        cp = await child_page(request, s)
        if not raw.isdigit():
            raise web.HTTPBadRequest()
        try:
            await portal.hand_primary(s, cp.child.id, cp.guardian.id, int(raw))
        except portal.NotPrimary as exc:
            raise web.HTTPForbidden(text="Only the primary guardian can do this") from exc
        except ValueError as exc:
            raise web.HTTPNotFound() from exc
    flash(request, _("The primary guardian has been changed."))
    raise web.HTTPFound("/settings")


@routes.post("/settings/calendar")
@require_guardian
async def regenerate_feed(request: web.Request) -> web.Response:
    _ = gettext_for(request)
    async with transaction(app_of(request).sessions) as s:
        guardian = await s.get_one(Guardian, signed_guardian(request).id)
        guardian.calendar_token = secrets.token_urlsafe(24)  # the old URL stops working
    flash(request, _("A new calendar URL has been made. The old one no longer works."))
    raise web.HTTPFound("/settings#calendar")


# ---------------------------------------------------------------------------------------------
# Child profile: display name and icon


@routes.get(r"/c/{child_id:\d+}/profile")
@require_guardian
async def profile_form(request: web.Request) -> web.Response:
    async with app_of(request).sessions() as s:
        cp = await child_page(request, s)
    return render_child(cp, "guardian/profile.html", {}, "profile")


def _icon_dir(request: web.Request) -> Path:
    return app_of(request).settings.data_dir / "icons"


def resize_icon(raw: bytes) -> bytes:
    """Validate an uploaded picture with Pillow and make a square JPEG icon of it."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    with Image.open(io.BytesIO(raw)) as probe:
        probe.verify()  # structure check; the image must be reopened after verify()
    with Image.open(io.BytesIO(raw)) as img:
        if img.format not in ("JPEG", "PNG", "GIF", "WEBP"):
            raise ValueError(img.format)
        img = ImageOps.exif_transpose(img).convert("RGB")
        icon = ImageOps.fit(img, (ICON_SIZE, ICON_SIZE))
    out = io.BytesIO()
    icon.save(out, "JPEG", quality=85)
    return out.getvalue()


@routes.post(r"/c/{child_id:\d+}/profile")
@require_guardian
async def profile_submit(request: web.Request) -> web.Response:
    _ = gettext_for(request)
    data = await request.post()
    upload = data.get("icon")
    icon_bytes = None
    if isinstance(upload, web.FileField) and upload.filename:
        try:
            icon_bytes = resize_icon(upload.file.read())
        except (UnidentifiedImageError, ValueError, OSError, Image.DecompressionBombError):
            async with app_of(request).sessions() as s:
                cp = await child_page(request, s)
            return render_child(cp, "guardian/profile.html", {"error": _(
                "That file is not a picture we can use. Choose a JPEG or PNG photo.")},
                "profile", status=400)
    async with transaction(app_of(request).sessions) as s:
        cp = await child_page(request, s)
        child = await s.get_one(Child, cp.child.id)
        child.display_name = str(data.get("display_name", "")).strip()[:100]
        if icon_bytes is not None:
            folder = _icon_dir(request)
            folder.mkdir(parents=True, exist_ok=True)
            name = f"child-{child.id}-{secrets.token_hex(6)}.jpg"
            (folder / name).write_bytes(icon_bytes)
            old = child.icon_path
            child.icon_path = name
            if old and "/" not in old:
                (folder / old).unlink(missing_ok=True)
        elif data.get("remove_icon"):
            child.icon_path = None
    flash(request, _("Saved."))
    raise web.HTTPFound(f"/c/{cp.child.id}/profile")


@routes.get(r"/c/{child_id:\d+}/icon")
@require_guardian
async def icon(request: web.Request) -> web.StreamResponse:
    async with app_of(request).sessions() as s:
        cp = await child_page(request, s)
    name = cp.child.icon_path
    path = _icon_dir(request) / name if name and "/" not in name else None
    if path is None or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "private, max-age=3600",
                                           "Content-Type": "image/jpeg"})


# ---------------------------------------------------------------------------------------------
# Private iCalendar feed


@routes.get(r"/ical/{token}.ics")
async def feed(request: web.Request) -> web.Response:
    app = app_of(request)
    async with app.sessions() as s:
        guardian = await portal.guardian_by_calendar_token(s, request.match_info["token"])
        if guardian is None:
            raise web.HTTPNotFound()
        t = translator(guardian.language)
        kinds = labels(t)["kinds"]
        cal = Calendar()
        cal.add("prodid", "-//Renraku//School contact//EN")
        cal.add("version", "2.0")
        cal.add("x-wr-calname", tr(guardian.language, "School contact"))
        for child in await portal.guardian_children(s, guardian.id):
            today = school_now(app.clock, child.school).date()
            first, last = today - timedelta(days=62), today + timedelta(days=366)
            start, end = portal.local_bounds(first, last, ZoneInfo(child.school.timezone))
            who = child.shown_name
            for ev in await portal.school_and_class_events(s, child, start, end):
                _add(cal, f"event-{ev.id}-{child.id}", f"{ev.title} ({who})", ev.starts_at,
                     ev.ends_at, ev.all_day, ev.note, child.school.timezone, ev.updated_at,
                     cancelled=ev.status == "cancelled")
            for rep in await portal.child_reports(s, [child.id], first, last):
                item = IcsEvent()
                item.add("uid", f"report-{rep.id}@renraku")
                item.add("summary", f"{kinds.get(rep.kind, rep.kind)}: {who}")
                item.add("dtstart", rep.day)
                item.add("dtend", rep.day + timedelta(days=1))
                item.add("dtstamp", rep.updated_at)
                cal.add_component(item)
            for fe in await portal.family_events(s, [child.id], start, end):
                # A family event is never edited (only deleted): created is its last change.
                _add(cal, f"family-{fe.id}", f"{fe.title} ({who})", fe.starts_at, fe.ends_at,
                     fe.all_day, fe.note, child.school.timezone, fe.created_at)
    # RFC 5545 §3.2.19: every TZID used needs its VTIMEZONE, for clients without IANA names.
    cal.add_missing_timezones()
    return web.Response(body=cal.to_ical(), headers={
        "Content-Type": "text/calendar; charset=utf-8", "Cache-Control": "private, no-store"})


def _add(cal: Calendar, uid: str, summary: str, starts: datetime, ends: datetime,
         all_day: bool, note: str, tz: str, changed: datetime,
         cancelled: bool = False) -> None:
    """One VEVENT; DTSTAMP is when the entry last changed, so clients see the change."""
    item = IcsEvent()
    item.add("uid", f"{uid}@renraku")
    item.add("summary", summary)
    zone = ZoneInfo(tz)
    if all_day:
        first = starts.astimezone(zone).date()
        last = ends.astimezone(zone).date()
        item.add("dtstart", first)
        item.add("dtend", max(last, first + timedelta(days=1)))
    else:
        item.add("dtstart", starts.astimezone(zone))
        item.add("dtend", ends.astimezone(zone))
    item.add("dtstamp", changed)
    if note:
        item.add("description", note)
    if cancelled:
        item.add("status", "CANCELLED")
    cal.add_component(item)

