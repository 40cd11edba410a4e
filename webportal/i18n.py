"""The portal's four languages: Babel catalogs, the request's language, Jinja2 gettext, dates.

Catalogs are ``webportal/locale/<lang>/LC_MESSAGES/messages.po``; they are read and
compiled in memory (by :mod:`renraku.i18n`, which services use too) when the portal starts,
so editing a .po file needs no build step. msgids are English. To add or change strings::

    python -m webportal.i18n update   # extract _()/{% trans %} from webportal/ (and tr()/N_()
                                      # from ivr/ and renraku/services/), merge into .po
    python -m webportal.i18n check    # list msgids with an empty msgstr (the tests do this too)

Language of a request: the session (set by the language switch, or at login from the
person's stored preference), then ``Accept-Language``, then Japanese. In testing mode an
untranslated string renders as ``⟦msgid⟧`` so page-walking tests can spot it.
"""

from __future__ import annotations

import contextvars
import copy
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from pathlib import Path

from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.dates import format_skeleton
from babel.dates import format_time as babel_format_time
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

# Loading the catalogs and tr() are the core's (services use them too); re-exported here.
from renraku.i18n import (  # noqa: F401
    BABEL_LOCALE,
    DEFAULT_LANGUAGE,
    LOCALE_DIR,
    MARK_CLOSE,
    MARK_OPEN,
    Catalogs,
    catalogs,
    compile_catalog,
    load,
    ntranslator,
    po_path,
    read_catalog,
    tr,
    translator,
)
from renraku.settings import LANGUAGES

HERE = Path(__file__).resolve().parent
# Outside the portal, texts for people live in the call flows (the absence confirmation
# email) and in the services (every email to families and staff, the compose form's errors):
# their tr()/N_() texts are extracted too.
CALL_FLOWS = (HERE.parent / "ivr", HERE.parent / "renraku" / "services")
LANGUAGE_NAMES = {"ja": "日本語", "en": "English", "zh": "中文", "es": "Español"}

_current: contextvars.ContextVar[str] = contextvars.ContextVar("lang", default=DEFAULT_LANGUAGE)


@contextmanager
def using(lang: str) -> Iterator[None]:
    """Render templates in ``lang`` inside this block (Jinja's gettext reads it)."""
    token = _current.set(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        _current.reset(token)


def current_language() -> str:
    return _current.get()


# Jinja2's i18n extension calls these; they translate into the language set by ``using``.
def jinja_gettext(message: str) -> str:
    return catalogs().get(_current.get()).gettext(message)


def jinja_ngettext(singular: str, plural: str, n: int) -> str:
    return catalogs().get(_current.get()).ngettext(singular, plural, n)


def negotiate(accept_language: str) -> str | None:
    """The best of our four languages for an ``Accept-Language`` header, or None."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, index, primary))
    return sorted(ranked)[0][2] if ranked else None


# ---------------------------------------------------------------------------------------------
# Formatting with Babel in the page's language


def locale_of(lang: str) -> Locale:
    return Locale.parse(BABEL_LOCALE.get(lang, "ja"))


def format_date(d: date, lang: str, fmt: str = "medium") -> str:
    return babel_format_date(d, fmt, locale=BABEL_LOCALE.get(lang, "ja"))


def format_day(d: date, lang: str) -> str:
    """A date with its weekday, e.g. 2026/12/04(金) or Fri, Dec 4, 2026."""
    loc = BABEL_LOCALE.get(lang, "ja")
    if lang == "ja":
        return babel_format_date(d, "yyyy/MM/dd", locale=loc) + babel_format_date(
            d, "(E)", locale=loc
        )
    return babel_format_date(d, "full", locale=loc)


def format_month(d: date, lang: str) -> str:
    """Month and year the locale's way: 2026年12月, December 2026, diciembre de 2026."""
    return format_skeleton("yMMMM", d, locale=BABEL_LOCALE.get(lang, "ja"))


def format_time(t: time | datetime, lang: str) -> str:
    return babel_format_time(t, "HH:mm", locale=BABEL_LOCALE.get(lang, "ja"))


def format_datetime(dt: datetime, lang: str, tz: str = "Asia/Tokyo") -> str:
    return babel_format_datetime(dt, "short", tzinfo=tz, locale=BABEL_LOCALE.get(lang, "ja"))


def weekday_names(lang: str) -> list[str]:
    """Short weekday names Monday first."""
    names = locale_of(lang).days["format"]["abbreviated"]
    return [names[i] for i in range(7)]


# ---------------------------------------------------------------------------------------------
# Catalog maintenance (python -m webportal.i18n update|check)


def extract() -> Catalog:
    from babel.messages.extract import extract_from_dir

    catalog = Catalog(project="renraku", charset="utf-8")
    method_map = [("**/templates/**.html", "jinja2.ext:babel_extract"),
                  ("**/templates/**.txt", "jinja2.ext:babel_extract"), ("**.py", "python")]
    options_map = {pattern: {"extensions": "jinja2.ext.i18n"}
                   for pattern in ("**/templates/**.html", "**/templates/**.txt")}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "n_": (1, 2),
                "tr": (2,)}
    for folder in (HERE, *CALL_FLOWS):
        for filename, lineno, message, comments, _context in extract_from_dir(
            str(folder), method_map, options_map, keywords=keywords,
            comment_tags=("TRANSLATORS:",)
        ):
            where = f"{folder.relative_to(HERE.parent)}/{filename}"
            catalog.add(message, None, [(where, lineno)], auto_comments=comments)
    return catalog


def update() -> None:
    template = extract()
    for lang in LANGUAGES:
        fresh = copy.deepcopy(template)  # update() shares Message objects with its template
        path = po_path(lang)
        if path.exists():
            catalog = read_catalog(lang)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=BABEL_LOCALE[lang], project="renraku")
        catalog.update(fresh, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        catalog.fuzzy = False
        catalog.project, catalog.version = "renraku", "0.1"
        if lang == "en":  # msgids are English: the English catalog is the identity
            for message in catalog:
                if message.id and not message.string:
                    message.string = message.id
        with path.open("wb") as fh:
            write_po(fh, catalog, width=0, sort_output=True, include_lineno=False)


def missing(lang: str) -> list[str]:
    out = []
    for message in read_catalog(lang):
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings) or message.fuzzy:
            out.append(message.id if isinstance(message.id, str) else message.id[0])
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["update"]:
        update()
        return 0
    if argv[:1] == ["check"]:
        bad = 0
        for lang in LANGUAGES:
            for msgid in missing(lang):
                print(f"{lang}: {msgid}")
                bad += 1
        return 1 if bad else 0
    print("usage: python -m webportal.i18n update|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
