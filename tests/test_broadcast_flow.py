"""The in-call broadcast flow against a scripted AGI: replay, survey, machine, hang-up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from ivr import broadcast_flow
from ivr.broadcast_flow import BroadcastCall
from models import CallAttempt, CampaignHousehold, SurveyResponse
from models.db import transaction
from models.enums import AttemptStatus as S
from renraku.app import App
from renraku.clock import FakeClock
from renraku.services import broadcast as bc
from renraku.settings import Settings
from tests.db_fixtures import Database
from tests.factories import make_child, make_guardian, make_school

NOW = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
SURVEY = [
    {"text": {"ja": "参加しますか", "en": "Coming?"},
     "options": [{"digit": 1, "label": {"ja": "はい"}}, {"digit": 2, "label": {"ja": "いいえ"}}]},
    {"text": {"ja": "お弁当は"},
     "options": [{"digit": 1, "label": {"ja": "要る"}}, {"digit": 2, "label": {"ja": "要らない"}}]},
]


class Hangup(Exception):
    pass


class FakeAgi:
    """Keys are pressed at given prompts: ``presses`` maps a sound name prefix to a digit."""

    def __init__(self, variables: dict[str, str], presses: list[tuple[str, str]],
                 hang_up_at: str | None = None) -> None:
        self.variables = variables
        self.presses = list(presses)
        self.hang_up_at = hang_up_at
        self.played: list[str] = []
        self.hung_up = False

    async def get_variable(self, name: str) -> str | None:
        return self.variables.get(name)

    def _play(self, name: str) -> str:
        if self.hang_up_at and name.startswith(self.hang_up_at):
            raise Hangup()
        self.played.append(name)
        if self.presses and name.startswith(self.presses[0][0]):
            return self.presses.pop(0)[1]
        return ""

    async def stream_file(self, name: str, escape_digits: str = "") -> str:
        digit = self._play(name)
        return digit if digit and digit in escape_digits else ""

    async def get_data(self, name: str, timeout_ms: int = 0, max_digits: int = 1) -> str:
        return self._play(name)

    async def read_keys(self, sounds: list[tuple[str, str]], channel_lang: str,
                        max_digits: int, timeout_ms: int) -> str:
        for _lang, name in sounds:
            if digit := self._play(name):
                return digit
        return ""

    async def hangup(self) -> None:
        self.hung_up = True


class FakeVoice:
    async def phrase(self, key: str, lang: str, **fmt: Any) -> str:
        return f"{key}:{lang}:" + ",".join(f"{k}={v}" for k, v in sorted(fmt.items()))

    async def text(self, lang: str, text: str) -> str:
        return f"tts:{lang}:{text}"

    async def recording(self, key: str, lang: str) -> str | None:
        return None


async def _setup(db: Database, lang: str = "en") -> tuple[App, int, int]:
    app = App(Settings(), FakeClock(NOW, frozen=True), db.engine, db.sessions)
    async with transaction(app.sessions) as s:
        school = await make_school(s)
        kid = await make_child(s, school)
        await make_guardian(s, "母", "090-3333-0001", lang, (kid,))
        survey = await bc.create_survey(s, school.id, "遠足", SURVEY, NOW)
        camp = await bc.create_campaign(
            s, app.settings, school_id=school.id, title="t", target={"school": True}, now=NOW,
            message={"ja": "明日は遠足です", "en": "Trip tomorrow"}, survey_id=survey.id,
        )
        await bc.launch(s, app.settings, camp, NOW)
        h = (await bc.due_households(s, camp.id, NOW, 1))[0]
        attempt = await bc.start_attempt(s, h.id, NOW)
        assert attempt is not None
        return app, attempt.id, survey.id


async def _state(app: App, attempt_id: int) -> tuple[str, str, bool, int]:
    async with app.sessions() as s:
        a = await s.get(CallAttempt, attempt_id)
        h = await s.get(CampaignHousehold, a.household_id)
        n = len(list(await s.scalars(select(SurveyResponse))))
        return a.status, h.status, a.message_completed, n


async def test_person_replays_then_answers(sqlite_db: Database) -> None:
    app, aid, survey_id = await _setup(sqlite_db)
    agi = FakeAgi(
        {"RENRAKU_ATTEMPT": str(aid), "AMDSTATUS": "HUMAN"},
        [("broadcast.press_0_again", "0"), ("broadcast.press_0_again", ""),
         ("tts:en:Coming?", "7"), ("tts:en:Coming?", "1"),
         ("broadcast.confirm_answer", "2"),  # chooses again
         ("tts:en:Coming?", "2"), ("broadcast.confirm_answer", "1"), ("tts:ja:お弁当は", "2")],
    )
    outcome = await BroadcastCall(agi, app, FakeVoice(), Hangup).run()
    assert outcome == S.COMPLETED
    assert agi.played.count("tts:en:Trip tomorrow") == 2  # heard again after 0
    assert "broadcast.invalid:en:" in agi.played  # 7 is not an option
    assert any(p.startswith("broadcast.you_chose:en:digit=1") for p in agi.played)
    assert any(p.startswith("broadcast.question:en:number=2") for p in agi.played)
    assert await _state(app, aid) == (S.COMPLETED, S.COMPLETED, True, 2)
    async with app.sessions() as s:
        t = await bc.tally(s, survey_id)
    assert [[o.count for o in q.options] for q in t] == [[0, 1], [0, 1]]


async def test_machine_gets_message_without_survey(sqlite_db: Database) -> None:
    app, aid, _ = await _setup(sqlite_db, "ja")
    agi = FakeAgi({"RENRAKU_ATTEMPT": str(aid), "AMDSTATUS": "MACHINE"}, [])
    assert await BroadcastCall(agi, app, FakeVoice(), Hangup).run() == S.LEFT_MESSAGE
    assert "tts:ja:明日は遠足です" in agi.played
    assert not any(p.startswith("tts:ja:参加") for p in agi.played)
    assert await _state(app, aid) == (S.LEFT_MESSAGE, S.LEFT_MESSAGE, True, 0)


async def test_hang_up_mid_message(sqlite_db: Database) -> None:
    app, aid, _ = await _setup(sqlite_db)
    agi = FakeAgi({"RENRAKU_ATTEMPT": str(aid), "AMDSTATUS": "HUMAN"}, [],
                  hang_up_at="tts:en:Trip")
    assert await BroadcastCall(agi, app, FakeVoice(), Hangup).run() == S.HUNG_UP
    assert await _state(app, aid) == (S.HUNG_UP, S.HUNG_UP, False, 0)


async def test_answer_kept_when_hanging_up_during_survey(sqlite_db: Database) -> None:
    app, aid, _ = await _setup(sqlite_db)
    agi = FakeAgi({"RENRAKU_ATTEMPT": str(aid), "AMDSTATUS": "HUMAN"},
                  [("tts:en:Coming?", "2")], hang_up_at="tts:ja:お弁当は")
    assert await BroadcastCall(agi, app, FakeVoice(), Hangup).run() == S.COMPLETED
    assert await _state(app, aid) == (S.COMPLETED, S.COMPLETED, True, 1)


class _Outage:
    """A session factory whose database is unreachable while ``down``."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.down = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise OperationalError("connect", {}, ConnectionRefusedError("server stopped"))
        return self.real(*args, **kwargs)


async def test_database_down_at_the_start_fails_the_attempt_for_a_retry(
        sqlite_db: Database) -> None:
    """Nothing can be said without the message: the family is called again once the
    database is back; the writes wait for it (answered, then failed), nothing is lost."""
    app, aid, _ = await _setup(sqlite_db)
    outage = _Outage(app.sessions)
    down = App(app.settings, app.clock, app.engine, outage)  # type: ignore[arg-type]
    agi = FakeAgi({"RENRAKU_ATTEMPT": str(aid), "AMDSTATUS": "HUMAN"}, [])
    assert await BroadcastCall(agi, down, FakeVoice(), Hangup).run() == S.FAILED
    assert agi.played == [] and agi.hung_up
    assert (await _state(app, aid))[0] == S.DIALING  # nothing written yet
    outage.down = False
    await broadcast_flow.kept_writes()
    status, household, heard, answers = await _state(app, aid)
    assert (status, household, heard, answers) == (S.FAILED, S.FAILED, False, 0)
    async with app.sessions() as s:
        attempt = await s.get(CallAttempt, aid)
        h = await s.get(CampaignHousehold, attempt.household_id)
    assert attempt.answered_at is not None and attempt.reason == "database down at the start"
    assert h.next_attempt_at is not None  # retried
