"""The absence line's menu state machine, without sound or database."""

from __future__ import annotations

from datetime import time

import pytest

from ivr.absence_menu import (
    MAX_FAILURES,
    Effect,
    Invalid,
    Menu,
    Mode,
    Press,
    Screen,
    Timeout,
    keys_input,
    parse_time,
    step,
)
from models.enums import ReportKind, ReportReason, Symptom


def run(menu: Menu, *keys: str) -> tuple[Menu, list[Effect]]:
    effects = []
    for key in keys:
        menu, effect = step(menu, Timeout() if key == "T" else Press(key))
        effects.append(effect)
    return menu, effects


def test_one_child_absence_straight_through() -> None:
    menu, effects = run(Menu(children=1, languages=4), "1", "1", "1", "2", "1")
    assert effects == [Effect.NONE, Effect.NONE, Effect.NONE, Effect.NONE, Effect.SUBMIT]
    assert menu.screen == Screen.AFTER
    assert (menu.child, menu.kind, menu.reason, menu.symptom, menu.at_time) == (
        0, ReportKind.ABSENCE, ReportReason.ILLNESS, Symptom.INFLUENZA, None)


def test_symptom_only_after_illness_and_optional() -> None:
    at_symptom, _ = run(Menu(children=1, languages=1), "1", "1", "1")
    assert at_symptom.screen == Screen.SYMPTOM
    for skip in ("#",), ("T", "T"), ("0", "T"):  # the hash key, or silence when asked again
        menu, effects = run(at_symptom, *skip)
        assert (menu.screen, menu.symptom, effects[-1]) == (Screen.CONFIRM, None, Effect.NONE)
    # The first silence asks again: a key just too late answers this question, not the next
    menu, effects = run(at_symptom, "T")
    assert (menu.screen, effects) == (Screen.SYMPTOM, [Effect.NO_INPUT])
    menu, _ = run(menu, "1")
    assert (menu.screen, menu.symptom) == (Screen.CONFIRM, Symptom.FEVER)
    assert run(at_symptom, "6")[1] == [Effect.INVALID]
    assert run(at_symptom, "*")[0].screen == Screen.MAIN
    menu, _ = run(Menu(children=1, languages=1), "1", "1", "2")  # injury: no symptom asked
    assert menu.screen == Screen.CONFIRM and menu.symptom is None


def test_siblings_pick_a_child_first() -> None:
    menu, _ = run(Menu(children=2, languages=4), "1")
    assert menu.screen == Screen.CHILD
    menu, effects = run(menu, "3")  # only two children
    assert effects == [Effect.INVALID] and menu.screen == Screen.CHILD
    menu, _ = run(menu, "2")
    assert menu.child == 1 and menu.screen == Screen.KIND and menu.failures == 0


def test_late_with_time_and_early_leave_without() -> None:
    menu, _ = run(Menu(children=1, languages=1), "1", "2", "1030", "5")
    assert menu.screen == Screen.CONFIRM
    assert (menu.kind, menu.at_time, menu.reason) == (ReportKind.LATE, time(10, 30),
                                                      ReportReason.OTHER)
    menu, _ = run(Menu(children=1, languages=1), "1", "3", "", "3")
    assert (menu.kind, menu.at_time, menu.reason) == (ReportKind.EARLY_LEAVE, None,
                                                      ReportReason.SUSPENSION)


@pytest.mark.parametrize(("digits", "expected"), [
    ("1030", time(10, 30)), ("930", time(9, 30)), ("0905", time(9, 5)), ("2359", time(23, 59)),
    ("2400", None), ("1060", None), ("12", None), ("12345", None), ("", None), ("1*30", None),
])
def test_parse_time(digits: str, expected: time | None) -> None:
    assert parse_time(digits) == expected


def test_bad_time_reprompts_then_counts_as_failure() -> None:
    menu, effects = run(Menu(children=1, languages=1), "1", "2", "2561")
    assert menu.screen == Screen.TIME and effects[-1] == Effect.INVALID and menu.failures == 1


def test_three_failures_end_politely_and_a_good_key_resets() -> None:
    menu, effects = run(Menu(children=1, languages=4), "T", "7")
    assert effects == [Effect.NO_INPUT, Effect.INVALID] and menu.failures == 2
    menu, _ = run(menu, "1")  # accepted: the count starts again on the next screen
    assert menu.screen == Screen.KIND and menu.failures == 0
    menu, effects = run(menu, "T", "T", "T")
    assert effects[-1] == Effect.TOO_MANY_FAILURES and menu.screen == Screen.END
    assert step(menu, Press("1")) == (menu, Effect.NONE)  # nothing after the end
    assert MAX_FAILURES == 3


def test_invalid_input_counts() -> None:
    menu = Menu(children=1, languages=1)
    for _ in range(MAX_FAILURES - 1):
        menu, effect = step(menu, Invalid())
        assert effect == Effect.INVALID
    assert step(menu, Invalid())[1] == Effect.TOO_MANY_FAILURES


def test_redo_from_confirm() -> None:
    menu, effects = run(Menu(children=2, languages=1), "1", "2", "1", "1", "#", "2")
    assert menu.screen == Screen.CHILD and menu.kind is None and effects[-1] == Effect.NONE
    menu, _ = run(Menu(children=1, languages=1), "1", "1", "1", "1", "2")
    assert menu.screen == Screen.KIND and menu.child == 0 and menu.reason is None


def test_star_goes_back_to_main_and_drops_the_draft() -> None:
    menu, _ = run(Menu(children=2, languages=1), "1", "1", "1", "*")
    assert menu.screen == Screen.MAIN and menu.child is None and menu.kind is None


def test_language_menu() -> None:
    menu, effects = run(Menu(children=1, languages=4), "9", "3")
    assert effects == [Effect.NONE, Effect.SET_LANGUAGE]
    assert menu.screen == Screen.MAIN and menu.language_index == 2
    menu, effects = run(Menu(children=1, languages=1), "9")  # one language: no menu
    assert effects == [Effect.INVALID]


def test_repeat_main_menu() -> None:
    menu, effects = run(Menu(children=1, languages=1), "0")
    assert menu.screen == Screen.MAIN and effects == [Effect.NONE] and menu.failures == 0


def test_existing_reports_cancel_and_change() -> None:
    menu, effects = run(Menu(children=1, languages=1, reports=0), "2")
    assert effects == [Effect.NO_REPORTS] and menu.screen == Screen.MAIN
    menu, effects = run(Menu(children=1, languages=1, reports=2), "2")
    assert menu.screen == Screen.REPORTS and menu.report == 0
    assert effects == [Effect.LIST_REPORTS]
    menu, effects = run(menu, "1", "2")  # cancel? no, keep it
    assert menu.screen == Screen.REPORTS and effects == [Effect.NONE, Effect.NONE]
    menu, effects = run(menu, "1", "1")
    assert effects[-1] == Effect.CANCEL and menu.report == 0 and menu.screen == Screen.AFTER
    menu = menu.with_reports(1)
    menu, _ = run(menu, "1", "2")
    assert menu.screen == Screen.REPORTS and menu.report == 0
    menu, effects = run(menu, "2", "2", "845", "2", "1")
    assert effects[-1] == Effect.CHANGE and menu.mode == Mode.CHANGE and menu.report == 0
    assert (menu.kind, menu.at_time, menu.reason) == (ReportKind.LATE, time(8, 45),
                                                      ReportReason.INJURY)


def test_next_report_then_end_of_list() -> None:
    menu, effects = run(Menu(children=1, languages=1, reports=2), "2", "3", "3")
    assert effects == [Effect.LIST_REPORTS, Effect.NONE, Effect.NO_MORE_REPORTS]
    assert menu.screen == Screen.MAIN and menu.report is None


def test_after_a_report_silence_or_2_ends_1_goes_on() -> None:
    done, _ = run(Menu(children=1, languages=1), "1", "1", "1", "#", "1")
    assert run(done, "T")[0].screen == Screen.END
    assert run(done, "T")[1] == [Effect.GOODBYE]
    assert run(done, "2")[1] == [Effect.GOODBYE]
    assert run(done, "1")[0].screen == Screen.MAIN


def test_a_closed_class_is_told_not_asked() -> None:
    """学級閉鎖 on the report day: no report screens for that child; a sibling goes on."""
    menu, effects = run(Menu(children=1, languages=1, closed=frozenset({0})), "1")
    assert effects == [Effect.CLASS_CLOSED] and menu.screen == Screen.MAIN and menu.child == 0
    menu, effects = run(Menu(children=2, languages=1, closed=frozenset({1})), "1", "2")
    assert effects[-1] == Effect.CLASS_CLOSED and menu.screen == Screen.MAIN
    menu, effects = run(menu, "1", "1", "1", "1", "#", "1")  # # skips the symptom
    assert effects[-1] == Effect.SUBMIT and menu.child == 0


@pytest.mark.parametrize(("keys", "max_digits", "expected"), [
    ("", 1, Timeout()),
    ("", 4, Timeout()),
    ("1", 1, Press("1")),
    ("#", 1, Press("#")),  # on a menu # is a key like the others (the symptom menu's skip)
    ("*", 1, Press("*")),
    ("930", 4, Press("930")),
    ("#", 4, Press("")),  # a lone # is "no time"
    ("*", 4, Press("*")),  # a lone * goes back
    ("9A", 4, Invalid()),
])
def test_what_read_returned_is_one_input(keys: str, max_digits: int, expected: object) -> None:
    assert keys_input(keys, max_digits) == expected
