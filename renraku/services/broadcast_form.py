"""The broadcast console's compose form → a validated campaign request (pure, no web types).

Field names (the template ``staff/broadcast_new.html`` uses the same):
``title``; ``message_ja`` / ``message_en`` / ``message_zh`` / ``message_es``;
``recorded_prompt_key``; ``channel`` = voice | email | both;
``target`` = school | grades | classes | children with ``grades`` / ``classes`` /
``children`` (repeated); ``q{n}_text`` (n 1–5) with ``q{n}_opt{d}`` (d 1–9) for a survey;
``send`` = now | later with ``scheduled_at`` (``YYYY-MM-DDTHH:MM``, school time);
``window_start`` / ``window_end`` (``HH:MM``); ``closes_at`` (``YYYY-MM-DDTHH:MM``, school
time, optional): the survey's deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from renraku.i18n import N_
from renraku.rules import campaign as rules
from renraku.settings import LANGUAGES

Getter = Callable[[str], str]
GetAll = Callable[[str], list[str]]


@dataclass
class CampaignRequest:
    title: str = ""
    message: dict[str, str] = field(default_factory=dict)
    recorded_prompt_key: str | None = None
    voice: bool = True
    email: bool = False
    target: dict = field(default_factory=dict)
    questions: list[dict] = field(default_factory=list)
    scheduled_at: datetime | None = None
    closes_at: datetime | None = None
    window_start: str = "08:00"
    window_end: str = "20:00"
    errors: list[str] = field(default_factory=list)


def _ints(values: list[str]) -> list[int]:
    out = []
    for v in values:
        v = v.strip()
        if v.isdigit():
            out.append(int(v))
    return out


def _hhmm(value: str, default: str) -> str | None:
    value = (value or default).strip()
    try:
        rules.parse_hhmm(value)
    except ValueError:
        return None
    return value


def _local(raw: str, tz: str) -> datetime | None:
    """``YYYY-MM-DDTHH:MM`` in school time (a browser's datetime-local), aware."""
    try:
        local = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    return local if local.tzinfo is not None else local.replace(tzinfo=ZoneInfo(tz))


def parse_questions(get: Getter) -> list[dict]:
    """The survey part of the form (``q{n}_text``, ``q{n}_opt{d}``), unchecked."""
    questions = []
    for n in range(1, rules.MAX_QUESTIONS + 1):
        text = get(f"q{n}_text").strip()
        options = [
            {"digit": d, "label": {"ja": get(f"q{n}_opt{d}").strip()}}
            for d in range(1, 10)
            if get(f"q{n}_opt{d}").strip()
        ]
        if text or options:
            questions.append({"text": {"ja": text}, "options": options})
    return questions


def question_fields(questions: list) -> dict[str, str]:
    """Stored questions (models.SurveyQuestion) as the form's fields, to edit them."""
    fields = {}
    for q in questions:
        fields[f"q{q.position}_text"] = q.text.get("ja", "")
        for o in q.options:
            fields[f"q{q.position}_opt{o.digit}"] = o.label.get("ja", "")
    return fields


def parse_compose(
    get: Getter, get_all: GetAll, tz: str, defaults: tuple[str, str],
    now: datetime | None = None,
) -> CampaignRequest:
    """Read and check the form. ``errors`` holds msgids (marked N_), translated when shown.

    ``now`` (when given) refuses a survey deadline that has already passed.
    """
    req = CampaignRequest()
    req.title = get("title").strip()[:200]
    if not req.title:
        req.errors.append(N_("Please give the message a title."))
    req.message = {
        lang: text for lang in LANGUAGES if (text := get(f"message_{lang}").strip())
    }
    req.recorded_prompt_key = get("recorded_prompt_key").strip() or None
    channel = get("channel") or "voice"
    req.voice = channel in ("voice", "both")
    req.email = channel in ("email", "both")
    if not req.message.get("ja") and not req.recorded_prompt_key:
        req.errors.append(N_("Write the message in Japanese or choose a recording."))
    if req.email and not req.message.get("ja"):
        req.errors.append(N_("An email needs the message written in Japanese."))
    kind = get("target") or "school"
    if kind == "school":
        req.target = {"school": True}
    elif kind in ("grades", "classes", "children"):
        ids = _ints(get_all(kind))
        if not ids:
            req.errors.append(N_("Choose who receives the message."))
        req.target = {kind: ids}
    else:
        req.errors.append(N_("Choose who receives the message."))
    req.questions = parse_questions(get)
    if req.questions:
        for problem in rules.validate_survey(req.questions):
            req.errors.append("Survey: " + problem)
    start = _hhmm(get("window_start"), defaults[0])
    end = _hhmm(get("window_end"), defaults[1])
    if start is None or end is None or rules.parse_hhmm(start) >= rules.parse_hhmm(end):
        req.errors.append(N_("The calling window must start before it ends."))
    else:
        req.window_start, req.window_end = start, end
    if get("send") == "later":
        req.scheduled_at = _local(get("scheduled_at"), tz)
        if req.scheduled_at is None:
            req.errors.append(N_("Give the date and time to send."))
    if req.questions and get("closes_at").strip():
        req.closes_at = _local(get("closes_at"), tz)
        if req.closes_at is None:
            req.errors.append(N_("Give the survey deadline as a date and time."))
        elif now is not None and req.closes_at <= max(now, req.scheduled_at or now):
            req.errors.append(N_("The survey deadline must be after the message is sent."))
    return req
