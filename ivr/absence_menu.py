"""The absence line's menus as a pure state machine: screens, inputs, transitions, effects.

Nothing here plays sound or touches the database. The call flow (``ivr/absence_flow.py``)
plays the prompt for ``menu.screen``, reads keys, feeds them to :func:`step` and carries
out the returned :class:`Effect` (write a report, switch language, say goodbye...).

Keys, the same on every screen where they make sense:

* ``*`` goes back to the main menu from any step of a report (the draft is dropped);
* main menu: 1 new report, 2 hear / cancel / change reports, 0 repeat, 9 language menu;
* confirm: 1 confirm, 2 redo.

The three-failure rule: a timeout or an invalid key re-prompts the same screen; the third
failure in a row on one screen ends the call politely. Any accepted key resets the count.
Two screens move on in silence instead: the menu after a write, whose silence ends the
call, and the symptom question (it is optional), but only when asked a second time. No
question moves on at its first silence, so a key that arrives just after a question timed
out answers that question, never the next one (a late "fever" once confirmed a read-back
unheard).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import time
from enum import StrEnum

from models.enums import ReportKind, ReportReason, Symptom

MAX_FAILURES = 3
BACK = "*"
# Every key interrupts a prompt, so a wrong key is heard as wrong instead of ignored.
ESCAPE_DIGITS = "0123456789*#"
KINDS = (ReportKind.ABSENCE, ReportKind.LATE, ReportKind.EARLY_LEAVE)  # keys 1, 2, 3
REASONS = (  # keys 1..5
    ReportReason.ILLNESS,
    ReportReason.INJURY,
    ReportReason.SUSPENSION,
    ReportReason.BEREAVEMENT,
    ReportReason.OTHER,
)
SYMPTOMS = tuple(Symptom)  # keys 1..5, asked after "illness"; # (or silence twice): not given
SKIP = "#"


class Screen(StrEnum):
    MAIN = "main"
    LANGUAGE = "language"
    CHILD = "child"
    KIND = "kind"
    TIME = "time"  # late arrival / early leave: HHMM on the keypad, # alone to skip
    REASON = "reason"
    SYMPTOM = "symptom"  # after "illness": fever, influenza, COVID-19, gastroenteritis, other
    CONFIRM = "confirm"
    REPORTS = "reports"  # one existing report at a time: cancel / change / next
    CANCEL_CONFIRM = "cancel_confirm"
    AFTER = "after"  # after a write: 1 main menu, 2 end
    END = "end"  # the call is over (goodbye said by the flow)


class Mode(StrEnum):
    NEW = "new"
    CHANGE = "change"


# Inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Press:
    """Keys pressed: one digit on menus; up to four digits (possibly none, '#') for a time."""

    digits: str


@dataclass(frozen=True)
class Timeout:
    pass


@dataclass(frozen=True)
class Invalid:
    """Input the transport could not read (e.g. a stray tone); counts as a failure."""


Input = Press | Timeout | Invalid


def keys_input(keys: str, max_digits: int = 1) -> Input:
    """What a menu's ``Read`` returned (ivr.keypad) → one input. Nothing is a timeout; on a
    menu any one key is pressed as it is; for a time, a lone ``#`` is "no time" and a lone
    ``*`` goes back."""
    if not keys:
        return Timeout()
    if max_digits == 1 or keys == BACK:
        return Press(keys)
    if keys == SKIP:
        return Press("")
    return Press(keys) if keys.isdigit() else Invalid()


# Effects ----------------------------------------------------------------------------------


class Effect(StrEnum):
    NONE = "none"
    INVALID = "invalid"  # say "that key is not valid", then re-prompt
    NO_INPUT = "no_input"  # nothing pressed: re-prompt
    SET_LANGUAGE = "set_language"  # menu.language_index chosen
    LIST_REPORTS = "list_reports"  # say "here are your reports", then the first one
    NO_REPORTS = "no_reports"  # say "no upcoming reports", stay on the main menu
    SUBMIT = "submit"  # write the draft as a new report (or update the same one)
    CHANGE = "change"  # write the draft over existing report ``menu.report``
    CANCEL = "cancel"  # cancel existing report ``menu.report``
    NO_MORE_REPORTS = "no_more_reports"  # end of the list: back to the main menu
    GOODBYE = "goodbye"  # the caller chose to end
    CLASS_CLOSED = "class_closed"  # child ``menu.child``'s class is closed that day
    TOO_MANY_FAILURES = "too_many_failures"  # polite goodbye after three failures


@dataclass(frozen=True)
class Menu:
    """Where the caller is, what they chose so far, and how many times they failed here.

    ``children``, ``languages`` and ``reports`` are the sizes of the lists the flow holds;
    indexes below point into them (0-based; keys are 1-based).
    """

    children: int
    languages: int
    reports: int = 0
    screen: Screen = Screen.MAIN
    failures: int = 0
    mode: Mode = Mode.NEW
    child: int | None = None
    kind: ReportKind | None = None
    at_time: time | None = None
    reason: ReportReason | None = None
    symptom: Symptom | None = None
    report: int | None = None  # the existing report being looked at
    language_index: int | None = None
    closed: frozenset[int] = frozenset()  # children whose class is closed on the report day

    def go(self, screen: Screen, **changes: object) -> Menu:
        return dataclasses.replace(self, screen=screen, failures=0, **changes)  # type: ignore[arg-type]

    def main(self) -> Menu:
        """Back to the main menu, the draft dropped."""
        return self.go(Screen.MAIN, mode=Mode.NEW, child=None, kind=None, at_time=None,
                       reason=None, report=None)

    def with_reports(self, count: int) -> Menu:
        """The flow reloaded the list (after a cancel or change)."""
        report = self.report
        if report is not None and report >= count:
            report = None
        return dataclasses.replace(self, reports=count, report=report)

    def draft_complete(self) -> bool:
        # A change keeps the report's own child and day: only kind and reason are asked.
        target = self.report if self.mode == Mode.CHANGE else self.child
        return target is not None and self.kind is not None and self.reason is not None


def parse_time(digits: str) -> time | None:
    """``1030`` → 10:30, ``930`` → 9:30; anything that is not a clock time → None."""
    if not digits.isdigit() or len(digits) not in (3, 4):
        return None
    hours, minutes = int(digits[:-2]), int(digits[-2:])
    if hours > 23 or minutes > 59:
        return None
    return time(hours, minutes)


def _fail(menu: Menu, effect: Effect) -> tuple[Menu, Effect]:
    failures = menu.failures + 1
    if failures >= MAX_FAILURES:
        return dataclasses.replace(menu, screen=Screen.END, failures=failures), (
            Effect.TOO_MANY_FAILURES
        )
    return dataclasses.replace(menu, failures=failures), effect


def _choice(digits: str, count: int) -> int | None:
    """A 1-based key for a list of ``count`` entries → 0-based index, else None."""
    if len(digits) == 1 and digits.isdigit() and 1 <= int(digits) <= count:
        return int(digits) - 1
    return None


def _closed(menu: Menu, index: int) -> tuple[Menu, Effect]:
    """No report for a child whose class is closed that day: told so, back to the menu."""
    return dataclasses.replace(menu.main(), child=index), Effect.CLASS_CLOSED


def _start_draft(menu: Menu) -> Menu:
    if menu.children == 1:
        return menu.go(Screen.KIND, mode=Mode.NEW, child=0, kind=None, at_time=None,
                       reason=None, report=None)
    return menu.go(Screen.CHILD, mode=Mode.NEW, child=None, kind=None, at_time=None,
                   reason=None, report=None)


def step(menu: Menu, event: Input) -> tuple[Menu, Effect]:
    """One input on the current screen → the next menu and what the flow must do."""
    if menu.screen == Screen.END:
        return menu, Effect.NONE
    if isinstance(event, Timeout):
        if menu.screen == Screen.AFTER:
            return menu.go(Screen.END), Effect.GOODBYE  # done already: silence ends the call
        if menu.screen == Screen.SYMPTOM and menu.failures:
            # Optional, but asked again once first: a key pressed just too late for the
            # first asking then answers this question, not the read-back's confirm
            return menu.go(Screen.CONFIRM, symptom=None), Effect.NONE
        return _fail(menu, Effect.NO_INPUT)
    if isinstance(event, Invalid):
        return _fail(menu, Effect.INVALID)
    digits = event.digits
    handler = _HANDLERS[menu.screen]
    result = handler(menu, digits)
    if result is None:
        return _fail(menu, Effect.INVALID)
    return result


def _main(menu: Menu, d: str) -> tuple[Menu, Effect] | None:
    if d == "1":
        if menu.children == 1 and 0 in menu.closed:
            return _closed(menu, 0)
        return _start_draft(menu), Effect.NONE
    if d == "2":
        if menu.reports == 0:
            return menu.main(), Effect.NO_REPORTS
        return menu.go(Screen.REPORTS, report=0), Effect.LIST_REPORTS
    if d == "0":
        return menu.main(), Effect.NONE
    if d == "9" and menu.languages > 1:
        return menu.go(Screen.LANGUAGE), Effect.NONE
    return None


def _language(menu: Menu, d: str) -> tuple[Menu, Effect] | None:
    if d == BACK:
        return menu.main(), Effect.NONE
    index = _choice(d, menu.languages)
    if index is None:
        return None
    return menu.main().go(Screen.MAIN, language_index=index), Effect.SET_LANGUAGE


def _child(menu: Menu, d: str) -> tuple[Menu, Effect] | None:
    if d == BACK:
        return menu.main(), Effect.NONE
    index = _choice(d, menu.children)
    if index is None:
        return None
    if index in menu.closed:
        return _closed(menu, index)
    return menu.go(Screen.KIND, child=index), Effect.NONE


def _kind(menu: Menu, d: str) -> tuple[Menu, Effect] | None:
    if d == BACK:
        return menu.main(), Effect.NONE
    index = _choice(d, len(KINDS))
    if index is None:
        return None
    kind = KINDS[index]
    if kind == ReportKind.ABSENCE:
        return menu.go(Screen.REASON, kind=kind, at_time=None), Effect.NONE
    return menu.go(Screen.TIME, kind=kind, at_time=None), Effect.NONE


def _time(menu: Menu, d: str) -> tuple[Menu, Effect] | None:
    if d == BACK:
        return menu.main(), Effect.NONE
    if d == "":  # "#" alone: no time given, which is allowed
        return menu.go(Screen.REASON, at_time=None), Effect.NONE
    at = parse_time(d)
    if at is None:
        return None
    return menu.go(Screen.REASON, at_time=at), Effect.NONE


def _reason(menu: Menu, d: str) -> tuple[Menu, Effect] | None:
    if d == BACK:
        return menu.main(), Effect.NONE
    index = _choice(d, len(REASONS))
    if index is None:
        return None
    reason = REASONS[index]
    nxt = Screen.SYMPTOM if reason == ReportReason.ILLNESS else Screen.CONFIRM
    return menu.go(nxt, reason=reason, symptom=None), Effect.NONE


def _symptom(menu: Menu, d: str) -> tuple[Menu, Effect] | None:
    if d == BACK:
        return menu.main(), Effect.NONE
    if d == SKIP:
        return menu.go(Screen.CONFIRM, symptom=None), Effect.NONE
    index = _choice(d, len(SYMPTOMS))
    if index is None:
        return None
    return menu.go(Screen.CONFIRM, symptom=SYMPTOMS[index]), Effect.NONE


def _confirm(menu: Menu, d: str) -> tuple[Menu, Effect] | None:
    if d == BACK:
        return menu.main(), Effect.NONE
    if d == "1":
        if not menu.draft_complete():  # cannot happen through step(); guards misuse
            return None
        effect = Effect.CHANGE if menu.mode == Mode.CHANGE else Effect.SUBMIT
        return menu.go(Screen.AFTER), effect
    if d == "2":  # redo: choose again from the first question of this draft
        if menu.mode == Mode.CHANGE or menu.children == 1:
            return menu.go(Screen.KIND, kind=None, at_time=None, reason=None), Effect.NONE
        return _start_draft(menu), Effect.NONE
    return None


def _reports(menu: Menu, d: str) -> tuple[Menu, Effect] | None:
    if d == BACK:
        return menu.main(), Effect.NONE
    if d == "1":
        return menu.go(Screen.CANCEL_CONFIRM), Effect.NONE
    if d == "2":
        # Change keeps the child and the day; kind, time and reason are asked again.
        return menu.go(Screen.KIND, mode=Mode.CHANGE, kind=None, at_time=None,
                       reason=None), Effect.NONE
    if d == "3":
        nxt = (menu.report or 0) + 1
        if nxt >= menu.reports:
            return menu.main(), Effect.NO_MORE_REPORTS
        return menu.go(Screen.REPORTS, report=nxt), Effect.NONE
    return None


def _cancel_confirm(menu: Menu, d: str) -> tuple[Menu, Effect] | None:
    if d == "1":
        return menu.go(Screen.AFTER), Effect.CANCEL
    if d in ("2", BACK):
        return menu.go(Screen.REPORTS), Effect.NONE
    return None


def _after(menu: Menu, d: str) -> tuple[Menu, Effect] | None:
    if d == "1":
        return menu.main(), Effect.NONE
    if d == "2":
        return menu.go(Screen.END), Effect.GOODBYE
    return None


_HANDLERS = {
    Screen.MAIN: _main,
    Screen.LANGUAGE: _language,
    Screen.CHILD: _child,
    Screen.KIND: _kind,
    Screen.TIME: _time,
    Screen.REASON: _reason,
    Screen.SYMPTOM: _symptom,
    Screen.CONFIRM: _confirm,
    Screen.REPORTS: _reports,
    Screen.CANCEL_CONFIRM: _cancel_confirm,
    Screen.AFTER: _after,
}
