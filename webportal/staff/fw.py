"""The staff portal's contact points with the shared web framework (webportal/README.md).

Kept as one small module so the staff handlers name one place for sessions, rendering,
translations and mail.
"""

from __future__ import annotations

from email.message import EmailMessage

from aiohttp import web

from models import Staff
from renraku.app import App
from renraku.services import mail
from renraku.services.events import Send
from webportal import security
from webportal.keys import APP_KEY
from webportal.security import csrf_token
from webportal.templating import gettext_for, language_of, render

__all__ = [
    "APP_KEY",
    "app_of",
    "app_of_application",
    "cookie_staff_id",
    "csrf_token",
    "gettext_for",
    "language_of",
    "login_redirect",
    "mail_sender",
    "render",
    "send_mail",
    "staff_id",
    "staff_still_signed_in",
]


def app_of(request: web.Request) -> App:
    return security.app_of(request)


def app_of_application(app: web.Application) -> App:
    return app[APP_KEY]


async def staff_id(request: web.Request) -> int | None:
    """The signed-in staff member's id (exists, active, password unchanged), else None."""
    return await security.signed_in_staff_id(request)


def cookie_staff_id(request: web.Request) -> int | None:
    """The staff id the session cookie names, not yet checked: load the row, then ask
    ``staff_still_signed_in``."""
    return security.staff_id(request)


def staff_still_signed_in(request: web.Request, staff: Staff | None) -> bool:
    return security.staff_still_signed_in(request, staff)


def login_redirect(request: web.Request) -> web.HTTPException:
    """Nobody from the staff signed in: a guardian gets 403, anyone else the staff login."""
    return security.staff_login_required(request)


def mail_sender(app: App) -> Send:
    return mail.sender(app.settings)


async def send_mail(request: web.Request, message: EmailMessage) -> None:
    await mail_sender(app_of(request))(message)
