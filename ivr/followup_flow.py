"""The follow-up call of an unexplained absence (FastAGI ``/followup``).

The dialer calls the family like a broadcast household (``Campaign.flow = "followup"``;
the dialplan runs AMD() and hands the channel here with ``RENRAKU_ATTEMPT`` set). In the
family's language: "{school} here. {name} has not arrived at school. Press 1 if your child
is absent today, 2 if on the way, 3 if you did not know." The key is written at once
(renraku.services.followup.record_answer: the register shows it, nobody else is called);
on 3 the staff alerts are emailed after the call is thanked. An answering machine hears
the message and "please call the school".
"""

from __future__ import annotations

import logging
from typing import Any

from ivr.broadcast_flow import Voice, _answered, _finish
from models import CallAttempt, CampaignHousehold, Child, School
from models.db import transaction
from models.enums import AttemptStatus, FollowUpAnswer
from renraku.app import App
from renraku.rules import campaign as rules
from renraku.rules.rollcall import ANSWER_BY_DIGIT
from renraku.services import broadcast as bc
from renraku.services import followup

log = logging.getLogger(__name__)

DIGIT_TIMEOUT_MS = 5000
MAX_TRIES = 3
KEYS = "".join(ANSWER_BY_DIGIT)


class FollowUpCall:
    def __init__(self, agi: Any, app: App, voice: Voice, is_hangup: type[BaseException]) -> None:
        self.agi = agi
        self.app = app
        self.voice = voice
        self.Hangup = is_hangup
        self.heard = False  # the question was played to the end at least once
        self.attempt_id = 0

    async def run(self) -> FollowUpAnswer | None:
        raw = await self.agi.get_variable("RENRAKU_ATTEMPT")
        if not raw or not str(raw).isdigit():
            log.warning("follow-up call without RENRAKU_ATTEMPT")
            await self.agi.hangup()
            return None
        attempt_id = self.attempt_id = int(raw)
        amd = (await self.agi.get_variable("AMDSTATUS") or "").upper()
        machine = amd == "MACHINE"
        await _answered(self.app, attempt_id, amd)
        async with self.app.sessions() as s:
            attempt = await s.get_one(CallAttempt, attempt_id)
            household = await s.get_one(CampaignHousehold, attempt.household_id)
            record = await followup.followup_of_campaign(s, household.campaign_id)
            child = await s.get_one(Child, record.child_id) if record else None
            school = await s.get_one(School, record.school_id) if record else None
        lang = household.language or "ja"
        answer = None
        try:
            if child is not None and school is not None:
                intro = await self.voice.phrase(
                    "followup.not_arrived", lang, name=child.spoken_name,
                    school=school.reading or school.name)
                if machine:
                    await self.agi.stream_file(intro)
                    await self.agi.stream_file(
                        await self.voice.phrase("followup.call_school", lang))
                    self.heard = True
                else:
                    answer = await self._ask(intro, household, lang)
        except self.Hangup:
            pass
        outcome = rules.answered_outcome(amd_machine=machine,
                                         message_completed=self.heard or answer is not None)
        await _finish(self.app, attempt_id, outcome, "follow-up call")
        if answer == FollowUpAnswer.DID_NOT_KNOW and record is not None:
            await followup.email_alerts(self.app, record.id)
        if outcome != AttemptStatus.HUNG_UP:
            try:
                await self.agi.hangup()
            except self.Hangup:
                pass
        return answer

    async def _ask(self, intro: str, household: CampaignHousehold,
                   lang: str) -> FollowUpAnswer | None:
        """Ask until 1, 2 or 3 (three tries); write the answer the moment it is pressed."""
        menu = await self.voice.phrase("followup.menu", lang)
        for _ in range(MAX_TRIES):
            pressed = await self.agi.stream_file(intro, KEYS)
            if not pressed:
                pressed = await self.agi.stream_file(menu, KEYS)
                self.heard = True
            if not pressed:
                pressed = await self.agi.wait_for_digit(DIGIT_TIMEOUT_MS)
            if pressed not in ANSWER_BY_DIGIT:
                if pressed:
                    await self.agi.stream_file(await self.voice.phrase("followup.invalid", lang))
                continue
            async with transaction(self.app.sessions) as s:
                record = await followup.record_answer(
                    s, household.campaign_id, pressed, household.guardian_id,
                    self.app.clock.now())
                await bc.mark_message_completed(s, self.attempt_id)
            answer = ANSWER_BY_DIGIT[pressed]
            if record is not None:
                await self.agi.stream_file(
                    await self.voice.phrase(f"followup.thanks.{answer}", lang))
            return answer
        return None


def handler(app: App, voice: Voice) -> Any:
    """The FastAGI ``/followup`` route: ``server.route("followup", handler(app, voice))``."""
    from ivr.fastagi import Hangup

    async def run(agi: Any) -> None:
        await FollowUpCall(agi, app, voice, Hangup).run()

    return run
