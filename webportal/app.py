"""The web portal's aiohttp application: middlewares, templates, static files, all routes.

``create_app(app)`` is what ``renraku web`` serves and what tests start on a loopback port.
See webportal/README.md for adding routes, templates and translations.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web
from sqlalchemy import select

from models import SmsMessage
from renraku.app import App
from renraku.settings import LANGUAGES, ensure_secret
from webportal import auth, i18n, ops, sounds, speech
from webportal.keys import APP_KEY, SECRET_KEY
from webportal.security import (
    Handler,
    csrf_middleware,
    safe_next,
    session_middleware,
    session_of,
)
from webportal.templating import ENV_KEY, make_env, render

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
MAX_UPLOAD = 8 * 1024 * 1024  # child icons: phone photos are a few MB before resizing

routes = web.RouteTableDef()


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """4xx/5xx as a page in the visitor's language instead of aiohttp's bare text."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type not in ("text/plain", "text/html"):
            raise
        return render(request, "error.html", {"status": exc.status, "detail": exc.text},
                      status=exc.status)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render(request, "error.html", {"status": 500, "detail": ""}, status=500)


# Only the portal's own files: no inline script or style (a stored script in a memo or a
# name cannot run), no framing, forms post only here.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
HSTS = "max-age=31536000; includeSubDomains"


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    # Registration and calendar URLs carry secrets: never leak them in a Referer.
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", CSP)
    if request.config_dict[APP_KEY].settings.base_url.startswith("https://"):
        response.headers.setdefault("Strict-Transport-Security", HSTS)


@routes.get(r"/lang/{lang}")
async def switch_language(request: web.Request) -> web.Response:
    lang = request.match_info["lang"]
    if lang in LANGUAGES:
        session_of(request)["lang"] = lang
    raise web.HTTPFound(safe_next(request.query.get("next")))


def dev_pages_enabled(app: App) -> bool:
    return app.settings.testing or bool(app.settings.extra.get("dev_pages"))


@routes.get("/dev/outbox")
async def dev_outbox(request: web.Request) -> web.Response:
    """SMS kept by the 'outbox' backend, newest first (testing/dev only)."""
    app = request.config_dict[APP_KEY]
    if not dev_pages_enabled(app):
        raise web.HTTPNotFound()
    async with app.sessions() as s:
        rows = list(await s.scalars(select(SmsMessage).order_by(SmsMessage.id.desc()).limit(100)))
    return render(request, "dev_outbox.html", {"messages": rows})


def create_app(app: App) -> web.Application:
    i18n.load(mark_missing=app.settings.testing)
    web_app = web.Application(
        middlewares=[session_middleware, error_pages, csrf_middleware],
        client_max_size=MAX_UPLOAD,
    )
    web_app[APP_KEY] = app
    web_app[SECRET_KEY] = ensure_secret(app.settings, "secret_key").encode()
    web_app[ENV_KEY] = make_env()
    web_app.on_response_prepare.append(_security_headers)
    web_app.cleanup_ctx.append(speech.tasks_ctx)
    web_app.router.add_static("/static", STATIC)
    web_app.router.add_routes(routes)
    auth.setup(web_app)
    ops.setup(web_app)
    sounds.setup(web_app)

    from webportal import guardian

    guardian.setup(web_app)
    from webportal.staff import broadcast

    broadcast.setup(web_app)  # broadcast console and the no-login survey link page
    _add_staff_portal(web_app, app)
    return web_app


def _add_staff_portal(web_app: web.Application, app: App) -> None:
    import webportal.staff
    from webportal.staff import fw

    if fw.APP_KEY is not APP_KEY:  # until the staff portal's fw.py uses webportal.keys
        web_app[fw.APP_KEY] = app
    webportal.staff.setup(web_app)


async def start(
    app: App, host: str | None = None, port: int | None = None, reuse_port: bool = False
) -> web.AppRunner:
    """Serve the portal (for ``renraku web`` and a combined ``renraku run``); cleanup() stops."""
    runner = web.AppRunner(create_app(app), access_log_format='%a "%r" %s %b %Tf')
    await runner.setup()
    await web.TCPSite(runner, host or app.settings.web_host, port or app.settings.web_port,
                      reuse_port=reuse_port or None).start()
    return runner
