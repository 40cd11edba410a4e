"""The answered broadcast call (FastAGI ``/broadcast``): message, replay, survey.

The dialplan answers, runs AMD() and hands the channel here with ``RENRAKU_ATTEMPT`` set.
A person hears "message from {school}", the message in the household's language (TTS,
cached; or the school's recording), then "press 0 to hear again"; a primary guardian's
household then answers the survey: its deadline said first, each question with its
options, the chosen option confirmed, every answer written the moment it is given; after
the deadline the household only hears that the survey has closed. An answering machine gets the
message once, without the survey ("left message").

Read receipts: the message played to its end to a person marks every family reached on
the number read ("call heard"); hanging up during it does not, and neither does an
answering machine (nobody is known to have heard it: it stays unread, and a resend reaches
it again).

The outcome is written here (completed / hung up / left message); the dialer only closes
attempts this flow could not (it never ran, or died).

A database outage during the call does not cut it: a write that finds the database
unreachable is kept, in order with the call's later writes, and written when the database
is back (``models.db.write_through_outage``); the family hears its answer read back as
usual. Only a call that starts while the database is down cannot run (it needs the
message): it ends at once, counted failed, and is placed again (the dialer places no new
call during an outage; this is a call answered as it began).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from models import CallAttempt, Campaign, CampaignHousehold, School, Survey
from models.db import is_outage, transaction, write_through_outage
from models.enums import AttemptStatus
from prompts.phrases import spoken_date, spoken_time
from renraku.app import App
from renraku.rules import campaign as rules
from renraku.services import broadcast as bc
from renraku.services import broadcast_reads as reads
from renraku.services import surveys

log = logging.getLogger(__name__)

DIGIT_TIMEOUT_MS = 5000
MAX_REPLAYS = 3
MAX_TRIES = 3
CONFIRM_TIMEOUT_MS = 2500


class Agi(Protocol):
    async def get_variable(self, name: str) -> str | None: ...
    async def stream_file(self, name: str, escape_digits: str = "") -> str: ...
    async def get_data(self, name: str, timeout_ms: int = ..., max_digits: int = ...) -> str: ...
    async def read_keys(self, sounds: Sequence[tuple[str, str]], channel_lang: str,
                        max_digits: int, timeout_ms: int) -> str: ...
    async def hangup(self) -> None: ...


class Voice(Protocol):
    """Turns what the call must say into playable sound names (see :class:`PromptVoice`)."""

    async def phrase(self, key: str, lang: str, **fmt: Any) -> str: ...
    async def text(self, lang: str, text: str) -> str: ...
    async def recording(self, key: str, lang: str) -> str | None: ...


async def _answered(app: App, attempt_id: int, amd: str) -> None:
    async with transaction(app.sessions) as s:
        await bc.mark_answered(s, attempt_id, app.clock.now(), amd_status=amd)


async def _finish(app: App, attempt_id: int, outcome: AttemptStatus, reason: str) -> None:
    async with transaction(app.sessions) as s:
        await bc.finish_attempt(s, app.settings, attempt_id, outcome, app.clock.now(),
                                reason=reason)


# Writes kept through an outage outlive their call: held here so they are not collected.
_KEPT: set[asyncio.Task[None]] = set()


async def kept_writes(within: float = 60.0) -> None:
    """Until every write kept through an outage is written (tests, shutdown)."""
    if _KEPT:
        await asyncio.wait_for(asyncio.gather(*list(_KEPT), return_exceptions=True), within)


class BroadcastCall:
    def __init__(self, agi: Any, app: App, voice: Voice, is_hangup: type[BaseException]) -> None:
        self.agi = agi
        self.app = app
        self.voice = voice
        self.Hangup = is_hangup
        self.message_completed = False
        self.machine = False
        self._kept: asyncio.Task[None] | None = None  # the last write waiting for the database

    async def _heard(self, s: Any, attempt_id: int, at: datetime) -> None:
        await bc.mark_message_completed(s, attempt_id)
        if not self.machine:  # a person heard it all: the families have read it
            await reads.mark_heard(s, attempt_id, at)

    async def _write(self, work: Callable[[Any], Awaitable[object]], what: str) -> None:
        """One write now; if the database is unreachable (or an earlier write of this call
        still waits for it), kept and written after those when it is back."""
        if self._kept is None or self._kept.done():
            try:
                async with transaction(self.app.sessions) as s:
                    await work(s)
                return
            except Exception as exc:
                if not is_outage(exc):
                    raise
        before = self._kept

        async def later() -> None:
            if before is not None:
                with contextlib.suppress(Exception):
                    await before
            await write_through_outage(self.app.sessions, work, what=what)

        self._kept = asyncio.ensure_future(later())
        _KEPT.add(self._kept)
        self._kept.add_done_callback(_KEPT.discard)

    async def run(self) -> AttemptStatus | None:
        raw = await self.agi.get_variable("RENRAKU_ATTEMPT")
        if not raw or not str(raw).isdigit():
            log.warning("broadcast call without RENRAKU_ATTEMPT")
            await self.agi.hangup()
            return None
        attempt_id = int(raw)
        amd = (await self.agi.get_variable("AMDSTATUS") or "").upper()
        self.machine = amd == "MACHINE"
        now = self.app.clock.now()
        await self._write(lambda s: bc.mark_answered(s, attempt_id, now, amd_status=amd),
                          f"attempt {attempt_id} answered")
        try:
            household, campaign, school, questions, survey = await self._load(attempt_id)
        except Exception as exc:
            if not is_outage(exc):
                raise
            # The database went away before the message could be read: nothing was said,
            # so the attempt fails (kept until the database is back) and is retried.
            log.warning("attempt %s: database unreachable at the start; called again later",
                        attempt_id)
            await self._write(lambda s: bc.finish_attempt(
                s, self.app.settings, attempt_id, AttemptStatus.FAILED, now,
                reason="database down at the start"), f"attempt {attempt_id} failed")
            with contextlib.suppress(self.Hangup):
                await self.agi.hangup()
            return AttemptStatus.FAILED
        lang = household.language or "ja"
        try:
            await self._message(attempt_id, campaign, school, lang)
            if not self.machine and survey is not None:
                await self._survey(questions, survey, household, lang, ZoneInfo(school.timezone))
            if not self.machine:
                await self.agi.stream_file(await self.voice.phrase("broadcast.goodbye", lang))
        except self.Hangup:
            pass
        outcome = rules.answered_outcome(
            amd_machine=self.machine, message_completed=self.message_completed
        )
        now = self.app.clock.now()
        await self._write(lambda s: bc.finish_attempt(s, self.app.settings, attempt_id, outcome,
                                                      now, reason="call flow"),
                          f"attempt {attempt_id} {outcome}")
        if outcome != AttemptStatus.HUNG_UP:
            try:
                await self.agi.hangup()
            except self.Hangup:
                pass
        return outcome

    async def _load(self, attempt_id: int) -> tuple[Any, ...]:
        async with self.app.sessions() as s:
            attempt = await s.get(CallAttempt, attempt_id)
            assert attempt is not None
            household = await s.get(CampaignHousehold, attempt.household_id)
            assert household is not None
            campaign = await s.get(Campaign, household.campaign_id)
            assert campaign is not None
            school = await s.get(School, campaign.school_id)
            assert school is not None
            questions = (
                await bc.survey_questions(s, campaign.survey_id)
                if campaign.survey_id and household.survey else []
            )
            survey = await s.get(Survey, campaign.survey_id) if questions else None
        return household, campaign, school, questions, survey

    async def _message(
        self, attempt_id: int, campaign: Campaign, school: School, lang: str
    ) -> None:
        text_lang = rules.pick_language(campaign.message, lang)
        intro = await self.voice.phrase(
            "broadcast.message_from", lang, school=school.reading or school.name
        )
        body = None
        if campaign.recorded_prompt_key:
            # The school's recording in the family's language, else the Japanese one
            body = await self.voice.recording(campaign.recorded_prompt_key, lang)
            if body is None and lang != "ja":
                body = await self.voice.recording(campaign.recorded_prompt_key, "ja")
        if body is None:
            body = await self.voice.text(text_lang, campaign.message.get(text_lang, ""))
        again = await self.voice.phrase("broadcast.press_0_again", lang)
        for _ in range(1 if self.machine else MAX_REPLAYS):
            await self.agi.stream_file(intro)
            await self.agi.stream_file(body)
            if not self.message_completed:
                self.message_completed = True
                # When heard, even if the write waits for the database after an outage.
                heard = functools.partial(self._heard, attempt_id=attempt_id,
                                          at=self.app.clock.now())
                await self._write(heard, f"attempt {attempt_id} message heard")
            if self.machine:
                return
            digit = await self.agi.get_data(again, DIGIT_TIMEOUT_MS // 2, 1)
            if digit != "0":
                return

    async def _survey(self, questions: list, survey: Survey, household: CampaignHousehold,
                      lang: str, tz: ZoneInfo) -> None:
        """The questions, with the deadline said first; after it, only that it has closed."""
        closed = await self.voice.phrase("broadcast.survey_closed", lang)
        if surveys.is_closed(survey, self.app.clock.now()):
            await self.agi.stream_file(closed)
            return
        await self.agi.stream_file(await self.voice.phrase("broadcast.survey_intro", lang))
        if survey.closes_at is not None:
            local = survey.closes_at.astimezone(tz)
            await self.agi.stream_file(await self.voice.phrase(
                "broadcast.survey_deadline", lang, date=spoken_date(local.date(), lang),
                time=spoken_time(local.time(), lang)))
        try:
            for q in questions:
                await self._question(q, household, lang)
        except surveys.SurveyClosed:  # the deadline passed during the call
            await self.agi.stream_file(closed)
            return
        await self.agi.stream_file(await self.voice.phrase("broadcast.answer_recorded", lang))

    async def _question(self, q: Any, household: CampaignHousehold, lang: str) -> None:
        """Ask until a valid key is pressed (3 tries); write it at once, read it back.

        After the read-back, 2 asks again; 1 or silence keeps the answer (already saved),
        so a family that simply waits is not asked twice.
        """
        qlang = rules.pick_language(q.text, lang)
        sounds = [
            await self.voice.phrase("broadcast.question", lang, number=q.position),
            await self.voice.text(qlang, q.text.get(qlang, "")),
        ]
        for o in q.options:
            olang = rules.pick_language(o.label, lang)
            sounds.append(
                await self.voice.phrase("broadcast.option", lang, digit=o.digit,
                                        label=o.label.get(olang, ""))
            )
        digits = {str(o.digit): o for o in q.options}
        tries = 0
        while tries < MAX_TRIES:
            tries += 1
            # One command (ivr.keypad): a key pressed between two options is not lost.
            # Dynamic sounds are in every language's folder: all play on the channel's.
            pressed = await self.agi.read_keys([(lang, s) for s in sounds], lang, 1,
                                               DIGIT_TIMEOUT_MS)
            if pressed == "0" or not pressed:
                continue  # hear the question again
            option = digits.get(pressed)
            if option is None:
                await self.agi.stream_file(await self.voice.phrase("broadcast.invalid", lang))
                continue
            now = self.app.clock.now()
            await self._write(lambda s, q=q, option=option, now=now: bc.record_answer(
                s, question_id=q.id, digit=option.digit, child_ids=household.child_ids,
                channel="phone", now=now, guardian_id=household.guardian_id,
            ), f"survey answer {q.id}={option.digit} of household {household.id}")
            olang = rules.pick_language(option.label, lang)
            await self.agi.stream_file(
                await self.voice.phrase("broadcast.you_chose", lang, digit=option.digit,
                                        label=option.label.get(olang, ""))
            )
            again = await self.agi.get_data(
                await self.voice.phrase("broadcast.confirm_answer", lang), CONFIRM_TIMEOUT_MS, 1
            )
            if again != "2":
                return
            tries = 0  # choosing again is not a failed try


def handler(app: App, voice: Voice) -> Any:
    """The FastAGI ``/broadcast`` route: ``server.route("broadcast", handler(app, voice))``."""
    from ivr.fastagi import Hangup

    async def run(agi: Any) -> None:
        await BroadcastCall(agi, app, voice, Hangup).run()

    return run
