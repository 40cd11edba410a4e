"""The call about a changed event is spoken by real TTS, rendered before the dialer calls:
the family hears the change in their language from the cache, without waiting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from ivr.broadcast_flow import BroadcastCall
from models import Campaign, ChangeReach
from models.db import transaction
from models.enums import AttemptStatus
from prompts import dynamic
from prompts.voice import PromptVoice
from renraku.app import App
from renraku.clock import FakeClock
from renraku.services import events
from tests.factories import make_child, make_class, make_guardian, make_school
from tests.prompts_fixtures import PromptWorld
from tests.test_prompts_campaign import NOW, Agi, Hangup, _dialled_from_cache
from tests.test_prompts_campaign import world as world  # the fixture, for pytest


async def test_moved_event_call_rendered_before_dialling(
    world: tuple[PromptWorld, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    w, engine = world
    app = App(w.settings, FakeClock(NOW, frozen=True), engine, w.sessions)

    async def no_mail(_msg: Any) -> None:
        return None

    async with transaction(w.sessions) as s:
        school = await make_school(s, reading="だいいちしょうがっこう")
        room = await make_class(s, school)
        kid = await make_child(s, school, classroom=room)
        await make_guardian(s, "Maria", "090-3333-0005", "en", (kid,))
        start = NOW + timedelta(days=7)
        event = await events.create_event(s, school.id, events.EventDraft(
            "Sports day", start, start + timedelta(hours=3), class_id=room.id), None, NOW)
        await events.change_event(s, event, events.EventDraft(
            "Sports day", start + timedelta(days=1), start + timedelta(days=1, hours=3),
            class_id=room.id), None, NOW)
        await events.notify_pending(s, no_mail, sender="s@x", base_url="", now=NOW,
                                    settings=w.settings)
    async with w.sessions() as s:
        reach = await s.scalar(select(ChangeReach))
        assert reach is not None
        camp = await s.get_one(Campaign, reach.campaign_id)
    names, attempt = await _dialled_from_cache(w, app, camp, "broadcast.", monkeypatch)
    agi = Agi(attempt.id)
    outcome = await BroadcastCall(agi, app, PromptVoice(w.settings, w.sessions), Hangup).run()
    assert outcome == AttemptStatus.COMPLETED
    said = dynamic.cached(w.settings, "en", camp.message["en"])
    assert said is not None and said.stat().st_size > 8000  # over half a second of speech
    assert dynamic.playable_dyn(said) in agi.played
    assert {p for p in agi.played if p.startswith("renraku/dyn/")} <= set(names)
