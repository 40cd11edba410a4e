"""A broadcast rendered before dialling: the real call flow then plays only cached sound."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ivr.broadcast_flow import BroadcastCall
from ivr.dialer import DialerConfig
from ivr.followup_flow import FollowUpCall
from models import Campaign, RollCall
from models.db import transaction
from models.enums import AttemptStatus
from prompts import render, tts
from prompts.campaign import campaign_languages, prerender_campaign
from prompts.catalog import catalog
from prompts.voice import PromptVoice
from renraku.app import App
from renraku.clock import FakeClock
from renraku.commands.dialer import platform_dialer
from renraku.services import broadcast as bc
from renraku.services import followup
from tests.factories import make_child, make_class, make_guardian, make_school
from tests.prompts_fixtures import PromptWorld, open_world
from tests.test_dialer_fake_ami import FakeAmi

NOW = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
DAY = date(2026, 12, 4)  # 10:00 in Tokyo
SURVEY = [
    {"text": {"ja": "遠足に参加しますか。", "en": "Will your child join the trip?"},
     "options": [{"digit": 1, "label": {"ja": "はい", "en": "Yes"}},
                 {"digit": 2, "label": {"ja": "いいえ"}}]},
]


class Hangup(Exception):
    pass


class Agi:
    """Answers as a person who listens and presses 1 for every question."""

    def __init__(self, attempt_id: int) -> None:
        self.variables = {"RENRAKU_ATTEMPT": str(attempt_id), "AMDSTATUS": "HUMAN"}
        self.played: list[str] = []

    async def get_variable(self, name: str) -> str | None:
        return self.variables.get(name)

    async def stream_file(self, name: str, escape_digits: str = "") -> str:
        self.played.append(name)
        return ""

    async def get_data(self, name: str, timeout_ms: int = 0, max_digits: int = 1) -> str:
        self.played.append(name)
        return ""

    async def wait_for_digit(self, timeout_ms: int) -> str:
        return "1"

    async def read_keys(self, sounds: list[tuple[str, str]], channel_lang: str,
                        max_digits: int, timeout_ms: int) -> str:
        self.played += [name for _lang, name in sounds]
        return "1"

    async def hangup(self) -> None:
        pass


async def _dialled_from_cache(w: PromptWorld, app: App, camp: Any, static_prefix: str,
                              monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], Any]:
    """The dialer of `renraku run` / `renraku dialer` renders the campaign before calling;
    with the static prompts built too, TTS is switched off and the first call starts."""
    await platform_dialer(app, FakeAmi(app, {}), DialerConfig()).prepare(camp)  # type: ignore
    static = [e.key for e in catalog().static() if e.key.startswith(static_prefix)]
    report = await render.build(w.settings, w.sessions, languages=["en"], keys=static,
                                templates=False, progress=None)
    assert report.ok, report.failed

    async def no_tts(*_: Any, **__: Any) -> Any:
        raise AssertionError("the call waited for TTS")

    monkeypatch.setattr(tts, "synthesize", no_tts)
    async with transaction(w.sessions) as s:
        names = await prerender_campaign(w.settings, s, camp.id)  # all cached by now
        household = (await bc.due_households(s, camp.id, NOW, 1))[0]
        attempt = await bc.start_attempt(s, household.id, NOW)
        assert attempt is not None
    return names, attempt


@pytest.fixture
async def world(tmp_path: Path, openjtalk_voice: Path) -> AsyncIterator[tuple[PromptWorld, Any]]:
    w, engine = await open_world(tmp_path / "data")
    yield w, engine
    await engine.dispose()  # type: ignore[attr-defined]


async def test_prerendered_campaign_plays_without_waiting_for_tts(
    world: tuple[PromptWorld, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    w, engine = world
    app = App(w.settings, FakeClock(NOW, frozen=True), engine, w.sessions)
    async with transaction(w.sessions) as s:
        school = await make_school(s, reading="だいいちしょうがっこう")
        kid = await make_child(s, school)
        await make_guardian(s, "Maria", "090-3333-0001", "en", (kid,))
        survey = await bc.create_survey(s, school.id, "遠足", SURVEY, NOW)
        camp = await bc.create_campaign(
            s, w.settings, school_id=school.id, title="遠足", target={"school": True}, now=NOW,
            message={"ja": "明日は遠足です。お弁当をご用意ください。",
                     "en": "The school trip is tomorrow. Please pack a lunch."},
            survey_id=survey.id,
        )
        await bc.launch(s, w.settings, camp, NOW)
        assert await campaign_languages(s, camp) == ["en"]
    names, attempt = await _dialled_from_cache(w, app, camp, "broadcast.", monkeypatch)
    assert names and all(n.startswith("renraku/dyn/") for n in names)
    agi = Agi(attempt.id)
    outcome = await BroadcastCall(agi, app, PromptVoice(w.settings, w.sessions), Hangup).run()
    assert outcome == AttemptStatus.COMPLETED
    heard_dynamic = {p for p in agi.played if p.startswith("renraku/dyn/")}
    # Message, question, options and the read-back "you chose": all rendered in advance.
    assert heard_dynamic and heard_dynamic <= set(names)
    assert len(heard_dynamic) >= 5


async def test_languages_without_households_come_from_the_school(
    world: tuple[PromptWorld, Any],
) -> None:
    w, _ = world
    async with transaction(w.sessions) as s:
        school = await make_school(s, languages=["ja", "es"])
        camp = await bc.create_campaign(
            s, w.settings, school_id=school.id, title="t", target={"school": True}, now=NOW,
            message={"ja": "明日は休校です。"},
        )
        assert await campaign_languages(s, camp) == ["ja", "es"]
        names = await prerender_campaign(w.settings, s, camp, languages=["es"])
    # Spanish intro + the Japanese message (the only text there is), as the flow would pick.
    assert len(names) == 2
    assert (w.settings.sounds_dir / "ja" / f"{names[1]}.wav").is_file()


async def test_build_renders_launched_campaigns_but_not_drafts(
    world: tuple[PromptWorld, Any],
) -> None:
    from prompts.campaign import prerender_pending

    w, _ = world
    async with transaction(w.sessions) as s:
        school = await make_school(s, languages=["ja"])
        kid = await make_child(s, school)
        await make_guardian(s, "母", "090-3333-0002", "ja", (kid,))
        launched = await bc.create_campaign(
            s, w.settings, school_id=school.id, title="a", target={"school": True}, now=NOW,
            message={"ja": "本日は午前中で下校します。"},
        )
        await bc.launch(s, w.settings, launched, NOW)
        await bc.create_campaign(
            s, w.settings, school_id=school.id, title="b", target={"school": True}, now=NOW,
            message={"ja": "これは下書きです。"},
        )
    assert await prerender_pending(w.settings, w.sessions) == 2  # intro + message, ja only
    async with w.sessions() as s:
        names = await prerender_campaign(w.settings, s, launched.id)
    assert all((w.settings.sounds_dir / "ja" / f"{n}.wav").is_file() for n in names)
    draft = await dynamic_name(w, "ja", "これは下書きです。")
    assert not (w.settings.sounds_dir / "ja" / f"{draft}.wav").exists()


async def dynamic_name(w: PromptWorld, lang: str, text: str) -> str:
    from prompts import dynamic

    engine = await tts.pick(w.settings, lang)
    return "renraku/dyn/" + dynamic.cache_name(engine.name, engine.voice(lang), lang, text)


async def test_followup_call_is_rendered_before_dialling(
    world: tuple[PromptWorld, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    w, engine = world
    app = App(w.settings, FakeClock(NOW, frozen=True), engine, w.sessions)
    async with transaction(w.sessions) as s:
        school = await make_school(s, reading="だいいちしょうがっこう")
        kid = await make_child(s, school, classroom=await make_class(s, school))
        await make_guardian(s, "Maria", "090-3333-0002", "en", (kid,))
        s.add(RollCall(child_id=kid.id, day=DAY, mark="absent", marked_at=NOW))
    assert (await followup.start(app, school, DAY)).calls == [kid.id]
    async with w.sessions() as s:
        camp = await s.scalar(select(Campaign).where(Campaign.flow == "followup"))
    assert camp is not None
    names, attempt = await _dialled_from_cache(w, app, camp, "followup.", monkeypatch)
    agi = Agi(attempt.id)
    answer = await FollowUpCall(agi, app, PromptVoice(w.settings, w.sessions), Hangup).run()
    assert answer == "absent"  # this family presses 1
    heard_dynamic = {p for p in agi.played if p.startswith("renraku/dyn/")}
    assert heard_dynamic and heard_dynamic <= set(names)
