"""Voice broadcast through real Asterisk: the carrier simulator answers as scripted households.

The IVR Asterisk runs the project's dialplan (AMD() then FastAGI ``/broadcast``); the
dialer originates over AMI; households behave per tests/carrier/extensions.conf:
``answer:<wait>:<digits>``, ``busy``, ``noanswer``, ``reject``, ``hangup:<after>``, ``machine``.

Sounds are short tones of known length (made with sox) so the households' key presses land
where the flow listens: message ~2.6 s after AMD, "press 0" wait 2.5 s, then the question.
A household answering ``answer:10:1`` presses 1 about 10.5 s after answering, inside the
question's window; one answering :func:`quick` keys through the call as a family in a hurry
would. TTS itself is the prompts package's business and tested there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ivr import broadcast_flow
from ivr.broadcast_flow import BroadcastCall
from ivr.dialer import Dialer, DialerConfig, PanoramiskPort
from ivr.fastagi import AGIChannel, Hangup
from models import CallAttempt, Campaign, CampaignHousehold, SurveyOption, SurveyResponse
from models.db import transaction
from models.enums import AttemptStatus as S
from renraku.app import App
from renraku.clock import Clock, FakeClock, SystemClock
from renraku.services import broadcast as bc
from tests.asterisk_harness import PhoneLines
from tests.db_fixtures import Database
from tests.factories import make_child, make_guardian, make_school, morning_zone

pytestmark = pytest.mark.asterisk
TOKYO = ZoneInfo("Asia/Tokyo")
QUESTION = [{"text": {"ja": "参加しますか", "en": "Will you come?"},
             "options": [{"digit": 1, "label": {"ja": "はい"}},
                         {"digit": 2, "label": {"ja": "いいえ"}}]}]


def quick(digit: int, wait_s: float = 5.5) -> str:
    """A household that answers ``digit`` without waiting out the flow's pauses (a call of
    ~9.5 s instead of ~15 s with this module's voice). After the carrier's answer: hello
    0.5 s, AMD's 0.8 s silence, the message until ~3.7 s, its "press 0 to hear again" wait
    until ~6.5 s. The household presses 9 at 0.5 + ``wait_s`` s, late in that wait: a key
    other than 0 ends it at once (a flow ahead of this hears it in the survey's intro,
    ignored, or in the question: "not an option", asked again; one up to 2.5 s behind
    still takes it in that wait). The answer 1.35 s later lands in the question, and 1
    another 1.35 s later in "1 keeps it" (or that wait's 2.5 s run out)."""
    return f"answer:{wait_s:g}:9ww{digit}ww1"


class ToneVoice:
    """Playable sounds of fixed length, one file per phrase/text, named by language."""

    def __init__(self, sounds: Path) -> None:
        self.dir = sounds / "bt"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.names: dict[str, str] = {}

    def _tone(self, name: str, seconds: float) -> str:
        path = self.dir / f"{name}.wav"
        if not path.exists():
            subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path),
                            "synth", str(seconds), "sine", "600", "vol", "0.3"], check=True)
        return f"bt/{name}"

    async def phrase(self, key: str, lang: str, **fmt: Any) -> str:
        return self._tone(f"{key.replace('.', '_')}-{lang}", 0.3)

    async def text(self, lang: str, text: str) -> str:
        n = self.names.setdefault(text, f"text{len(self.names)}")
        return self._tone(f"{n}-{lang}", 2.0)

    async def recording(self, key: str, lang: str) -> str | None:
        return None


def _app(lines: PhoneLines, db: Database, clock: Clock | None = None, **kw: Any) -> App:
    settings = lines.settings.replace(
        dialer_max_channels=kw.pop("channels", 4), dialer_originates_per_second=4.0,
        dialer_retry_delay_s=kw.pop("retry", 1), dialer_max_attempts=3,
        database_url=db.url, **kw,
    )
    return App(settings, clock or SystemClock(), db.engine, db.sessions)


def _route(lines: PhoneLines, app: App) -> ToneVoice:
    voice = ToneVoice(app.settings.sounds_dir)

    async def handler(agi: AGIChannel) -> None:
        await BroadcastCall(agi, app, voice, Hangup).run()

    lines.route("broadcast", handler)
    return voice


async def _campaign(app: App, plans: dict[str, str], lines: PhoneLines, *, survey: bool = True,
                    scheduled_at: datetime | None = None, langs: dict[str, str] | None = None,
                    timezone: str | None = None) -> int:
    """One child and one primary guardian per number (digits only, 81…), scripted households.
    The school is where it is morning now, unless ``timezone`` says otherwise."""
    now = app.clock.now()
    async with transaction(app.sessions) as s:
        school = await make_school(s, f"テスト小 {len(plans)}-{now.timestamp():.0f}",
                                   timezone=timezone or morning_zone(now))
        for number in plans:
            child = await make_child(s, school, f"児童 {number[-4:]}")
            await make_guardian(s, f"保護者 {number[-4:]}", "+" + number,
                                (langs or {}).get(number, "ja"), (child,))
        sid = (await bc.create_survey(s, school.id, "q", QUESTION, now)).id if survey else None
        camp = await bc.create_campaign(
            s, app.settings, school_id=school.id, title="遠足", target={"school": True},
            now=now, message={"ja": "明日は遠足です", "en": "Trip tomorrow"}, survey_id=sid,
            scheduled_at=scheduled_at,
        )
        await bc.launch(s, app.settings, camp, now)
        cid = camp.id
    for number, plan in plans.items():
        await lines.household(number, plan)
    return cid


async def _wait_done(app: App, cid: int, within: float) -> None:
    async with asyncio.timeout(within):
        while True:
            async with app.sessions() as s:
                if (await bc.progress(s, cid)).status == "completed":
                    return
            await asyncio.sleep(0.5)


async def dial_until_done(app: App, lines: PhoneLines, *cids: int, within: float = 90) -> None:
    """Run the dialer over real Asterisk until these campaigns are completed."""
    dialer = Dialer(app, PanoramiskPort(lines.ivr_ami),
                    DialerConfig(ring_timeout_s=4, answer_grace_s=1.0))
    stop = asyncio.Event()
    task = asyncio.ensure_future(dialer.run(stop))
    try:
        for cid in cids:
            await _wait_done(app, cid, within)
    finally:
        stop.set()
        await task


async def _households(app: App, cid: int) -> dict[str, CampaignHousehold]:
    async with app.sessions() as s:
        rows = await s.scalars(select(CampaignHousehold).where(
            CampaignHousehold.campaign_id == cid))
        return {h.phone_e164.lstrip("+"): h for h in rows}


async def _mid_campaign(app: App, cid: int, done: int, flying: int, poll: float) -> None:
    """Until at least ``done`` families completed and ``flying`` are dialled or talking:
    the moment a fault test breaks something."""
    async with asyncio.timeout(90):
        while True:
            hs = await _households(app, cid)
            if (sum(h.status == S.COMPLETED for h in hs.values()) >= done
                    and sum(h.status in (S.DIALING, S.ANSWERED) for h in hs.values()) >= flying):
                return
            await asyncio.sleep(poll)


def _max_concurrent(events: list[dict[str, str]], start: int) -> int:
    """Most IVR channels up at once, from AMI Newchannel/Hangup events."""
    live: set[str] = set()
    most = 0
    for ev in events[start:]:
        uid = ev.get("Uniqueid", "")
        if ev.get("Event") == "Newchannel":
            live.add(uid)
            most = max(most, len(live))
        elif ev.get("Event") == "Hangup":
            live.discard(uid)
    return most


def _numbers(prefix: str, n: int) -> list[str]:
    return [f"8190{prefix}{i:04d}" for i in range(1, n + 1)]


async def test_thirty_households_outcomes_attempts_tally_and_channel_cap(
    lines: PhoneLines, sqlite_db: Database
) -> None:
    app = _app(lines, sqlite_db, channels=4)
    _route(lines, app)
    nums = iter(_numbers("3100", 30))
    plans: dict[str, str] = {}
    expect: dict[str, tuple[str, int, int | None]] = {}  # status, attempts, survey digit
    for plan, count, outcome in [
        (quick(1), 11, (S.COMPLETED, 1, 1)),
        (quick(2), 6, (S.COMPLETED, 1, 2)),
        (f"busy|{quick(1)}", 4, (S.COMPLETED, 2, 1)),
        ("noanswer", 3, (S.NO_ANSWER, 3, None)),
        ("reject", 1, (S.FAILED, 3, None)),
        ("hangup:2", 3, (S.HUNG_UP, 1, None)),
        ("machine", 2, (S.LEFT_MESSAGE, 1, None)),
    ]:
        for _ in range(count):
            number = next(nums)
            plans[number] = plan
            expect[number] = outcome
    langs = {n: "en" for n in list(plans)[:3]}
    cid = await _campaign(app, plans, lines, langs=langs)
    first_event = len(lines.ivr_ami_events)
    dialer = Dialer(app, PanoramiskPort(lines.ivr_ami),
                    DialerConfig(ring_timeout_s=4, answer_grace_s=1.0))
    stop = asyncio.Event()
    task = asyncio.ensure_future(dialer.run(stop))
    try:
        await _wait_done(app, cid, 240)
    finally:
        stop.set()
        await task
    households = await _households(app, cid)
    got = {n: (h.status, h.attempts) for n, h in households.items()}
    assert got == {n: (e[0], e[1]) for n, e in expect.items()}
    # The carrier saw exactly those calls: nobody answered was called again
    for number, (_status, attempts, _digit) in expect.items():
        assert await lines.household_attempts(number) == attempts, number
    async with app.sessions() as s:
        camp = await s.get(Campaign, cid)
        tally = await bc.tally(s, camp.survey_id)
        answers = list(await s.scalars(select(SurveyResponse)))
    wanted = Counter(d for _s, _a, d in expect.values() if d is not None)
    assert {o.digit: o.count for o in tally[0].options} == {1: wanted[1], 2: wanted[2]}
    assert len(answers) == 21
    # AMI never saw more than 4 campaign channels at once
    assert _max_concurrent(lines.ivr_ami_events, first_event) <= 4
    # Families whose language is English heard the English message
    en_calls = [r for r in lines.calls if any("-en" in p for p in r.agi.streamed)]
    assert len(en_calls) >= 3


async def test_dialer_killed_mid_campaign_resumes_without_recalling(
    lines: PhoneLines, sqlite_db: Database, tmp_path: Path
) -> None:
    app = _app(lines, sqlite_db, channels=3)
    _route(lines, app)
    plans = dict.fromkeys(_numbers("3200", 10), quick(1))
    plans.update(dict.fromkeys(_numbers("3201", 2), f"busy|{quick(2)}"))
    cid = await _campaign(app, plans, lines)
    env = {
        **os.environ,
        "RENRAKU_DATA_DIR": str(app.settings.data_dir),
        "RENRAKU_DATABASE_URL": sqlite_db.url,
        "RENRAKU_AMI_PORT": str(app.settings.ami_port),
        "RENRAKU_AMI_USER": app.settings.ami_user,
        "RENRAKU_DIALER_MAX_CHANNELS": "3",
        "RENRAKU_DIALER_ORIGINATES_PER_SECOND": "4",
        "RENRAKU_DIALER_RETRY_DELAY_S": "1",
    }
    argv = [sys.executable, "-m", "renraku.cli", "dialer", "--ring-timeout", "4"]
    log = (tmp_path / "dialer.log").open("ab")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    proc = start()
    try:
        # Kill it (SIGKILL: no goodbye) once some families answered and others are mid-call
        await _mid_campaign(app, cid, done=3, flying=1, poll=0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.to_thread(proc.wait)
        proc = start()
        await _wait_done(app, cid, 150)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        await asyncio.to_thread(proc.wait)
        log.close()
    hs = await _households(app, cid)
    assert {n: h.status for n, h in hs.items()} == dict.fromkeys(plans, S.COMPLETED), \
        (tmp_path / "dialer.log").read_text()[-3000:]
    for number, plan in plans.items():
        calls = 2 if plan.startswith("busy") else 1
        assert await lines.household_attempts(number) == calls, number
    async with app.sessions() as s:
        answers = list(await s.scalars(select(SurveyResponse)))
        attempts = list(await s.scalars(select(CallAttempt)))
    assert len(answers) == 12  # every family's answer is there
    assert all(a.status in (S.COMPLETED, S.BUSY) for a in attempts)


async def test_calling_window_stops_at_20_and_continues_next_morning(
    lines: PhoneLines, sqlite_db: Database
) -> None:
    evening = datetime(2026, 12, 4, 19, 59, 57, tzinfo=TOKYO)
    clock = FakeClock(evening)
    app = _app(lines, sqlite_db, clock=clock, channels=1)
    _route(lines, app)
    plans = dict.fromkeys(_numbers("3300", 3), "machine")
    cid = await _campaign(app, plans, lines, survey=False, timezone="Asia/Tokyo",
                          scheduled_at=datetime(2026, 12, 4, 19, 55, tzinfo=TOKYO))
    dialer = Dialer(app, PanoramiskPort(lines.ivr_ami),
                    DialerConfig(ring_timeout_s=4, answer_grace_s=1.0))
    stop = asyncio.Event()
    task = asyncio.ensure_future(dialer.run(stop))
    try:
        # The first call starts before 20:00; at 20:00 the rest wait for the morning
        await asyncio.sleep(12)
        hs = await _households(app, cid)
        assert sorted(h.status for h in hs.values()) == [S.LEFT_MESSAGE, S.QUEUED, S.QUEUED]
        clock.set(datetime(2026, 12, 5, 7, 59, 58, tzinfo=TOKYO))
        await asyncio.sleep(1.5)
        assert sum(h.status == S.QUEUED for h in (await _households(app, cid)).values()) == 2
        await _wait_done(app, cid, 60)
    finally:
        stop.set()
        await task
    async with app.sessions() as s:
        attempts = list(await s.scalars(select(CallAttempt)))
    starts = sorted(a.started_at.astimezone(TOKYO) for a in attempts)
    assert len(starts) == 3
    assert starts[0] < datetime(2026, 12, 4, 20, 0, tzinfo=TOKYO)
    assert all(datetime(2026, 12, 5, 8, 0, tzinfo=TOKYO) <= t for t in starts[1:])
    assert all(a.status == S.LEFT_MESSAGE for a in attempts)


async def _answered_by_phone(lines: PhoneLines, app: App, number: str,
                             lag_s: float = 0.0) -> tuple[Any, int]:
    """A family on the line (a call into the IVR) answering its campaign's attempt: the
    broadcast flow runs on that call, each of its sounds followed by ``lag_s`` of the app
    busy before the next command (as its loop lags at a morning's peak). The phone, and
    the attempt."""
    cid = await _campaign(app, {f"81{number[1:]}": "busy"}, lines)
    async with transaction(app.sessions) as s:
        household = (await bc.due_households(s, cid, app.clock.now(), 1))[0]
        attempt = await bc.start_attempt(s, household.id, app.clock.now())
        assert attempt is not None
        attempt_id = attempt.id
    voice = ToneVoice(app.settings.sounds_dir)

    async def handler(agi: AGIChannel) -> None:
        await agi.set_variable("RENRAKU_ATTEMPT", str(attempt_id))
        command = agi.command

        async def lagging(cmd: str) -> Any:
            reply = await command(cmd)
            if cmd.startswith(("STREAM FILE", "EXEC", "GET DATA")):
                await asyncio.sleep(lag_s)
            return reply

        agi.command = lagging  # type: ignore[method-assign]
        await BroadcastCall(agi, app, voice, Hangup).run()

    lines.route("absence", handler)
    phone = lines.phone(number)
    await phone.call()
    return phone, attempt_id


async def _answers(app: App) -> list[int]:
    """The digits of the survey answers written so far."""
    async with app.sessions() as s:
        return list(await s.scalars(select(SurveyOption.digit).join(
            SurveyResponse, SurveyResponse.option_id == SurveyOption.id)))


async def test_a_key_pressed_while_the_app_lags_between_question_sounds_is_kept(
    lines: PhoneLines, sqlite_db: Database
) -> None:
    """The question and its options are one Read: with the app a second behind after each
    sound, a key pressed half a second after the question's number (0.3 s) is kept. One
    STREAM FILE per sound lost it: it fell between two commands, where Asterisk drops the
    caller's keys (tests/test_keypad_asterisk.py shows that loss)."""
    app = _app(lines, sqlite_db)
    phone, attempt_id = await _answered_by_phone(lines, app, "09031110001", lag_s=1.0)
    await phone.wait_prompt("broadcast_question", within=20)
    await asyncio.sleep(0.3 + 0.5)
    await phone.press("1")
    await phone.wait_prompt("broadcast_you_chose", within=10)
    assert await _answers(app) == [1]  # written at once, before the read-back
    assert phone.played.count("bt/broadcast_question-ja") == 1  # asked once
    await phone.hang_up()
    await phone.wait_end()
    async with app.sessions() as s:
        assert (await s.get_one(CallAttempt, attempt_id)).status == S.COMPLETED


async def test_a_family_hears_again_with_0_and_is_told_an_invalid_key(
    lines: PhoneLines, sqlite_db: Database
) -> None:
    app = _app(lines, sqlite_db)
    phone, _attempt = await _answered_by_phone(lines, app, "09031110002")
    seen = await phone.wait_prompt("broadcast_question", within=20)
    await phone.press("7")  # not an option
    seen = await phone.wait_prompt("broadcast_invalid", after=seen)
    seen = await phone.wait_prompt("broadcast_question", after=seen)
    await phone.press("0")  # hear it again
    seen = await phone.wait_prompt("broadcast_question", after=seen)
    assert await _answers(app) == []
    await phone.press("2")
    await phone.wait_prompt("broadcast_you_chose", after=seen)
    assert await _answers(app) == [2]
    await phone.wait_end()  # nothing pressed at "1 keeps it": kept, goodbye
    assert [n.split("/")[-1] for n in phone.played if "question" in n or "invalid" in n] == [
        "broadcast_question-ja", "broadcast_invalid-ja", "broadcast_question-ja",
        "broadcast_question-ja"]
    assert phone.played[-2:] == ["bt/broadcast_answer_recorded-ja", "bt/broadcast_goodbye-ja"]


async def test_silence_asks_three_times_and_hanging_up_mid_question_ends_the_call(
    lines: PhoneLines, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broadcast_flow, "DIGIT_TIMEOUT_MS", 1000)
    app = _app(lines, sqlite_db)
    silent, _attempt = await _answered_by_phone(lines, app, "09031110003")
    await silent.wait_end(within=40)
    assert silent.played.count("bt/broadcast_question-ja") == broadcast_flow.MAX_TRIES
    assert silent.played[-1] == "bt/broadcast_goodbye-ja"
    assert [c.split()[0] for _t, c, _r in silent.agi.log].count("EXEC") == 3  # a Read each

    gone, attempt_id = await _answered_by_phone(lines, app, "09031110004")
    await gone.wait_prompt("broadcast_question", within=20)
    await asyncio.sleep(0.5)
    await gone.hang_up()
    await gone.wait_end()
    assert gone.played.count("bt/broadcast_question-ja") == 1
    assert "bt/broadcast_goodbye-ja" not in gone.played
    assert await _answers(app) == []
    async with app.sessions() as s:  # the message was heard: the family is reached
        assert (await s.get_one(CallAttempt, attempt_id)).status == S.COMPLETED
