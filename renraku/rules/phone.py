"""Phone numbers: E.164 normalisation and the mobile/landline distinction (Japan by default)."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

# What Asterisk and carriers put in caller ID when the caller withheld the number.
WITHHELD = frozenset({"", "anonymous", "unknown", "private", "restricted", "unavailable"})
MOBILE_PREFIXES_JP = ("070", "080", "090")


class InvalidPhoneNumber(ValueError):
    pass


@dataclass(frozen=True)
class PhoneNumber:
    e164: str
    kind: str  # mobile, landline, other (models.enums.PhoneKind values)

    @property
    def national(self) -> str:
        parsed = phonenumbers.parse(self.e164)
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def is_withheld(raw: str | None) -> bool:
    return (raw or "").strip().lower() in WITHHELD


def presentation_restricted(callingpres: str | None) -> bool:
    """Asterisk's numeric caller presentation (AGI's ``agi_callingpres``) says "withheld":
    the 0x60 bits are 0x20 (restricted); 0x00 allowed, 0x40 unavailable."""
    try:
        return int(callingpres or "0") & 0x60 == 0x20
    except ValueError:
        return False


def shown_caller(raw: str) -> str:
    """A caller ID as it may be stored and shown: printable characters only, at most 40.

    A carrier or a SIP scanner may send anything: NUL bytes (which PostgreSQL refuses),
    newlines (which forge log lines), hundreds of characters.
    """
    return "".join(ch for ch in raw if ch.isprintable())[:40]


def normalise(raw: str, region: str = "JP") -> PhoneNumber:
    """Parse what a person typed or a carrier sent into E.164 plus its kind.

    Accepts national (090-1234-5678), international (+81 90 1234 5678) and carrier
    forms (819012345678, 0081…). Raises InvalidPhoneNumber for anything else.
    """
    text = (raw or "").strip()
    if is_withheld(text):
        raise InvalidPhoneNumber("withheld")
    if len(text) > 40 or not text.isprintable():
        raise InvalidPhoneNumber("not a phone number")
    digits = "".join(ch for ch in text if ch.isdigit() or ch == "+")
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif region == "JP" and digits.startswith("81") and len(digits) in (11, 12):
        # Carriers often send the country code without "+"
        digits = "+" + digits
    try:
        parsed = phonenumbers.parse(digits, region)
    except NumberParseException as exc:
        raise InvalidPhoneNumber(str(exc)) from exc
    # is_valid_number is number_type != UNKNOWN, each matching the number against every
    # type's pattern: one pass, not two (it runs on every call to the absence line)
    ntype = phonenumbers.number_type(parsed)
    if ntype == PhoneNumberType.UNKNOWN:
        raise InvalidPhoneNumber(f"not a valid number: {raw!r}")
    if ntype in (PhoneNumberType.MOBILE, PhoneNumberType.PAGER):
        kind = "mobile"
    elif ntype in (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        kind = "landline"
    else:
        kind = "other"
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return PhoneNumber(e164, kind)


def try_normalise(raw: str | None, region: str = "JP") -> PhoneNumber | None:
    try:
        return normalise(raw or "", region)
    except InvalidPhoneNumber:
        return None


def may_self_register(number: PhoneNumber) -> bool:
    """Only Japanese mobiles (070/080/090) can receive the SMS code that self-registration needs.

    Landlines and IP phones (050) are registered by a teacher instead.
    """
    if number.e164.startswith("+81"):
        return ("0" + number.e164[3:]).startswith(MOBILE_PREFIXES_JP)
    return number.kind == "mobile"
