"""The absence line through real Asterisk: calls in from the carrier simulator over SIP,
keys as RFC 4733 DTMF, the flow on this process's FastAGI server (and once through the
classic AGI script), rows checked in the database.

Prompts are short tones written only under ``sounds/<lang>/renraku/``, so a prompt that
plays at all proves Asterisk picked the file of the channel's language (a missing file
fails STREAM FILE, which the flow sees as a hang-up). Keys are pressed as soon as the
prompt they answer starts: escape digits interrupt playback, which keeps each call short.
"""

from __future__ import annotations

import asyncio
import time as clock
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ivr import absence_flow
from ivr.fastagi import AGIChannel, played_names
from models import AbsenceReport, AbsenceReportChange, CallLog, Guardian
from models.db import create_engine, session_factory, transaction
from models.migrate import upgrade
from renraku.app import App
from renraku.clock import FakeClock
from renraku.services import absences, school_calendar
from renraku.settings import LANGUAGES
from tests.absence_fakes import ToneVoice
from tests.asterisk_harness import PhoneLines, VirtualPhone
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school

pytestmark = pytest.mark.asterisk

TOKYO = ZoneInfo("Asia/Tokyo")
THU, FRI, MON = date(2026, 12, 3), date(2026, 12, 4), date(2026, 12, 7)


def jst(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=TOKYO)


@dataclass
class Line:
    lines: PhoneLines
    app: App
    clock: FakeClock

    def phone(self, number: str, dialled: str = "0120000000") -> VirtualPhone:
        return self.lines.phone(number, dialled)


@pytest.fixture
async def line(lines: PhoneLines, sqlite_db: Database) -> AsyncIterator[Line]:
    fake = FakeClock(jst(THU, 10, 0))
    app = App(lines.settings, fake, sqlite_db.engine, sqlite_db.sessions)
    voice = ToneVoice(lines.settings)

    async def handler(agi: AGIChannel) -> None:
        await absence_flow.handle(agi, app, voice)

    lines.route("absence", handler)
    yield Line(lines, app, fake)


async def follow(phone: VirtualPhone, steps: list[tuple[str, str]], after: int = 0) -> int:
    """For each (prompt fragment, keys): wait for that prompt, then press the keys."""
    for fragment, keys in steps:
        after = await phone.wait_prompt(fragment, after=after)
        if keys:
            await phone.press(keys, gap=0.25)
    return after


# Every prompt heard in full before its key (the language test wants all of them)...
NEW_ABSENCE = [("absence.main_menu", "1"), ("absence.kind_menu", "1"),
               ("absence.reason_menu", "1"), ("absence.symptom_menu", "1"),
               ("absence.confirm_keys", "1"),
               ("absence.after_menu", "2"), ("absence.goodbye", "")]
# ...or each key pressed at the first sound of its screen, as a caller in a hurry does.
QUICK_ABSENCE = [("absence.welcome", "1"), ("absence.report_for_date", "1"),
                 ("absence.reason_menu", "1"), ("absence.symptom_menu", "1"),
                 ("absence.about_child", "1"),
                 ("absence.recorded", "2"), ("absence.goodbye", "")]


async def family(app: App, number: str, lang: str = "ja", cutoffs: tuple[time, ...] = (
        time(20, 0),)) -> tuple[list[int], int]:
    async with transaction(app.sessions) as s:
        kids = []
        for i, cutoff in enumerate(cutoffs):
            school = await make_school(s, f"学校{i}", cutoff=cutoff)
            kids.append(await make_child(s, school, f"山田{i}郎", f"やまだ{i}ろう"))
        guardian = await make_guardian(s, "山田花子", number, lang, tuple(kids))
        return [k.id for k in kids], guardian.id


async def reports(app: App) -> list[AbsenceReport]:
    async with app.sessions() as s:
        return list(await s.scalars(select(AbsenceReport).order_by(AbsenceReport.id)))


async def call_log(app: App) -> list[tuple[str, str | None]]:
    async with app.sessions() as s:
        return [(c.outcome, c.caller_e164) for c in await s.scalars(
            select(CallLog).order_by(CallLog.id))]


async def until(predicate: Any, within: float = 10.0) -> Any:
    deadline = clock.monotonic() + within
    while clock.monotonic() < deadline:
        if result := await predicate():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def heard(agi: AGIChannel) -> list[tuple[str, str]]:
    """(language, sound) for every STREAM FILE that played and every sound of a menu's
    Read, from the call's AGI command log (a Read names another language's sound by its
    folder: ``en/renraku/…``)."""
    lang, out = agi.language, []
    for _t, cmd, reply in agi.log:
        parts = cmd.split('"')
        if cmd.startswith('SET VARIABLE "CHANNEL(language)"'):
            lang = parts[3]
        elif cmd.startswith("STREAM FILE") and "endpos=" in reply:
            out.append((lang, parts[1]))
        elif cmd.startswith("EXEC Read"):
            for name in played_names(cmd):
                folder, _, rest = name.partition("/")
                out.append((folder, rest) if folder in LANGUAGES else (lang, name))
    return out


async def test_registered_guardian_reports_an_absence(line: Line) -> None:
    (kid,), guardian = await family(line.app, "09020000001")
    phone = line.phone("09020000001")
    await phone.call()
    await follow(phone, QUICK_ABSENCE)
    await phone.wait_end()
    [r] = await reports(line.app)
    assert (r.child_id, r.day, r.kind, r.reason, r.channel, r.guardian_id, r.status) == (
        kid, THU, "absence", "illness", "phone", guardian, "active")
    assert await call_log(line.app) == [("reported", "+819020000001")]


@pytest.mark.parametrize(("now", "expected"), [
    (jst(THU, 19, 59, 30), THU),
    (jst(THU, 20, 0, 0), FRI),
    (jst(FRI, 21, 0, 0), MON),
], ids=["19:59:30", "20:00:00", "friday-21:00"])
async def test_cutoff(line: Line, now: datetime, expected: date) -> None:
    (kid,), _ = await family(line.app, "09020000002")
    line.clock.set(now)
    phone = line.phone("09020000002")
    await phone.call()
    await follow(phone, QUICK_ABSENCE)
    await phone.wait_end()
    [r] = await reports(line.app)
    assert (r.child_id, r.day) == (kid, expected)


async def test_siblings_at_two_schools_get_their_own_school_day(line: Line) -> None:
    (taro, jiro), _ = await family(line.app, "09020000003", cutoffs=(time(20, 0), time(18, 0)))
    line.clock.set(jst(THU, 19, 0))
    phone = line.phone("09020000003")
    await phone.call()
    at = await follow(phone, [("absence.main_menu", "1"), ("absence.child_option", "1"),
                              ("absence.kind_menu", "1"), ("absence.reason_menu", "1"),
                              ("absence.symptom_menu", "#"), ("absence.about_child", "1"),
                              ("absence.recorded", "1")])
    await follow(phone, [("absence.main_menu", "1"), ("absence.child_option", "2"),
                         ("absence.kind_menu", "1"), ("absence.reason_menu", "2"),
                         ("absence.about_child", "1"), ("absence.recorded", "2")], at)
    await phone.wait_end()
    days = {r.child_id: r.day for r in await reports(line.app)}
    assert days == {taro: THU, jiro: FRI}  # 19:00 is past the second school's 18:00 cutoff


async def test_unregistered_and_withheld_record_nothing(line: Line) -> None:
    await family(line.app, "09020000004")
    stranger = line.phone("0312345678")
    await stranger.call()
    await stranger.wait_end()
    assert [s for _l, s in heard(stranger.agi)] == ["renraku/absence.unregistered"] * 4
    assert [lang for lang, _s in heard(stranger.agi)] == ["ja", "en", "zh", "es"]
    hidden = line.phone("09020000004")
    await hidden.call(withheld=True)
    await hidden.wait_end()
    assert "renraku/absence.withheld" in hidden.played
    assert await reports(line.app) == []
    assert await call_log(line.app) == [("unregistered", "+81312345678"), ("withheld", None)]


async def test_second_call_cancels_one_report_and_changes_another(line: Line) -> None:
    (kid,), guardian = await family(line.app, "09020000005")
    async with transaction(line.app.sessions) as s:
        now = line.clock.now()
        first = await absences.submit(
            s, absences.ReportDraft(kid, THU, "absence", "illness"), channel="phone",
            guardian_id=guardian, now=now)
        second = await absences.submit(
            s, absences.ReportDraft(kid, FRI, "absence", "illness"), channel="web",
            guardian_id=guardian, now=now)
    phone = line.phone("09020000005")
    await phone.call()
    await follow(phone, [
        ("absence.welcome", "2"), ("absence.reports_intro", "1"),
        ("absence.cancel_confirm", "1"), ("absence.cancelled", "1"),
        ("absence.main_menu", "2"), ("absence.reports_intro", "2"), ("absence.kind_menu", "2"),
        ("absence.time_late", "1030#"), ("absence.reason_menu", "2"),
        ("absence.about_child", "1"), ("absence.changed", "2"), ("absence.goodbye", ""),
    ])
    await phone.wait_end()
    cancelled, changed = await reports(line.app)
    assert (cancelled.id, cancelled.status) == (first.id, "cancelled")
    assert (changed.id, changed.status, changed.day, changed.kind, changed.at_time,
            changed.reason) == (second.id, "active", FRI, "late", time(10, 30), "injury")
    async with line.app.sessions() as s:
        history = [(c.report_id, c.action, c.channel) for c in await s.scalars(
            select(AbsenceReportChange).order_by(AbsenceReportChange.id))]
    assert history == [(first.id, "created", "phone"), (second.id, "created", "web"),
                       (first.id, "cancelled", "phone"), (second.id, "changed", "phone")]


HANG_UP_AT = [
    ("absence.main_menu", []),
    ("absence.child_option", [("absence.main_menu", "1")]),
    ("absence.kind_menu", [("absence.main_menu", "1"), ("absence.child_option", "2")]),
    ("absence.time_early", [("absence.main_menu", "1"), ("absence.child_option", "2"),
                            ("absence.kind_menu", "3")]),
    ("absence.reason_menu", [("absence.main_menu", "1"), ("absence.child_option", "2"),
                             ("absence.kind_menu", "3"), ("absence.time_early", "1330#")]),
    ("absence.confirm_keys", [("absence.main_menu", "1"), ("absence.child_option", "2"),
                              ("absence.kind_menu", "3"), ("absence.time_early", "1330#"),
                              ("absence.reason_menu", "4")]),
]


@pytest.mark.parametrize(("step", "before"), HANG_UP_AT, ids=[s for s, _ in HANG_UP_AT])
async def test_hang_up_before_confirming_writes_nothing(
    line: Line, step: str, before: list[tuple[str, str]]
) -> None:
    await family(line.app, "09020000006", cutoffs=(time(20, 0), time(20, 0)))
    phone = line.phone("09020000006")
    await phone.call()
    await follow(phone, [*before, (step, "")])
    await phone.hang_up()
    await phone.wait_end()
    assert await reports(line.app) == []
    assert await call_log(line.app) == [("hung_up", "+819020000006")]


@pytest.mark.parametrize("lang", ["ja", "en", "zh", "es"])
async def test_whole_flow_in_each_language(line: Line, lang: str) -> None:
    (kid,), _ = await family(line.app, "09020000007", lang=lang)
    phone = line.phone("09020000007")
    await phone.call()
    await follow(phone, NEW_ABSENCE)
    await phone.wait_end()
    [r] = await reports(line.app)
    assert r.child_id == kid
    played = heard(phone.agi)
    assert len(played) >= 10
    assert {language for language, _ in played} == {lang}
    # Each prompt played from that language's folder (the only place its tone exists).
    sounds = line.lines.settings.sounds_dir
    assert all((sounds / lang / f"{name}.wav").exists() for _, name in played)


async def test_language_menu_switches_and_is_remembered(line: Line) -> None:
    _, guardian = await family(line.app, "09020000008", lang="ja")
    phone = line.phone("09020000008")
    await phone.call()
    await follow(phone, [("absence.main_menu", "9"), ("absence.language_option", ""),
                         ("absence.language_option", ""), ("absence.language_option", ""),
                         ("absence.language_option", "2"), ("absence.main_menu", "")])
    await phone.hang_up()
    await phone.wait_end()
    played = heard(phone.agi)
    options = [lang for lang, name in played if "absence.language_option" in name]
    assert options == ["ja", "en", "zh", "es"]  # each offered in its own language
    assert played[-2:] == [("en", "renraku/absence.main_menu"),  # the menu, now in English
                           ("en", "renraku/absence.language_key")]
    async with line.app.sessions() as s:
        assert (await s.get(Guardian, guardian)).language == "en"  # type: ignore[union-attr]


async def test_a_known_callers_language_costs_no_command(line: Line) -> None:
    """The dialplan answers and starts the channel in the language kept in AstDB: a caller
    whose language has not changed reaches the first menu with no command before it."""
    _, guardian = await family(line.app, "09020000011", lang="en")

    async def before_first_menu() -> tuple[list[str], set[str]]:
        phone = line.phone("09020000011")
        await phone.call()
        await follow(phone, [("absence.main_menu", "")])
        await phone.hang_up()
        await phone.wait_end()
        commands = [cmd for _t, cmd, _reply in phone.agi.log]
        first_menu = next(i for i, c in enumerate(commands) if c.startswith("EXEC Read"))
        return commands[:first_menu], {lang for lang, _ in heard(phone.agi)}

    assert await before_first_menu() == ([  # first call: kept, and set on the channel
        'SET VARIABLE "DB(renraku_lang/09020000011)" "en"',
        'SET VARIABLE "CHANNEL(language)" "en"'], {"en"})
    assert await before_first_menu() == ([], {"en"})  # the channel was already in English
    async with transaction(line.app.sessions) as s:  # changed on the web portal
        (await s.get(Guardian, guardian)).language = "es"  # type: ignore[union-attr]
    assert await before_first_menu() == ([
        'SET VARIABLE "DB(renraku_lang/09020000011)" "es"',
        'SET VARIABLE "CHANNEL(language)" "es"'], {"es"})
    assert await before_first_menu() == ([], {"es"})


async def test_a_closed_class_is_told_and_a_sibling_still_reports(line: Line) -> None:
    """学級閉鎖 on the report day: the caller hears it for that child, nothing is written
    for them, and the sibling in an open class reports as usual."""
    async with transaction(line.app.sessions) as s:
        school = await make_school(s)
        closed, open_ = (await make_class(s, school, "2年1組", grade=2),
                         await make_class(s, school, "4年1組", grade=4))
        taro = await make_child(s, school, "山田 太郎", "やまだ たろう", closed)
        jiro = await make_child(s, school, "山田 次郎", "やまだ じろう", open_)
        await make_guardian(s, "山田花子", "09020000010", "ja", (taro, jiro))
        await school_calendar.add_change(s, school.id, THU, FRI, name="インフルエンザ",
                                         class_id=closed.id)
        jiro_id = jiro.id
    phone = line.phone("09020000010")
    await phone.call()
    at = await follow(phone, [("absence.main_menu", "1"), ("absence.child_option", "1"),
                              ("absence.class_closed", "")])
    await follow(phone, [("absence.main_menu", "1"), ("absence.child_option", "2"),
                         ("absence.kind_menu", "1"), ("absence.reason_menu", "1"),
                         ("absence.about_child", "1"), ("absence.recorded", "2"),
                         ("absence.goodbye", "")], at)
    await phone.wait_end()
    [r] = await reports(line.app)
    assert (r.child_id, r.day) == (jiro_id, THU)
    # The phrase carried the closed child's name and the day (the tone's name is their hash).
    said = await ToneVoice(line.lines.settings).phrase(
        "absence.class_closed", "ja", name="やまだ たろう",
        date=absence_flow.spoken_date(THU, "ja"))
    assert ("ja", said) in heard(phone.agi)
    sounds = [name for _lang, name in heard(phone.agi)]
    assert sounds.count("renraku/absence.kind_menu") == 1  # asked for 次郎 only


# -- the classic AGI script ----------------------------------------------------------------


@pytest.fixture
async def classic_db(lines: PhoneLines) -> AsyncIterator[tuple[App, FakeClock]]:
    """A database and settings file the classic script (a process inside Asterisk's root,
    which sees only the data folder) can reach; restored afterwards."""
    data = lines.settings.data_dir.resolve()
    toml = data / "asterisk" / "ivr" / "lib" / "classic-agi.toml"
    original = toml.read_text()
    db_file = data / "classic-test.db"
    db_file.unlink(missing_ok=True)
    url = f"sqlite+aiosqlite:///{db_file}"
    await upgrade(url)
    engine = create_engine(url)
    start = jst(THU, 19, 59, 30)
    toml.write_text("".join(
        line for line in original.splitlines(keepends=True)
        if not line.startswith(("database_url", "testing", "fake_now"))
    ) + f'database_url = "{url}"\ntesting = true\nfake_now = "{start.isoformat()}"\n'
      '[extra]\ntest_voice = "tests.absence_fakes:ToneVoice"\n')
    fake = FakeClock(start)
    try:
        yield App(lines.settings, fake, engine, session_factory(engine)), fake
    finally:
        toml.write_text(original)
        await engine.dispose()


async def test_same_scenario_through_the_classic_agi_script(
    lines: PhoneLines, classic_db: tuple[App, FakeClock]
) -> None:
    app, _ = classic_db
    (kid,), guardian = await family(app, "09020000009")
    phone = ClassicPhone(lines, "09020000009")
    await phone.call()
    await phone.follow(QUICK_ABSENCE)
    await phone.wait_end()
    [r] = await reports(app)
    # Started at 19:59:30 by the script's own fake clock: still Thursday.
    assert (r.child_id, r.day, r.kind, r.reason, r.channel, r.guardian_id) == (
        kid, THU, "absence", "illness", "phone", guardian)
    assert await call_log(app) == [("reported", "+819020000009")]


class ClassicPhone:
    """A caller of the classic line (8001): what it hears comes from the IVR's AMI
    ``AGIExecStart`` events, since no FastAGI connection exists for these calls."""

    def __init__(self, lines: PhoneLines, number: str) -> None:
        self.lines = lines
        self.phone = lines.phone(number, dialled="8001")
        self.number = number
        self.events_from = len(lines.ivr_ami_events)

    async def call(self) -> None:
        await self.lines.carrier_ami.send_action({
            "Action": "Originate", "Channel": f"PJSIP/{self.phone.dialled}@ivr",
            "Application": "Wait", "Data": "300", "Async": "true", "ChannelId": self.phone.id,
            "CallerID": f'"{self.number}" <{self.number}>',
        })
        await self.lines.wait_for(lambda: self.lines.carrier_channels.get(self.phone.id), 15)

    def _events(self, kind: str) -> list[dict[str, str]]:
        return [e for e in self.lines.ivr_ami_events[self.events_from:]
                if e.get("Event") == kind and e.get("CallerIDNum", "").endswith(self.number[-9:])]

    @property
    def played(self) -> list[str]:
        return [name for e in self._events("AGIExecStart")
                for name in played_names(e.get("Command", ""))]

    async def follow(self, steps: list[tuple[str, str]]) -> None:
        after = 0
        for fragment, keys in steps:
            async def seen(fragment: str = fragment, after: int = after) -> int | None:
                names = self.played
                return next((i + 1 for i in range(after, len(names)) if fragment in names[i]),
                            None)

            after = await until(seen, 30)
            if keys:
                await self.phone.press(keys, gap=0.25)

    async def wait_end(self) -> None:
        async def ended() -> bool:
            return any(e.get("Event") == "Hangup" and e.get("CallerIDNum", "").endswith(
                self.number[-9:]) for e in self.lines.ivr_ami_events[self.events_from:])

        await until(ended, 20)



async def test_an_idle_caller_does_not_hold_up_another(line: Line) -> None:
    await family(line.app, "09020000010")
    (kid,), _ = await family(line.app, "09020000011")
    idle, busy = line.phone("09020000010"), line.phone("09020000011")
    await idle.call()
    await idle.wait_prompt("absence.main_menu")
    await busy.call()
    await follow(busy, QUICK_ABSENCE)
    await busy.wait_end()
    [r] = await reports(line.app)
    assert r.child_id == kid
    assert idle.record is not None and not idle.record.ended.is_set()  # still on the line
    await idle.hang_up()
    await idle.wait_end()
    assert sorted(await call_log(line.app)) == [("hung_up", "+819020000010"),
                                                ("reported", "+819020000011")]
