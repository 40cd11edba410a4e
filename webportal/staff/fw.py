"""The staff portal's only contact points with the shared web framework.

PROVISIONAL: stands alone until webportal.app / i18n / security land; then every function
here delegates to them, and nothing else in webportal.staff changes.
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from renraku.app import App
from renraku.services.broadcast_mail import smtp_sender
from renraku.services.events import Send

APP_KEY = web.AppKey("renraku_app", App)
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_env = jinja2.Environment(
    loader=jinja2.ChoiceLoader([
        jinja2.FileSystemLoader(TEMPLATES),
        jinja2.DictLoader({"base.html": "<!doctype html><html><head><meta charset='utf-8'>"
                           "<title>{% block title %}{% endblock %}</title></head>"
                           "<body>{% block content %}{% endblock %}</body></html>"}),
    ]),
    autoescape=True,
    extensions=["jinja2.ext.i18n"],
)
_env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]


def app_of(request: web.Request) -> App:
    return request.config_dict[APP_KEY]


def app_of_application(app: web.Application) -> App:
    return app[APP_KEY]


async def staff_id(request: web.Request) -> int | None:
    # Provisional test-only identity until the shared cookie sessions land: never honoured
    # outside testing, so a stray cookie cannot log anyone in.
    if not app_of(request).settings.testing:
        return None
    raw = request.cookies.get("dev_staff")
    return int(raw) if raw and raw.isdigit() else None


def login_redirect(request: web.Request) -> web.HTTPException:
    return web.HTTPFound("/staff/login")


def gettext_for(request: web.Request) -> Callable[..., str]:
    def _(text: str, **kw: Any) -> str:
        return text % kw if kw else text

    return _


def language_of(request: web.Request) -> str:
    return "ja"


def csrf_token(request: web.Request) -> str:
    return ""


def render(request: web.Request, template: str, context: dict[str, Any],
           status: int = 200) -> web.Response:
    html = _env.get_template(template).render(**context)
    return web.Response(text=html, content_type="text/html", status=status)


def mail_sender(app: App) -> Send:
    return smtp_sender(app.settings)


async def send_mail(request: web.Request, message: EmailMessage) -> None:
    await mail_sender(app_of(request))(message)
