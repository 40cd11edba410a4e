"""Dates, times and numbers as the phone says them, from Babel's CLDR locale data.

``format_date`` is the written form (「12月4日（金）」, "Friday, December 4", "12月4日 星期五",
"viernes 4 de diciembre"); ``spoken_date`` is what TTS is given, which differs only where
a written form reads badly (Japanese says the weekday in full: 「12月4日 金曜日」).
"""

from __future__ import annotations

from datetime import date, time

from babel.dates import format_date as babel_date
from babel.dates import format_time as babel_time
from babel.numbers import format_decimal

# Babel patterns per language: the month and weekday names come from the locale data.
DATE_PATTERNS = {
    "ja": "M月d日（EEE）",
    "en": "EEEE, MMMM d",
    "zh": "M月d日 EEEE",
    "es": "EEEE d 'de' MMMM",
}
SPOKEN_DATE_PATTERNS = {**DATE_PATTERNS, "ja": "M月d日 EEEE"}
YEAR_PATTERNS = {
    "ja": "y年M月d日（EEE）",
    "en": "EEEE, MMMM d, y",
    "zh": "y年M月d日 EEEE",
    "es": "EEEE d 'de' MMMM 'de' y",
}


def _clean(text: str) -> str:
    # CLDR puts narrow/no-break spaces in times ("10:30\u202fAM"); TTS wants plain ones.
    return text.replace("\u202f", " ").replace("\xa0", " ")


def format_date(day: date, lang: str, with_year: bool = False) -> str:
    """The written date, e.g. 「12月4日（金）」."""
    pattern = (YEAR_PATTERNS if with_year else DATE_PATTERNS)[lang]
    return _clean(babel_date(day, pattern, locale=lang))


def spoken_date(day: date, lang: str, with_year: bool = False) -> str:
    """The date for TTS, e.g. 「12月4日 金曜日」, "Friday, December 4"."""
    if with_year:
        return format_date(day, lang, with_year=True).replace("（", " ").replace("）", "")
    return _clean(babel_date(day, SPOKEN_DATE_PATTERNS[lang], locale=lang))


def spoken_time(at: time, lang: str) -> str:
    """10:30 as people say it: 「10時30分」, "10:30 AM", "上午10点30分", "las 10:30"."""
    if lang == "ja":
        return f"{at.hour}時" + (f"{at.minute}分" if at.minute else "")
    if lang == "zh":
        period = babel_time(at, "a", locale="zh")  # 上午 / 下午 from the locale data
        hour = at.hour % 12 or 12
        return f"{period}{hour}点" + (f"{at.minute}分" if at.minute else "")
    if lang == "es":
        article = "la" if at.hour in (1, 13) else "las"
        return f"{article} {_clean(babel_time(at, 'H:mm', locale='es'))}"
    return _clean(babel_time(at, "short", locale=lang))


def spoken_number(n: int, lang: str) -> str:
    """A count with the locale's grouping (TTS engines read digits in their language)."""
    return format_decimal(n, locale=lang)


def warm_up(languages: tuple[str, ...] = ("ja", "en", "zh", "es")) -> None:
    """Load the CLDR data now (≈0.1 s a language), not inside the first call of the day.

    The call flows format dates on the event loop that every call of the process shares.
    """
    day, at = date(2026, 12, 4), time(10, 30)
    for lang in languages:
        spoken_date(day, lang)
        spoken_time(at, lang)
        format_date(day, lang, with_year=True)
