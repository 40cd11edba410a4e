"""The absence line call (FastAGI ``/absence`` and the classic script ``agi_scripts/absence.py``).

One flow, two transports: anything with the async channel methods used here (``answer``,
``stream_file``, ``wait_for_digit``, ``get_variable``, ``set_variable``, ``hangup``) can
run it, and raises its hang-up exception when the caller is gone.

The menus themselves are the pure state machine in :mod:`ivr.absence_menu`; this module
only plays prompts, reads keys and talks to the database through the services. The only
writes are: a confirmed report, change or cancellation (each one transaction), the
caller's language choice, and the call log row at the end. Hanging up at any other point
leaves nothing behind.

The day a report is for is fixed when the call starts (by each child's school cutoff,
timezone and calendar): the caller hears that day and exactly that day is recorded, even
when confirming takes the call past the cutoff.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ivr import absence_menu as m
from models import AbsenceReport, CallLog, Guardian, Guardianship, School
from models.db import transaction
from models.enums import Channel, ReportKind, ReportReason, ReportStatus
from renraku.app import App, open_app
from renraku.rules.phone import is_withheld, try_normalise
from renraku.services import absences
from renraku.services.guardians import children_of, guardians_by_phone
from renraku.services.schools import report_day_for, school_now
from renraku.settings import LANGUAGES, Settings, load_settings

log = logging.getLogger(__name__)

FLOW = "absence"
DIGIT_TIMEOUT_MS = 5000  # silence after a menu before it counts as "no input"
INTERDIGIT_TIMEOUT_MS = 3000  # between the digits of a time
HOOK_TIMEOUT_S = 20.0


class CallChannel(Protocol):
    """What a transport offers (FastAGI connection, or pyst2 behind an adapter)."""

    async def answer(self) -> Any: ...
    async def get_variable(self, name: str) -> str | None: ...
    async def set_variable(self, name: str, value: str) -> Any: ...
    async def stream_file(self, name: str, escape_digits: str = "") -> str: ...
    async def wait_for_digit(self, timeout_ms: int) -> str: ...
    async def hangup(self) -> Any: ...


class Voice(Protocol):
    """Prompt keys and dynamic text → playable sound names (for ``STREAM FILE``).

    ``phrase`` without fields is the recorded/pre-rendered catalog prompt; with fields
    (``name=``, ``digit=``, ``date=``...) it is the catalog text filled in and spoken by TTS.
    """

    async def phrase(self, key: str, lang: str, **fmt: Any) -> str: ...
    async def text(self, lang: str, text: str) -> str: ...


# Called after a report is confirmed and committed (new or changed), with its id. The
# confirmation email is one of them; hooks never break or delay the call itself.
ReportHook = Callable[[App, int], Awaitable[None]]
on_report_confirmed: list[ReportHook] = []


def _phrases() -> Any:
    try:
        return importlib.import_module("prompts.phrases")
    except ImportError:  # pragma: no cover - the prompts package is part of the project
        return None


def spoken_date(day: date, lang: str) -> str:
    """The date as the caller hears it (the prompts package's phrasing)."""
    phrases = _phrases()
    if phrases is not None:
        return str(phrases.spoken_date(day, lang))
    from babel.dates import format_date

    return format_date(day, "full", locale=lang)


def spoken_time(at: time, lang: str) -> str:
    phrases = _phrases()
    if phrases is not None:
        return str(phrases.spoken_time(at, lang))
    from babel.dates import format_time

    return format_time(at, "short", locale=lang)


@dataclass(frozen=True)
class Kid:
    id: int
    name: str  # spoken name (reading)
    school_id: int
    day: date  # the day a new report made in this call is for
    guardian_id: int  # which of the caller's guardians reports for this child


@dataclass
class Caller:
    raw: str
    e164: str
    guardian_ids: list[int]
    language: str
    languages: list[str]  # offered on the language menu, in menu order
    kids: list[Kid]
    today: date  # earliest "today" among the children's schools: start of "upcoming"


@dataclass
class CallResult:
    outcome: str
    actions: list[str] = field(default_factory=list)


def _outcome(actions: list[str], fallback: str) -> str:
    if not actions:
        return fallback
    return ",".join(sorted(set(actions)))[:32]


async def load_caller(app: App, raw: str, e164: str) -> Caller | None:
    """Guardians of this number (a shared landline unites their children) or None."""
    async with app.sessions() as s:
        guardians = await guardians_by_phone(s, e164)
        if not guardians:
            return None
        ids = [g.id for g in guardians]
        children = await children_of(s, ids)
        if not children:
            return None
        links = await s.execute(
            select(Guardianship.child_id, Guardianship.guardian_id)
            .where(Guardianship.guardian_id.in_(ids))
            .order_by(Guardianship.position)
        )
        reporter: dict[int, int] = {}
        for child_id, guardian_id in links:
            reporter.setdefault(child_id, guardian_id)
        schools: dict[int, School] = {}
        kids = []
        for child in children:
            school = schools.get(child.school_id) or await s.get(School, child.school_id)
            assert school is not None
            schools[school.id] = school
            day = await report_day_for(s, app.clock, school)
            kids.append(Kid(child.id, child.spoken_name, school.id, day, reporter[child.id]))
        languages: list[str] = []
        for school in schools.values():
            languages += [lang for lang in school.languages if lang not in languages]
        language = guardians[0].language if guardians[0].language in LANGUAGES else "ja"
        if language not in languages:
            languages.append(language)
        today = min(school_now(app.clock, school).date() for school in schools.values())
        return Caller(raw, e164, ids, language, languages, kids, today)


async def upcoming_reports(app: App, caller: Caller) -> list[AbsenceReport]:
    async with app.sessions() as s:
        return await absences.active_reports(s, [k.id for k in caller.kids], caller.today)


class AbsenceCall:
    def __init__(
        self,
        agi: Any,
        app: App,
        voice: Voice,
        hangup_exc: type[BaseException] | tuple[type[BaseException], ...],
    ) -> None:
        self.agi = agi
        self.app = app
        self.voice = voice
        self.Hangup = hangup_exc
        self.lang = "ja"
        self.channel_lang = ""
        self.caller: Caller | None = None
        self.reports: list[AbsenceReport] = []
        self.actions: list[str] = []
        self.outcome = "hung_up"
        self.gave_up = False
        self.pending: list[tuple[str, str]] = []
        self._hooks: list[asyncio.Task[None]] = []

    # -- sound helpers ---------------------------------------------------------------------

    async def set_language(self, lang: str) -> None:
        """Asterisk picks ``sounds/<lang>/renraku/<key>`` by the channel's language."""
        if lang != self.channel_lang:
            await self.agi.set_variable("CHANNEL(language)", lang)
            self.channel_lang = lang

    async def say(self, key: str, lang: str | None = None, **fmt: Any) -> None:
        lang = lang or self.lang
        await self.set_language(lang)
        await self.agi.stream_file(await self.voice.phrase(key, lang, **fmt))

    async def tell(self, key: str, **fmt: Any) -> None:
        """A message heard before the next menu, and interruptible by its keys.

        "Recorded", "not a valid key"... are queued rather than played at once, so a
        caller who knows the menu can press the next key without waiting for them.
        """
        self.pending.append(await self.p(key, **fmt))

    async def ask(self, sounds: list[tuple[str, str]], max_digits: int = 1) -> m.Input:
        """Play (lang, sound) pairs, any key interrupting; then wait; → one menu input."""
        pressed = ""
        sounds, self.pending = [*self.pending, *sounds], []
        for lang, sound in sounds:
            await self.set_language(lang)
            pressed = await self.agi.stream_file(sound, m.ESCAPE_DIGITS)
            if pressed:
                break
        await self.set_language(self.lang)
        if not pressed:
            pressed = await self.agi.wait_for_digit(DIGIT_TIMEOUT_MS)
            if not pressed:
                return m.Timeout()
        if max_digits == 1 or pressed == m.BACK:
            return m.Press(pressed)
        digits = ""
        while True:  # a time: digits until "#", four digits, or a pause
            if pressed == "#":
                return m.Press(digits)
            if not pressed.isdigit():
                return m.Invalid()
            digits += pressed
            if len(digits) >= max_digits:
                return m.Press(digits)
            pressed = await self.agi.wait_for_digit(INTERDIGIT_TIMEOUT_MS)
            if not pressed:
                return m.Press(digits)

    async def _flush(self) -> None:
        for lang, sound in self.pending:
            await self.set_language(lang)
            await self.agi.stream_file(sound)
        self.pending = []

    async def p(self, key: str, **fmt: Any) -> tuple[str, str]:
        return self.lang, await self.voice.phrase(key, self.lang, **fmt)

    # -- the call --------------------------------------------------------------------------

    async def run(self) -> CallResult:
        started = self.app.clock.now()
        raw = ""
        e164: str | None = None
        uniqueid = ""
        self.outcome = "hung_up"
        try:
            await self.agi.answer()
            raw = (await self.agi.get_variable("CALLERID(num)") or "").strip()
            pres = (await self.agi.get_variable("CALLERID(num-pres)") or "").lower()
            uniqueid = await self.agi.get_variable("UNIQUEID") or ""
            if is_withheld(raw) or pres.startswith("prohib"):
                self.outcome = "withheld"
                for lang in LANGUAGES:  # nobody to look up: say it in every language
                    await self.say("absence.withheld", lang)
                await self._hangup()
                return CallResult(self.outcome)
            number = try_normalise(raw, self.app.settings.default_region)
            e164 = number.e164 if number else None
            caller = await load_caller(self.app, raw, e164) if e164 else None
            if caller is None:
                self.outcome = "unregistered"
                for lang in LANGUAGES:  # the caller's language is unknown: say it in all
                    await self.say("absence.unregistered", lang)
                await self._hangup()
                return CallResult(self.outcome)
            self.caller = caller
            self.lang = caller.language
            self.outcome = await self._menus(caller)
        except self.Hangup:
            if self.caller is not None:
                self.outcome = _outcome(self.actions, "hung_up")
        except Exception:
            # A bug or a database outage: tell the caller to contact the school directly
            # rather than leave them in silence. Confirmed writes stay; nothing is half done.
            log.exception("absence call failed")
            self.outcome = _outcome(self.actions, "error")
            try:
                await self.say("absence.error")
                await self._hangup()
            except Exception:
                pass
        finally:
            await self._log_call(raw, e164, self.outcome, uniqueid, started)
            if self._hooks:
                await asyncio.wait(self._hooks, timeout=HOOK_TIMEOUT_S)
        return CallResult(self.outcome, list(self.actions))

    async def _hangup(self) -> None:
        try:
            await self.agi.hangup()
        except self.Hangup:
            pass

    async def _log_call(
        self, raw: str, e164: str | None, outcome: str, uniqueid: str, started: datetime
    ) -> None:
        try:
            async with transaction(self.app.sessions) as s:
                s.add(CallLog(flow=FLOW, caller=raw[:40], caller_e164=e164, outcome=outcome,
                              uniqueid=uniqueid[:64], started_at=started,
                              ended_at=self.app.clock.now()))
        except Exception:  # the log must never turn a finished call into an error
            log.exception("could not write the call log")

    async def _menus(self, caller: Caller) -> str:
        self.reports = await upcoming_reports(self.app, caller)
        menu = m.Menu(children=len(caller.kids), languages=len(caller.languages),
                      reports=len(self.reports))
        await self.tell("absence.welcome")
        while menu.screen != m.Screen.END:
            event = await self.ask(*await self._prompt(caller, menu))
            menu, effect = m.step(menu, event)
            menu = await self._effect(caller, menu, effect)
        return _outcome(self.actions, "too_many_failures" if self.gave_up else "no_action")

    async def _prompt(self, caller: Caller, menu: m.Menu) -> tuple[list[tuple[str, str]], int]:
        s = m.Screen
        if menu.screen == s.MAIN:
            sounds = [await self.p("absence.main_menu")]
            if len(caller.languages) > 1:
                sounds.append(await self.p("absence.language_key"))
            return sounds, 1
        if menu.screen == s.LANGUAGE:
            return [
                (lang, await self.voice.phrase("absence.language_option", lang, digit=i + 1))
                for i, lang in enumerate(caller.languages)
            ], 1
        if menu.screen == s.CHILD:
            return [await self.p("absence.choose_child"), *[
                await self.p("absence.child_option", name=kid.name, digit=i + 1)
                for i, kid in enumerate(caller.kids)
            ]], 1
        if menu.screen == s.KIND:
            sounds = [await self.p("absence.kind_menu")]
            if menu.mode == m.Mode.NEW:
                # The day is said before anything is chosen (and again in the read-back),
                # so a caller after the cutoff knows at once the report is for tomorrow.
                _, day = self._target(caller, menu)
                sounds.insert(0, await self.p("absence.report_for_date",
                                              date=spoken_date(day, self.lang)))
            return sounds, 1
        if menu.screen == s.TIME:
            key = "absence.time_late" if menu.kind == ReportKind.LATE else "absence.time_early"
            return [await self.p(key)], 4
        if menu.screen == s.REASON:
            return [await self.p("absence.reason_menu")], 1
        if menu.screen == s.SYMPTOM:
            return [await self.p("absence.symptom_menu")], 1
        if menu.screen == s.CONFIRM:
            kid, day = self._target(caller, menu)
            assert menu.kind is not None and menu.reason is not None
            return [
                *await self._describe(kid, day, menu.kind, menu.reason, menu.at_time,
                                      menu.symptom),
                await self.p("absence.confirm_keys"),
            ], 1
        if menu.screen == s.REPORTS:
            report = self.reports[menu.report or 0]
            kid = self._kid(caller, report.child_id)
            return [
                *await self._describe(kid, report.day, ReportKind(report.kind),
                                      ReportReason(report.reason), report.at_time,
                                      report.symptom),
                await self.p("absence.report_keys"),
            ], 1
        if menu.screen == s.CANCEL_CONFIRM:
            return [await self.p("absence.cancel_confirm")], 1
        if menu.screen == s.AFTER:
            return [await self.p("absence.after_menu")], 1
        raise AssertionError(menu.screen)

    def _kid(self, caller: Caller, child_id: int) -> Kid:
        return next(k for k in caller.kids if k.id == child_id)

    def _target(self, caller: Caller, menu: m.Menu) -> tuple[Kid, date]:
        if menu.mode == m.Mode.CHANGE:
            report = self.reports[menu.report or 0]
            return self._kid(caller, report.child_id), report.day
        kid = caller.kids[menu.child or 0]
        return kid, kid.day

    async def _describe(
        self, kid: Kid, day: date, kind: ReportKind, reason: ReportReason, at: time | None,
        symptom: str | None = None,
    ) -> list[tuple[str, str]]:
        """Child, day, kind (with time), reason (and symptom): the read-back of a draft or
        a report."""
        sounds = [
            await self.p("absence.about_child", name=kid.name),
            await self.p("absence.on_date", date=spoken_date(day, self.lang)),
            await self.p(f"absence.kind.{kind}"),
        ]
        if at is not None:
            sounds.append(await self.p("absence.at_time", time=spoken_time(at, self.lang)))
        sounds.append(await self.p(f"absence.reason.{reason}"))
        if symptom:
            sounds.append(await self.p(f"absence.symptom.{symptom}"))
        return sounds

    async def _effect(self, caller: Caller, menu: m.Menu, effect: m.Effect) -> m.Menu:
        e = m.Effect
        if effect == e.INVALID:
            await self.tell("absence.invalid")
        elif effect == e.NO_INPUT:
            await self.tell("absence.no_input")
        elif effect == e.LIST_REPORTS:
            await self.tell("absence.reports_intro")
        elif effect == e.TOO_MANY_FAILURES:
            self.gave_up = True
            await self._flush()
            await self.say("absence.too_many_failures")
            await self._hangup()
        elif effect == e.GOODBYE:
            await self._flush()
            await self.say("absence.goodbye")
            await self._hangup()
        elif effect == e.NO_REPORTS:
            await self.tell("absence.no_reports")
        elif effect == e.NO_MORE_REPORTS:
            await self.tell("absence.no_more_reports")
        elif effect == e.SET_LANGUAGE:
            assert menu.language_index is not None
            self.lang = caller.languages[menu.language_index]
            await self._remember_language(caller, self.lang)
        elif effect in (e.SUBMIT, e.CHANGE, e.CANCEL):
            menu = await self._write(caller, menu, effect)
        return menu

    async def _remember_language(self, caller: Caller, lang: str) -> None:
        caller.language = lang
        async with transaction(self.app.sessions) as s:
            await s.execute(
                update(Guardian).where(Guardian.id.in_(caller.guardian_ids)).values(language=lang)
            )

    async def _write(self, caller: Caller, menu: m.Menu, effect: m.Effect) -> m.Menu:
        """The one place a report is written: one transaction, after the caller pressed 1."""
        now = self.app.clock.now()
        try:
            async with transaction(self.app.sessions) as s:
                if effect == m.Effect.SUBMIT:
                    kid, day = self._target(caller, menu)
                    assert menu.kind is not None and menu.reason is not None
                    draft = absences.ReportDraft(kid.id, day, menu.kind, menu.reason,
                                                 menu.at_time, symptom=menu.symptom)
                    report = await absences.submit(s, draft, channel=Channel.PHONE,
                                                   guardian_id=kid.guardian_id, now=now)
                    action, said = "reported", "absence.recorded"
                else:
                    report = await self._own_report(s, caller, menu)
                    if report is None:
                        raise LookupError("report gone")
                    kid = self._kid(caller, report.child_id)
                    if effect == m.Effect.CANCEL:
                        await absences.cancel(s, report, channel=Channel.PHONE,
                                              guardian_id=kid.guardian_id, now=now)
                        action, said = "cancelled", "absence.cancelled"
                    else:
                        assert menu.kind is not None and menu.reason is not None
                        draft = absences.ReportDraft(report.child_id, report.day, menu.kind,
                                                     menu.reason, menu.at_time, report.memo,
                                                     menu.symptom)
                        await absences.change(s, report, draft, channel=Channel.PHONE,
                                              guardian_id=kid.guardian_id, now=now)
                        action, said = "changed", "absence.changed"
                report_id = report.id
        except (IntegrityError, LookupError):
            # E.g. changed into a kind that already has a report that day, or a report
            # cancelled on the web meanwhile: nothing written, the caller is told.
            log.info("absence line: %s not saved", effect, exc_info=True)
            await self.tell("absence.not_saved")
            self.reports = await upcoming_reports(self.app, caller)
            return menu.main().with_reports(len(self.reports))
        self.actions.append(action)
        if action != "cancelled":
            self._run_hooks(report_id)
        await self.tell(said)
        self.reports = await upcoming_reports(self.app, caller)
        return menu.with_reports(len(self.reports))

    async def _own_report(self, s: Any, caller: Caller, menu: m.Menu) -> AbsenceReport | None:
        """The report on screen, re-read inside the write and still the caller's and active."""
        listed = self.reports[menu.report or 0]
        report = await s.get(AbsenceReport, listed.id, with_for_update=True)
        if (report is None or report.status != ReportStatus.ACTIVE
                or report.child_id not in {k.id for k in caller.kids}):
            return None
        return report

    def _run_hooks(self, report_id: int) -> None:
        hooks = [*on_report_confirmed, _confirmation_email]
        for hook in hooks:
            self._hooks.append(asyncio.create_task(_guarded(hook, self.app, report_id)))


async def _guarded(hook: ReportHook, app: App, report_id: int) -> None:
    try:
        await hook(app, report_id)
    except Exception:
        log.exception("on_report_confirmed hook %r failed", hook)


def confirmation_email_enabled(app: App) -> bool:
    value = getattr(app.settings, "absence_confirmation_email", None)
    if value is None:
        value = app.settings.extra.get("absence_confirmation_email", False)
    return bool(value)


# The confirmation email, in the guardian's language. Short on purpose: the guardian
# portal shows the full report; this only says "we have it" with the day and kind.
EMAIL_TEXT = {
    "ja": ("【欠席連絡】受け付けました", "{name}さんの{date}の{kind}のご連絡を受け付けました。"),
    "en": ("Report received", "We have received your report for {name}: {kind} on {date}."),
    "zh": ("已收到报告", "已收到{name}在{date}的{kind}报告。"),
    "es": ("Aviso recibido", "Hemos recibido su aviso para {name}: {kind}, el {date}."),
}
EMAIL_KINDS = {
    "ja": {"absence": "欠席", "late": "遅刻", "early_leave": "早退"},
    "en": {"absence": "absence", "late": "late arrival", "early_leave": "early leave"},
    "zh": {"absence": "缺席", "late": "迟到", "early_leave": "早退"},
    "es": {"absence": "ausencia", "late": "retraso", "early_leave": "salida anticipada"},
}


async def _confirmation_email(app: App, report_id: int) -> None:
    """Email the reporting guardian (verified address only) when enabled in the settings."""
    if not confirmation_email_enabled(app):
        return
    from models import Child
    from renraku.services import mail

    async with app.sessions() as s:
        report = await s.get(AbsenceReport, report_id)
        if report is None or report.guardian_id is None:
            return
        guardian = await s.get(Guardian, report.guardian_id)
        child = await s.get(Child, report.child_id)
    if guardian is None or child is None or not guardian.email or not guardian.email_verified:
        return
    lang = guardian.language if guardian.language in EMAIL_TEXT else "ja"
    subject, body = EMAIL_TEXT[lang]
    from prompts.phrases import format_date

    text = body.format(name=child.shown_name, date=format_date(report.day, lang),
                       kind=EMAIL_KINDS[lang].get(report.kind, report.kind))
    await mail.send_mail(app.settings, guardian.email, subject, text + "\n")


def make_voice(settings: Settings) -> Voice:
    """The prompts package's voice: catalog prompts by key, TTS for names and dates.

    With testing on, ``[extra] test_voice = "module:Class"`` swaps in a test voice (built
    with the settings): the classic script is a separate process, so the real-call tests
    cannot hand it a voice object the way they hand one to the in-process FastAGI flow.
    """
    hook = settings.extra.get("test_voice") if settings.testing else None
    if hook:
        module, _, name = str(hook).partition(":")
        return getattr(importlib.import_module(module), name)(settings)  # type: ignore[no-any-return]
    from prompts.voice import PromptVoice

    return PromptVoice(settings)


async def handle(agi: Any, app: App, voice: Voice | None = None) -> CallResult:
    """One absence call on any transport whose hang-up exception is ``agi.Hangup``."""
    hangup_exc = getattr(agi, "Hangup", None) or _fastagi_hangup()
    return await AbsenceCall(agi, app, voice or make_voice(app.settings), hangup_exc).run()


def _fastagi_hangup() -> type[BaseException]:
    from ivr.fastagi import Hangup

    return Hangup


async def run_classic(channel: Any, argv: list[str]) -> None:
    """The classic AGI script's body: its own App (settings, clock, DB) for this one call."""
    settings = load_settings(argv[0] if argv else None)
    app = open_app(settings)
    try:
        await handle(channel, app)
    finally:
        await app.close()
