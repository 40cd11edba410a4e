"""The absence line call (FastAGI ``/absence`` and the classic script ``agi_scripts/absence.py``).

One flow, two transports: anything with the async channel methods used here
(``stream_file``, ``read_keys``, ``get_variable``, ``set_variable``, ``hangup``) can run
it, and raises its hang-up exception when the caller is gone. The dialplan answers the
call and starts the channel in the caller's kept language (dialplans/inbound.conf), so a
call from a known caller costs no command before its first menu.

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
import contextlib
import gc
import importlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from ivr import absence_menu as m
from models import AbsenceReport, Guardian
from models.enums import Channel, ReportKind, ReportReason, ReportStatus
from renraku.app import App, open_app
from renraku.rules.jp_holidays import japan_holidays
from renraku.rules.phone import is_withheld, shown_caller, try_normalise
from renraku.rules.schoolday import report_day
from renraku.services import absences
from renraku.services.call_log import call_log_writer
from renraku.services.guardians import Household, household_by_phone
from renraku.services.schools import class_on, school_calendar, school_now
from renraku.settings import LANGUAGES, Settings, load_settings

log = logging.getLogger(__name__)

FLOW = "absence"
DIGIT_TIMEOUT_MS = 5000  # silence after a menu (or between a time's digits): "no input"
HOOK_TIMEOUT_S = 20.0
# The dialplan's voicemail fallback speaks this channel variable's language, else the one
# kept in AstDB under LANGUAGE_DB/<caller digits> (so it knows the caller's language even
# when no app answers), else all four. See dialplans/inbound.conf.
FALLBACK_LANGUAGE = "RENRAKU_LANG"
LANGUAGE_DB = "renraku_lang"
CALLER_KEY_CHARS = frozenset("0123456789+")
CALLER_KEY_MAX = 32  # the dialplan's ${VM_CALLER:0:32}


class CallChannel(Protocol):
    """What a transport offers (FastAGI connection, or pyst2 behind an adapter): the caller
    ID, its presentation and the channel's unique id from the AGI environment, and commands."""

    @property
    def caller(self) -> str: ...
    @property
    def uniqueid(self) -> str: ...
    @property
    def withheld(self) -> bool: ...
    @property
    def language(self) -> str: ...
    @property
    def kept_language(self) -> str: ...

    async def get_variable(self, name: str) -> str | None: ...
    async def set_variable(self, name: str, value: str) -> Any: ...
    async def stream_file(self, name: str, escape_digits: str = "") -> str: ...
    async def read_keys(self, sounds: Sequence[tuple[str, str]], channel_lang: str,
                        max_digits: int, timeout_ms: int) -> str: ...
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
    closed: bool = False  # the child's class or grade is closed on ``day`` (学級閉鎖)


@dataclass
class Caller:
    raw: str
    e164: str
    guardian_ids: list[int]
    language: str
    languages: list[str]  # offered on the language menu, in menu order
    kids: list[Kid]
    today: date  # earliest "today" among the children's schools: start of "upcoming"
    reports: list[AbsenceReport] = field(default_factory=list)  # upcoming, when called
    school: str = ""  # the school's spoken name when all the children are at one school


@dataclass
class CallResult:
    outcome: str
    actions: list[str] = field(default_factory=list)


def caller_key(raw: str) -> str:
    """The caller ID as the dialplan files it: digits and "+" only, at most 32 of them."""
    return "".join(c for c in raw if c in CALLER_KEY_CHARS)[:CALLER_KEY_MAX]


def _outcome(actions: list[str], fallback: str) -> str:
    if not actions:
        return fallback
    return ",".join(sorted(set(actions)))[:32]


async def load_caller(app: App, raw: str, e164: str) -> Caller | None:
    """Guardians of this number (a shared landline unites their children), with their
    upcoming reports, or None. Two statements once the school calendars are cached."""

    async def read(s: Any) -> tuple[Household, list[Kid], date, list[AbsenceReport]] | None:
        home = await household_by_phone(s, e164)
        if not home.guardians or not home.children:
            return None
        kids = []
        for child in home.children:
            school = home.schools[child.school_id]
            calendar = await school_calendar(s, school)  # cached
            day = report_day(school_now(app.clock, school), school.phone_cutoff, calendar)
            # One more statement per child only while a class or grade closure exists.
            closed = calendar.closes_classes and calendar.class_closure(
                day, await class_on(s, child.id, day)) is not None
            kids.append(Kid(child.id, child.spoken_name, school.id, day, home.reporter[child.id],
                            closed=closed))
        today = min(school_now(app.clock, school).date() for school in home.schools.values())
        return home, kids, today, await absences.active_reports(s, [k.id for k in kids], today)

    found = await app.read(read)
    if found is None:
        return None
    home, kids, today, reports = found
    languages: list[str] = []
    for school in home.schools.values():
        languages += [lang for lang in school.languages if lang not in languages]
    first = home.guardians[0]
    language = first.language if first.language in LANGUAGES else "ja"
    if language not in languages:
        languages.append(language)
    [only, *others] = home.schools.values()
    return Caller(raw, e164, [g.id for g in home.guardians], language, languages, kids, today,
                  reports=reports, school="" if others else only.spoken_name)


async def warm_up(app: App) -> None:
    """Pay at start what the first callers of a morning would pay at once: babel's locale
    data for spoken dates and times (~0.4 s on first use), Japan's holidays and the caller
    statements' compilation (measured: the first call took 0.8 s, the next ones 75 ms)."""
    for lang in LANGUAGES:
        spoken_date(app.clock.now().date(), lang)
        spoken_time(time(8, 30), lang)
    # The holidays package imports the modules of every country it knows (about 250) on
    # first use: 0.4-0.5 s of CPU the first caller's calendar paid (issue #17, tenth round)
    _ = app.clock.now().date() in japan_holidays()
    await load_caller(app, "", "+0")  # nobody has this number
    # What is loaded now lives as long as the process: out of the cyclic collector's sight,
    # so its full passes walk the calls' objects only. Measured: a full pass over the
    # ~139,000 objects of a started server takes 28-49 ms of CPU, during which no call moves.
    gc.freeze()


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
        # Known from the AGI environment: no command to set what is already so
        self.channel_lang = agi.language
        self.kept_lang = agi.kept_language  # the caller's language in AstDB
        self.caller: Caller | None = None
        self.reports: list[AbsenceReport] = []
        self.actions: list[str] = []
        self.outcome = "hung_up"
        self.gave_up = False
        self.pending: list[tuple[str, str]] = []
        self._hooks: list[asyncio.Task[None]] = []
        self._emails: list[int] = []  # confirmed report ids, emailed when the call ends

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
        """Play (lang, sound) pairs, any key interrupting, and wait: one menu input.

        One AGI command (ivr.keypad): a key pressed between two sounds reaches the flow.
        """
        sounds, self.pending = [*self.pending, *sounds], []
        await self.set_language(self.lang)
        keys = await self.agi.read_keys(sounds, self.lang, max_digits, DIGIT_TIMEOUT_MS)
        return m.keys_input(keys, max_digits)

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
            # The dialplan answered. From the AGI environment: no round trips.
            raw, uniqueid = self.agi.caller.strip(), self.agi.uniqueid
            if is_withheld(raw) or self.agi.withheld:
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
            await self._remember_on_asterisk(raw)
            self.outcome = await self._menus(caller)
        except self.Hangup:
            if self.caller is not None:
                self.outcome = _outcome(self.actions, "hung_up")
        except Exception:
            # A database outage or a bug: the call goes back to the dialplan, which records
            # a voicemail (renraku-voicemail) in the caller's language. Writes committed
            # before stay (their "recorded" is still said); the failed one left nothing.
            log.exception("absence call failed: falling back to voicemail")
            self.outcome = _outcome(self.actions, "voicemail")
            with contextlib.suppress(Exception):
                if self.caller is not None:
                    await self.agi.set_variable(FALLBACK_LANGUAGE, self.lang)
                await self._flush()
        finally:
            await self._log_call(raw, e164, self.outcome, uniqueid, started)
            # The email reads three rows and talks SMTP: after the call, not between the
            # keys of this caller and of the others on the same event loop.
            self._hooks += [asyncio.create_task(_guarded(_confirmation_email, self.app, rid))
                            for rid in self._emails]
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
        try:  # grouped with other calls' rows, out of the way of the reports' writes
            await call_log_writer(self.app).write(
                flow=FLOW, caller=shown_caller(raw), caller_e164=e164, outcome=outcome,
                uniqueid=uniqueid[:64], started_at=started, ended_at=self.app.clock.now())
        except Exception:  # the log must never turn a finished call into an error
            log.exception("could not write the call log")

    async def _menus(self, caller: Caller) -> str:
        self.reports = caller.reports
        menu = m.Menu(children=len(caller.kids), languages=len(caller.languages),
                      reports=len(self.reports),
                      closed=frozenset(i for i, kid in enumerate(caller.kids) if kid.closed))
        if caller.school:  # the school's reading: TTS would guess a kanji name's sound
            await self.tell("absence.welcome_school", school=caller.school)
        else:
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
        elif effect == e.CLASS_CLOSED:
            kid = caller.kids[menu.child or 0]
            await self.tell("absence.class_closed", name=kid.name,
                            date=spoken_date(kid.day, self.lang))
        elif effect == e.NO_MORE_REPORTS:
            await self.tell("absence.no_more_reports")
        elif effect == e.SET_LANGUAGE:
            assert menu.language_index is not None
            self.lang = caller.languages[menu.language_index]
            await self._remember_language(caller, self.lang)
        elif effect in (e.SUBMIT, e.CHANGE, e.CANCEL):
            menu = await self._write(caller, menu, effect)
        return menu

    async def _remember_on_asterisk(self, raw: str) -> None:
        """Keep the caller's language in Asterisk's own database for the voicemail fallback."""
        key = caller_key(raw)
        if key and self.lang != self.kept_lang:
            await self.agi.set_variable(f"DB({LANGUAGE_DB}/{key})", self.lang)
            self.kept_lang = self.lang

    async def _remember_language(self, caller: Caller, lang: str) -> None:
        caller.language = lang
        await self._remember_on_asterisk(caller.raw)

        async def store(s: Any) -> None:
            await s.execute(
                update(Guardian).where(Guardian.id.in_(caller.guardian_ids)).values(language=lang)
            )

        await self.app.write(store)

    async def _write(self, caller: Caller, menu: m.Menu, effect: m.Effect) -> m.Menu:
        """The one place a report is written: one transaction, after the caller pressed 1
        (at once, when the server runs the calls' database: see models.call_db)."""
        now = self.app.clock.now()
        try:
            report, action, said = await self._stored(caller, menu, effect, now)
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
        self._keep(caller, report)
        return menu.with_reports(len(self.reports))

    async def _stored(
        self, caller: Caller, menu: m.Menu, effect: m.Effect, now: datetime
    ) -> tuple[AbsenceReport, str, str]:
        """The write itself: (report, action, prompt to say). A new report is a write of
        its own (one statement on PostgreSQL, see absences.create); a report there already,
        a change or a cancellation is a transaction."""
        if effect != m.Effect.SUBMIT:
            return await self.app.write(lambda s: self._store(s, caller, menu, effect, now))
        kid, day = self._target(caller, menu)
        assert menu.kind is not None and menu.reason is not None
        draft = absences.ReportDraft(kid.id, day, menu.kind, menu.reason, menu.at_time,
                                     symptom=menu.symptom)
        by: dict[str, Any] = {"channel": Channel.PHONE, "guardian_id": kid.guardian_id,
                              "now": now}
        report = (await self.app.write_one(lambda s: absences.create(s, draft, **by))
                  or await self.app.write(lambda s: absences.reconfirm(s, draft, **by)))
        return report, "reported", "absence.recorded"

    async def _store(
        self, s: Any, caller: Caller, menu: m.Menu, effect: m.Effect, now: datetime
    ) -> tuple[AbsenceReport, str, str]:
        """A change or a cancellation of the report on screen: (report, action, prompt)."""
        report = await self._own_report(s, caller, menu)
        if report is None:
            raise LookupError("report gone")
        kid = self._kid(caller, report.child_id)
        if effect == m.Effect.CANCEL:
            await absences.cancel(s, report, channel=Channel.PHONE,
                                  guardian_id=kid.guardian_id, now=now)
            return report, "cancelled", "absence.cancelled"
        assert menu.kind is not None and menu.reason is not None
        draft = absences.ReportDraft(report.child_id, report.day, menu.kind, menu.reason,
                                     menu.at_time, report.memo, menu.symptom)
        await absences.change(s, report, draft, channel=Channel.PHONE,
                              guardian_id=kid.guardian_id, now=now)
        return report, "changed", "absence.changed"

    def _keep(self, caller: Caller, report: AbsenceReport) -> None:
        """The upcoming reports after this call's own write, without reading them again
        (a statement less on the confirm key)."""
        kept = [r for r in self.reports if r.id != report.id]
        if report.status == ReportStatus.ACTIVE and report.day >= caller.today:
            kept.append(report)
        self.reports = sorted(kept, key=lambda r: (r.day, r.child_id, r.id))

    async def _own_report(self, s: Any, caller: Caller, menu: m.Menu) -> AbsenceReport | None:
        """The report on screen, re-read inside the write and still the caller's and active."""
        listed = self.reports[menu.report or 0]
        report = await s.get(AbsenceReport, listed.id, with_for_update=True)
        if (report is None or report.status != ReportStatus.ACTIVE
                or report.child_id not in {k.id for k in caller.kids}):
            return None
        return report

    def _run_hooks(self, report_id: int) -> None:
        for hook in on_report_confirmed:
            self._hooks.append(asyncio.create_task(_guarded(hook, self.app, report_id)))
        self._emails.append(report_id)


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


def N_(message: str) -> str:
    """Marks a msgid for the catalogs (webportal.i18n extracts ivr/ too); tr() translates."""
    return message


# The confirmation email, in the guardian's language. Short on purpose: the guardian
# portal shows the full report; this only says "we have it" with the day and kind.
EMAIL_SUBJECT = N_("Report received")
EMAIL_BODY = {
    "absence": N_("We have received your report for %(name)s: absence on %(date)s."),
    "late": N_("We have received your report for %(name)s: late arrival on %(date)s."),
    "early_leave": N_("We have received your report for %(name)s: early leave on %(date)s."),
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
    from prompts.phrases import format_date
    from webportal.i18n import tr

    lang = guardian.language
    text = tr(lang, EMAIL_BODY[report.kind], name=child.shown_name,
              date=format_date(report.day, lang))
    await mail.send_mail(app.settings, guardian.email, tr(lang, EMAIL_SUBJECT), text + "\n",
                         now=app.clock.now())


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
