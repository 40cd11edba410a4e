"""The roll call's pure rules: pre-filled marks, "unexplained", whom a follow-up calls."""

from __future__ import annotations

from datetime import timedelta

from renraku.rules.rollcall import (
    NEXT_GUARDIAN_AFTER,
    Contact,
    class_counts,
    is_unexplained,
    plan_followup,
    suggested_mark,
)


def test_reports_suggest_marks() -> None:
    assert suggested_mark({"absence"}) == "absent"
    assert suggested_mark({"late", "absence"}) == "absent"
    assert suggested_mark({"late"}) == "late"
    assert suggested_mark({"early_leave"}) is None
    assert suggested_mark(()) is None


def test_unexplained_is_an_absent_mark_nobody_explained() -> None:
    assert is_unexplained("absent", (), None)
    assert not is_unexplained("absent", {"absence"}, None)
    assert not is_unexplained("absent", {"late"}, None)  # they said the child comes later
    assert is_unexplained("absent", {"early_leave"}, None)
    assert not is_unexplained("absent", (), "absent")
    assert not is_unexplained("absent", (), "on_way")
    assert is_unexplained("absent", (), "did_not_know")  # the family did not know: still
    assert not is_unexplained("present", (), None)
    assert not is_unexplained(None, (), None)


def test_followup_calls_the_primary_guardian_first_each_number_once() -> None:
    plan = plan_followup([
        Contact(12, 2, "en", "+819000000002", None),
        Contact(11, 1, "zh", "+819000000001", "a@x"),
        Contact(13, 3, "ja", "+819000000001", None),  # shares the primary's number
    ])
    assert plan.language == "zh"
    assert [(c.phone_e164, c.guardian_id, c.delay) for c in plan.calls] == [
        ("+819000000001", 11, timedelta(0)),
        ("+819000000002", 12, NEXT_GUARDIAN_AFTER),
    ]
    assert plan.emails == ()  # a phone exists: no email


def test_followup_without_phones_emails_every_guardian_with_an_address() -> None:
    plan = plan_followup([Contact(2, 2, "ja", None, "b@x"), Contact(1, 1, "es", None, "a@x"),
                          Contact(3, 3, "ja", None, None)])
    assert plan.calls == () and plan.emails == ((1, "a@x"), (2, "b@x"))
    assert plan.language == "es"
    assert plan_followup([Contact(1, 1, "ja", None, None)]) == plan_followup([]).__class__(
        "ja", (), ())


def test_class_counts() -> None:
    counts = class_counts([
        ("absent", frozenset({"absence"}), None),  # reported
        ("late", frozenset({"late"}), None),  # reported, present
        ("absent", frozenset(), None),  # unexplained
        ("absent", frozenset(), "on_way"),  # explained on the call
        ("present", frozenset(), None),
        (None, frozenset(), None),
    ])
    assert (counts.children, counts.reported, counts.unexplained, counts.present,
            counts.unmarked) == (6, 2, 1, 2, 1)
