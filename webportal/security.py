"""Sessions in signed cookies, CSRF, password hashing, rate limits and the auth decorators.

The session is a small JSON dict in one HMAC-signed cookie (HttpOnly, SameSite=Lax,
Secure when the portal is served over https). It carries a random session id ``sid`` that
:func:`login_guardian` / :func:`login_staff` replace (fixation defence), as does
:func:`rotate` when a signed-in person gains access; the CSRF token, the language and who
is signed in. The account's ``session_epoch`` is kept beside the user id: a password
change (``renraku.services.passwords.set_password``) raises it and signs out every browser.
A signed-in session ends after the idle and absolute times in the settings (staff 30 min
and 12 h, guardians 14 and 30 days by default).

Handlers use the decorators::

    @routes.get("/staff/things")
    @require_staff()             # or require_staff("admin")
    async def things(request: web.Request) -> web.Response:
        staff = signed_staff(request)  # models.Staff, loaded and active
        ...

    @require_guardian
    async def page(request): guardian = signed_guardian(request)  # models.Guardian
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web

from models import Guardian, Staff
from renraku.app import App
from renraku.services.passwords import hash_password, verify_password
from webportal.keys import APP_KEY, SECRET_KEY

__all__ = [
    "csrf_token",
    "guardian_id",
    "hash_password",
    "login_guardian",
    "login_staff",
    "logout",
    "require_guardian",
    "require_staff",
    "staff_id",
    "verify_password",
]

COOKIE = "renraku_session"
SESSION_AGE = timedelta(days=30)
SEEN_STEP = 60  # seconds: how fresh the idle clock is kept
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Session(dict[str, Any]):
    """The request's session; setting or deleting a key marks it for writing back."""

    changed = False

    def __setitem__(self, key: str, value: Any) -> None:
        self.changed = True
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.changed = True
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        self.changed = self.changed or key in self
        return super().pop(key, *default)

    def rotate(self) -> None:
        """New id and CSRF token for the same signed-in person (their access changed)."""
        self["sid"] = secrets.token_urlsafe(16)
        self["csrf"] = secrets.token_urlsafe(24)

    def reset(self) -> None:
        """New id, new CSRF token, nobody signed in; the language stays."""
        lang = self.get("lang")
        self.clear()
        self.changed = True
        self["sid"] = secrets.token_urlsafe(16)
        self["csrf"] = secrets.token_urlsafe(24)
        if lang:
            self["lang"] = lang


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    mac = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def unsign(secret: bytes, value: str) -> dict[str, Any] | None:
    try:
        body, mac = value.split(".", 1)
        good = hmac.new(secret, body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(good, _unb64(mac)):
            return None
        data = json.loads(_unb64(body))
    except (ValueError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


SESSION_KEY = web.RequestKey("renraku_session", Session)
GUARDIAN_KEY = web.RequestKey("renraku_guardian", Guardian)
STAFF_KEY = web.RequestKey("renraku_staff", Staff)


def session_of(request: web.Request) -> Session:
    return request[SESSION_KEY]


def signed_guardian(request: web.Request) -> Guardian:
    """The guardian loaded by ``require_guardian`` for this request."""
    return request[GUARDIAN_KEY]


def signed_staff(request: web.Request) -> Staff:
    """The staff member loaded by ``require_staff`` for this request."""
    return request[STAFF_KEY]


def app_of(request: web.Request) -> App:
    return request.config_dict[APP_KEY]


def _expired(app: App, data: dict[str, Any]) -> bool:
    return float(data.get("exp", 0)) < app.clock.now().timestamp()


def _timed_out(app: App, session: Session, now: float) -> bool:
    """A signed-in session left idle too long, or signed in too long ago."""
    s = app.settings
    if "staff" in session:
        idle = timedelta(minutes=s.staff_idle_minutes)
        total = timedelta(hours=s.staff_session_hours)
    elif "gid" in session:
        idle = timedelta(days=s.guardian_idle_days)
        total = timedelta(days=s.guardian_session_days)
    else:
        return False
    return (now - float(session.get("seen", 0)) > idle.total_seconds()
            or now - float(session.get("auth", 0)) > total.total_seconds())


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    app = app_of(request)
    secret: bytes = request.config_dict[SECRET_KEY]
    data = unsign(secret, request.cookies.get(COOKIE, "")) or {}
    if data and _expired(app, data):
        data = {}
    session = Session(data)
    now = app.clock.now().timestamp()
    if "sid" not in session or _timed_out(app, session, now):
        session.reset()
    elif now - float(session.get("seen", now)) > SEEN_STEP:  # not a new cookie every request
        session["seen"] = int(now)
    request[SESSION_KEY] = session
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects are raised; they carry the cookie too
        _write(request, exc, session, secret)
        raise
    _write(request, response, session, secret)
    return response


def _write(request: web.Request, response: web.StreamResponse, session: Session,
           secret: bytes) -> None:
    if not session.changed or response.prepared:
        return
    app = app_of(request)
    payload = {**session, "exp": int((app.clock.now() + SESSION_AGE).timestamp())}
    response.set_cookie(
        COOKIE, sign(secret, payload), max_age=int(SESSION_AGE.total_seconds()), path="/",
        httponly=True, samesite="Lax", secure=app.settings.base_url.startswith("https://"),
    )


# ---------------------------------------------------------------------------------------------
# CSRF


def csrf_token(request: web.Request) -> str:
    """The token every POST form carries as a hidden ``csrf_token`` field."""
    session = session_of(request)
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return str(session["csrf"])


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in UNSAFE_METHODS:
        expected = str(session_of(request).get("csrf", ""))
        sent = request.headers.get("X-CSRF-Token", "")
        if not sent and request.content_type in (
            "application/x-www-form-urlencoded", "multipart/form-data"
        ):
            sent = str((await request.post()).get("csrf_token", ""))
        if not expected or not hmac.compare_digest(expected.encode(), str(sent).encode()):
            raise web.HTTPForbidden(reason="CSRF token missing or wrong")
    return await handler(request)


# ---------------------------------------------------------------------------------------------
# Who is signed in


def _signed_in(request: web.Request, lang: str) -> Session:
    session = session_of(request)
    session.reset()  # new session id: a planted cookie never becomes a signed-in one
    session["auth"] = session["seen"] = int(app_of(request).clock.now().timestamp())
    session["lang"] = lang
    return session


def login_guardian(request: web.Request, guardian: Guardian) -> None:
    session = _signed_in(request, guardian.language)
    session["gid"] = guardian.id
    session["epoch"] = guardian.session_epoch or 0


def login_staff(request: web.Request, staff: Staff) -> None:
    session = _signed_in(request, staff.language)
    session["staff"] = staff.id
    session["epoch"] = staff.session_epoch or 0


def rotate(request: web.Request) -> None:
    session_of(request).rotate()


def logout(request: web.Request) -> None:
    session_of(request).reset()


def guardian_id(request: web.Request) -> int | None:
    """The signed-in guardian's id as the cookie says (not yet checked against the DB)."""
    value = session_of(request).get("gid")
    return int(value) if isinstance(value, int) else None


def staff_id(request: web.Request) -> int | None:
    value = session_of(request).get("staff")
    return int(value) if isinstance(value, int) else None


async def current_guardian(request: web.Request) -> Guardian | None:
    gid = guardian_id(request)
    if gid is None:
        return None
    async with app_of(request).sessions() as s:
        guardian = await s.get(Guardian, gid)
    if guardian is None or session_of(request).get("epoch") != guardian.session_epoch:
        return None
    return guardian


async def current_staff(request: web.Request) -> Staff | None:
    sid = staff_id(request)
    if sid is None:
        return None
    async with app_of(request).sessions() as s:
        staff = await s.get(Staff, sid)
    return staff if staff_still_signed_in(request, staff) else None


def staff_still_signed_in(request: web.Request, staff: Staff | None) -> bool:
    """The cookie's staff member (``staff``, loaded by the caller) exists, is active and
    has not changed password or classes since this session signed in."""
    return (staff is not None and staff.active
            and session_of(request).get("epoch") == staff.session_epoch)


def login_redirect(request: web.Request, path: str = "/login") -> web.HTTPFound:
    return web.HTTPFound(f"{path}?next={quote(request.path_qs, safe='')}")


def safe_next(value: str | None, default: str = "/") -> str:
    """Only local paths: ``next=https://evil.example`` must not become an open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def staff_login_required(request: web.Request) -> web.HTTPException:
    """What a staff page answers when nobody on the staff is signed in.

    A signed-in guardian gets 403 (they are known, just not allowed); anyone else is sent
    to the staff login page.
    """
    if guardian_id(request) is not None:
        return web.HTTPForbidden(text="Staff only")
    return login_redirect(request, "/staff/login")


def require_staff(role: str | None = None) -> Callable[[Handler], Handler]:
    """Staff pages: the signed-in, active staff member in ``signed_staff(request)``.

    ``role="admin"`` lets only school administrators in; class/school scope checks stay in
    the handler (renraku.rules.permissions).
    """

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def inner(request: web.Request) -> web.StreamResponse:
            staff = await current_staff(request)
            if staff is None:
                raise staff_login_required(request)
            if role is not None and staff.role != role:
                raise web.HTTPForbidden(text="Not allowed for your role")
            request[STAFF_KEY] = staff
            return await handler(request)

        return inner

    return wrap


def require_guardian(handler: Handler) -> Handler:
    """Guardian pages: ``signed_guardian(request)`` is set; nobody signed in → login page."""

    @functools.wraps(handler)
    async def inner(request: web.Request) -> web.StreamResponse:
        guardian = await current_guardian(request)
        if guardian is None:
            raise login_redirect(request)
        request[GUARDIAN_KEY] = guardian
        return await handler(request)

    return inner


async def signed_in_staff_id(request: web.Request) -> int | None:
    """The staff id when the cookie's staff member exists, is active and kept the password."""
    staff = await current_staff(request)
    return staff.id if staff is not None else None
