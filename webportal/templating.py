"""Jinja2 rendering in the request's language, with the helpers every page gets.

``render(request, "guardian/home.html", {...})`` adds: ``lang``, ``languages``,
``csrf_token``, ``request``, ``flash`` (one-shot message), date helpers (``format_day``,
``format_date``, ``format_time``, ``format_month``) and ``_``/``gettext``/``ngettext``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from renraku.settings import LANGUAGES
from webportal import i18n
from webportal.security import SESSION_KEY, csrf_token, session_of

TEMPLATES = Path(__file__).resolve().parent / "templates"
ENV_KEY = web.AppKey("renraku_jinja", jinja2.Environment)


def make_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "xml"], default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.jinja_gettext, i18n.jinja_ngettext, newstyle=True
    )
    return env


def language_of(request: web.Request) -> str:
    """Session (switch or login preference), then Accept-Language, then Japanese."""
    lang = session_of(request).get("lang") if SESSION_KEY in request else None
    if lang in LANGUAGES:
        return str(lang)
    return i18n.negotiate(request.headers.get("Accept-Language", "")) or i18n.DEFAULT_LANGUAGE


def gettext_for(request: web.Request) -> Callable[..., str]:
    """``_`` for handler code: ``_("Saved %(name)s", name=x)`` in the request's language."""
    return i18n.translator(language_of(request))


def flash(request: web.Request, message: str, kind: str = "ok") -> None:
    """A message shown once on the next page (after a redirect)."""
    session_of(request)["flash"] = [kind, message]


def helpers(lang: str) -> dict[str, Any]:
    def fmt_time(t: time | datetime | None) -> str:
        return i18n.format_time(t, lang) if t is not None else ""

    return {
        "format_day": lambda d: i18n.format_day(d, lang),
        "format_date": lambda d, fmt="medium": i18n.format_date(d, lang, fmt),
        "format_month": lambda d: i18n.format_month(d, lang),
        "format_time": fmt_time,
        "weekday_names": i18n.weekday_names(lang),
    }


def render_string(template: str, context: dict[str, Any], lang: str,
                  env: jinja2.Environment | None = None) -> str:
    """Render outside a request (emails) in ``lang``."""
    env = env or make_env()
    with i18n.using(lang):
        return env.get_template(template).render(
            **helpers(lang), lang=lang, _=i18n.translator(lang), **context
        )


def render(request: web.Request, template: str, context: dict[str, Any] | None = None,
           status: int = 200) -> web.Response:
    lang = language_of(request)
    env = request.config_dict[ENV_KEY]
    session = session_of(request)
    shown = session.pop("flash", None)
    base: dict[str, Any] = {
        "request": request,
        "lang": lang,
        "languages": [(code, i18n.LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "csrf_token": csrf_token(request),
        "flash": shown,
        "signed_in_guardian": session.get("gid") is not None,
        "signed_in_staff": session.get("staff") is not None,
        **helpers(lang),
    }
    with i18n.using(lang):
        html = env.get_template(template).render(**{**base, **(context or {})})
    return web.Response(text=html, content_type="text/html", status=status,
                        headers={"Cache-Control": "no-store"})
