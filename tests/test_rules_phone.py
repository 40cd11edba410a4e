"""E.164 normalisation of Japanese numbers as guardians type them and carriers send them."""

from __future__ import annotations

import pytest

from renraku.rules.phone import (
    InvalidPhoneNumber,
    is_withheld,
    may_self_register,
    normalise,
    presentation_restricted,
    try_normalise,
)


@pytest.mark.parametrize(
    ("raw", "e164", "kind"),
    [
        ("09012345678", "+819012345678", "mobile"),
        ("090-1234-5678", "+819012345678", "mobile"),
        ("+81 90 1234 5678", "+819012345678", "mobile"),
        ("+819012345678", "+819012345678", "mobile"),
        ("819012345678", "+819012345678", "mobile"),  # carrier form without "+"
        ("00819012345678", "+819012345678", "mobile"),
        ("080-9876-5432", "+818098765432", "mobile"),
        ("070-1111-2222", "+817011112222", "mobile"),
        ("03-1234-5678", "+81312345678", "landline"),
        ("+81 3 1234 5678", "+81312345678", "landline"),
        ("0312345678", "+81312345678", "landline"),
        ("06-6123-4567", "+81661234567", "landline"),
        ("050-1234-5678", "+815012345678", "other"),  # IP phone
    ],
)
def test_normalise(raw: str, e164: str, kind: str) -> None:
    number = normalise(raw)
    assert (number.e164, number.kind) == (e164, kind)


@pytest.mark.parametrize("raw", ["", "anonymous", "Anonymous", "unknown", "private"])
def test_withheld_numbers_are_recognised_and_refused(raw: str) -> None:
    assert is_withheld(raw)
    with pytest.raises(InvalidPhoneNumber):
        normalise(raw)


@pytest.mark.parametrize("raw", ["12345", "090-1234", "abc", "+81 0000 0000"])
def test_invalid_numbers(raw: str) -> None:
    assert try_normalise(raw) is None


@pytest.mark.parametrize(
    ("raw", "allowed"),
    [("090-1234-5678", True), ("080-1234-5678", True), ("070-1234-5678", True),
     ("03-1234-5678", False), ("050-1234-5678", False), ("0120-123-456", False)],
)
def test_only_mobiles_self_register(raw: str, allowed: bool) -> None:
    assert may_self_register(normalise(raw)) is allowed


def test_national_format_for_display() -> None:
    assert normalise("+819012345678").national == "090-1234-5678"


@pytest.mark.parametrize(("callingpres", "withheld"), [
    ("0", False), ("1", False), ("3", False),  # allowed (screening variants)
    ("32", True), ("35", True),  # restricted
    ("67", False),  # unavailable: no number to show, but not withheld by the caller
    ("", False), (None, False), ("x", False),
])
def test_presentation_restricted(callingpres: str | None, withheld: bool) -> None:
    assert presentation_restricted(callingpres) is withheld


@pytest.mark.parametrize("raw", [
    "090-1234-5678", "03-1234-5678", "0120-123-456", "0570-000-000", "050-1234-5678",
    "090-1234-567", "0990-123-456", "+1 212 555 0123", "+1 800 555 0199", "+1 555 555 5555",
    "+44 20 7946 0958", "+7 495 123 45 67", "+86 138 0013 8000", "+34 612 345 678",
    "+39 06 1234 5678", "+882 1234 5678", "+800 1234 5678",
])
def test_a_number_is_valid_exactly_when_the_library_says_so(raw: str) -> None:
    """normalise asks phonenumbers for the number's type once and takes UNKNOWN as invalid,
    which is how the library's is_valid_number decides (one pattern pass, not two)."""
    import phonenumbers

    assert (try_normalise(raw) is not None) == phonenumbers.is_valid_number(
        phonenumbers.parse(raw, "JP"))
