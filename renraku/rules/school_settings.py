"""A school's settings as an admin types them (CLI or settings page) → checked values.

Pure: every problem is collected, keyed by field, so a form shows them all at once and
the CLI prints the first. The web translates by field (``FIELDS``); the English texts
here are the CLI's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from renraku.rules.phone import InvalidPhoneNumber, normalise
from renraku.settings import LANGUAGES

DEFAULT_CUTOFF = time(20, 0)
DEFAULT_WEEKDAYS = (1, 2, 3, 4, 5)
MAX_NAME = 200
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")

# field → what is wrong, for the CLI (the settings page has translated texts per field)
FIELDS = {
    "name": "the school's name is required (at most 200 characters)",
    "reading": "the reading is at most 200 characters",
    "timezone": "unknown timezone (use an IANA name such as Asia/Tokyo)",
    "cutoff": "the phone cutoff must be a time HH:MM, e.g. 20:00",
    "languages": "offer at least one of the languages ja, en, zh, es",
    "absence_line": "the absence line's number is not a valid phone number",
    "call_window": "the calling window needs two times HH:MM, the start before the end",
    "weekdays": "choose at least one school day of the week (1 = Monday … 7 = Sunday)",
}


class InvalidSchoolSettings(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors  # field → English text (FIELDS)


@dataclass(frozen=True)
class SchoolSettings:
    name: str
    reading: str = ""
    timezone: str = "Asia/Tokyo"
    phone_cutoff: time = DEFAULT_CUTOFF
    languages: tuple[str, ...] = LANGUAGES
    absence_line_e164: str | None = None
    call_window: tuple[str, str] | None = None  # None: the installation's default window
    school_weekdays: tuple[int, ...] = DEFAULT_WEEKDAYS


def parse_hhmm(value: str) -> time | None:
    found = _HHMM.match(value.strip())
    return time(int(found.group(1)), int(found.group(2))) if found else None


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return bool(name)


def parse_school_settings(
    *,
    name: str,
    reading: str = "",
    timezone: str = "Asia/Tokyo",
    cutoff: str = "20:00",
    languages: Iterable[str] = LANGUAGES,
    absence_line: str = "",
    window_start: str = "",
    window_end: str = "",
    weekdays: Iterable[str | int] = DEFAULT_WEEKDAYS,
    region: str = "JP",
) -> SchoolSettings:
    """Checked settings, or InvalidSchoolSettings naming every bad field.

    An empty absence line number means "not set"; an empty calling window (both ends)
    means the installation's default window.
    """
    bad: list[str] = []
    name, reading, timezone = name.strip(), reading.strip(), timezone.strip()
    if not name or len(name) > MAX_NAME:
        bad.append("name")
    if len(reading) > MAX_NAME:
        bad.append("reading")
    if not valid_timezone(timezone):
        bad.append("timezone")
    at = parse_hhmm(cutoff)
    if at is None:
        bad.append("cutoff")
    chosen = [lang for lang in LANGUAGES if lang in set(languages)]  # menu order
    if not chosen or set(languages) - set(LANGUAGES):
        bad.append("languages")
    line = None
    if absence_line.strip():
        try:
            line = normalise(absence_line, region).e164
        except InvalidPhoneNumber:
            bad.append("absence_line")
    window = None
    if window_start.strip() or window_end.strip():
        start, end = parse_hhmm(window_start), parse_hhmm(window_end)
        if start is None or end is None or start >= end:
            bad.append("call_window")
        else:
            window = (start.strftime("%H:%M"), end.strftime("%H:%M"))
    days = sorted({int(d) for d in weekdays if str(d).strip().isdigit() and 1 <= int(d) <= 7})
    if not days or len(days) != len({str(d).strip() for d in weekdays}):
        bad.append("weekdays")
    if bad:
        raise InvalidSchoolSettings({f: FIELDS[f] for f in bad})
    assert at is not None
    return SchoolSettings(name, reading, timezone, at, tuple(chosen), line, window, tuple(days))
