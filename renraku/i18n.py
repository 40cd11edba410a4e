"""The translation catalogs for everything that speaks to people: loading and ``tr()``.

The catalogs are ``webportal/locale/<lang>/LC_MESSAGES/messages.po`` (one set for the
portal, the call flows' emails and the services' emails). They live in the portal's folder
for history, but loading them is here, in the core, because services may not import the
web portal: ``renraku.services.broadcast_mail`` says its emails with :func:`tr`, and
``webportal.i18n`` re-uses these functions (and adds the request's language, Jinja2 and
catalog maintenance). Reading a path of that folder is not importing the portal.
"""

from __future__ import annotations

import gettext as gettext_module
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from renraku.settings import LANGUAGES

LOCALE_DIR = Path(__file__).resolve().parent.parent / "webportal" / "locale"
DEFAULT_LANGUAGE = "ja"
BABEL_LOCALE = {"ja": "ja", "en": "en", "zh": "zh_Hans", "es": "es"}
MARK_OPEN, MARK_CLOSE = "⟦", "⟧"


class _Marker(gettext_module.NullTranslations):
    """Fallback for untranslated strings in testing: visible markers instead of English."""

    def gettext(self, message: str) -> str:
        return f"{MARK_OPEN}{message}{MARK_CLOSE}"

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return self.gettext(msgid1 if n == 1 else msgid2)


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"


def read_catalog(lang: str) -> Catalog:
    with po_path(lang).open("rb") as fh:
        return read_po(fh, locale=BABEL_LOCALE[lang])


def compile_catalog(lang: str, mark_missing: bool = False) -> gettext_module.GNUTranslations:
    buf = io.BytesIO()
    write_mo(buf, read_catalog(lang))
    buf.seek(0)
    translations = gettext_module.GNUTranslations(buf)
    if mark_missing:
        translations.add_fallback(_Marker())
    return translations


class Catalogs:
    """All four compiled catalogs, loaded once."""

    def __init__(self, mark_missing: bool = False) -> None:
        self.by_lang = {lang: compile_catalog(lang, mark_missing) for lang in LANGUAGES}

    def get(self, lang: str) -> gettext_module.GNUTranslations:
        return self.by_lang.get(lang) or self.by_lang[DEFAULT_LANGUAGE]


_catalogs: Catalogs | None = None


def load(mark_missing: bool = False) -> Catalogs:
    global _catalogs
    _catalogs = Catalogs(mark_missing)
    return _catalogs


def catalogs() -> Catalogs:
    return _catalogs or load()


def translator(lang: str) -> Callable[..., str]:
    """``_("Hello %(name)s", name=...)`` in ``lang`` (for handlers and emails)."""
    trans = catalogs().get(lang)

    def _(message: str, **variables: Any) -> str:
        text = trans.gettext(message)
        return text % variables if variables else text

    return _


def N_(message: str) -> str:
    """Marks a msgid for extraction where it is translated later, when shown (form errors)."""
    return message


def tr(lang: str, message: str, **variables: Any) -> str:
    """One string in ``lang`` (emails, SMS): ``tr(guardian.language, "Hello %(n)s", n=x)``."""
    return translator(lang)(message, **variables)


def ntranslator(lang: str) -> Callable[..., str]:
    trans = catalogs().get(lang)

    def n_(singular: str, plural: str, n: int, **variables: Any) -> str:
        return trans.ngettext(singular, plural, n) % {"num": n, **variables}

    return n_
