"""Checking a family's proxy registration request (the public form), field by field.

Pure: the web form hands in what was typed and the classes it offered; the answer is the
cleaned request or, per field, why not (a code the page turns into a message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from renraku.rules.phone import try_normalise

MAX_NAME = 100
MAX_NOTE = 1000
RELATIONS = ("mother", "father", "grandmother", "grandfather", "other")
LANGUAGES = ("ja", "en", "zh", "es")
EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
# Markup has no place in a name or a note: say so rather than store it escaped.
MARKUP_RE = re.compile(r"[<>]")
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class CleanRequest:
    class_id: int
    child_name: str
    guardian_name: str
    relation: str
    phone_e164: str
    phone_kind: str
    email: str | None
    language: str
    note: str


def _text(raw: str, limit: int, required: bool) -> tuple[str, str]:
    value = " ".join(raw.split()) if limit <= MAX_NAME else raw.strip()
    if not value:
        return "", "required" if required else ""
    if len(value) > limit:
        return value, "too_long"
    if MARKUP_RE.search(value):
        return value, "markup"
    if CONTROL_RE.search(value):  # pasted from elsewhere; PostgreSQL refuses NUL outright
        return value, "control"
    return value, ""


def check_request(form: dict[str, str], class_ids: set[int],
                  region: str = "JP") -> tuple[CleanRequest | None, dict[str, str]]:
    """The cleaned request, or the errors by field name (the form's names)."""
    errors: dict[str, str] = {}
    child_name, errors["child_name"] = _text(form.get("child_name", ""), MAX_NAME, True)
    guardian_name, errors["guardian_name"] = _text(form.get("guardian_name", ""), MAX_NAME,
                                                   True)
    note, errors["note"] = _text(form.get("note", ""), MAX_NOTE, False)
    raw_class = form.get("class_id", "").strip()
    class_id = int(raw_class) if raw_class.isdigit() else 0
    if class_id not in class_ids:
        errors["class_id"] = "required"
    relation = form.get("relation", "")
    if relation not in RELATIONS:
        errors["relation"] = "required"
    language = form.get("language", "")
    if language not in LANGUAGES:
        errors["language"] = "required"
    raw_phone = form.get("phone", "").strip()
    number = try_normalise(raw_phone, region) if len(raw_phone) <= 30 else None
    if not raw_phone:
        errors["phone"] = "required"
    elif number is None:
        errors["phone"] = "invalid"
    email = form.get("email", "").strip().lower()
    if email and (len(email) > 254 or not EMAIL_RE.match(email)):
        errors["email"] = "invalid"
    errors = {k: v for k, v in errors.items() if v}
    if errors or number is None:
        return None, errors
    return CleanRequest(class_id, child_name, guardian_name, relation, number.e164,
                        number.kind, email or None, language, note), {}
