"""The compose form's parsing and checks."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from renraku.services.broadcast_form import parse_compose


def _parse(fields: dict[str, str | list[str]]):  # type: ignore[no-untyped-def]
    def get(name: str) -> str:
        v = fields.get(name, "")
        return v[0] if isinstance(v, list) else v

    def get_all(name: str) -> list[str]:
        v = fields.get(name, [])
        return v if isinstance(v, list) else [v]

    return parse_compose(get, get_all, "Asia/Tokyo", ("08:00", "20:00"))


def test_full_form() -> None:
    req = _parse({
        "title": "遠足", "message_ja": "明日は遠足です", "message_en": "Trip", "channel": "both",
        "target": "classes", "classes": ["3", "4"], "q1_text": "参加しますか",
        "q1_opt1": "はい", "q1_opt2": "いいえ", "send": "later",
        "scheduled_at": "2026-12-04T19:55", "window_start": "08:30", "window_end": "19:00",
    })
    assert req.errors == []
    assert req.voice and req.email and req.target == {"classes": [3, 4]}
    assert req.message == {"ja": "明日は遠足です", "en": "Trip"}
    assert req.questions[0]["options"][1] == {"digit": 2, "label": {"ja": "いいえ"}}
    assert req.scheduled_at == datetime(2026, 12, 4, 19, 55, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert (req.window_start, req.window_end) == ("08:30", "19:00")


def test_errors() -> None:
    req = _parse({"channel": "email", "target": "grades", "q1_text": "x", "q1_opt1": "a",
                  "window_start": "21:00", "send": "later", "scheduled_at": "tomorrow"})
    assert len(req.errors) == 7, req.errors
    assert _parse({"title": "t", "recorded_prompt_key": "rec1"}).errors == []
