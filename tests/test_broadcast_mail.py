"""Campaign emails through a real local SMTP server (aiosmtpd); link answers reach the tally."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from models import EmailDelivery
from models.db import transaction
from renraku.app import App
from renraku.clock import FakeClock
from renraku.services import broadcast as bc
from renraku.services import broadcast_mail as bm
from renraku.services import mail
from renraku.settings import Settings
from tests.db_fixtures import Database
from tests.factories import make_child, make_guardian, make_school

NOW = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
YESNO = [
    {
        "text": {"ja": "参加しますか"},
        "options": [{"digit": 1, "label": {"ja": "はい"}}, {"digit": 2, "label": {"ja": "いいえ"}}],
    }
]


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = Inbox()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield inbox, port
    finally:
        ctl.stop()


async def test_emails_links_and_tally(sqlite_db: Database, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    settings = Settings(smtp_port=port, public_url="http://school.test", dialer_retry_delay_s=60)
    clock = FakeClock(NOW, frozen=True)
    app = App(settings, clock, sqlite_db.engine, sqlite_db.sessions)
    async with transaction(app.sessions) as s:
        school = await make_school(s)
        kid = await make_child(s, school)
        await make_guardian(s, "母", "090-2222-0001", "en", (kid,), "mum@example.jp")
        await make_guardian(s, "父", None, "ja", (kid,), "dad@example.jp")
        survey = await bc.create_survey(s, school.id, "遠足", YESNO, NOW)
        camp = await bc.create_campaign(
            s, settings, school_id=school.id, title="遠足", target={"school": True}, now=NOW,
            message={"ja": "明日は遠足です", "en": "Trip tomorrow"}, voice=False, email=True,
            survey_id=survey.id,
        )
        await bc.launch(s, settings, camp, NOW)
    # The first try fails (server refuses), the retry goes through the real server
    calls = {"n": 0}

    async def flaky(msg: EmailMessage) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionRefusedError("down")
        await mail.sender(settings)(msg)

    assert await bm.send_due_emails(app, camp, flaky) == 1
    async with app.sessions() as s:
        rows = {d.address: d for d in await s.scalars(select(EmailDelivery))}
    failed = next(d for d in rows.values() if d.status == "queued")
    assert failed.attempts == 1 and "down" in failed.error
    clock.advance(timedelta(seconds=61))
    assert await bm.send_due_emails(app, camp, flaky) == 1
    assert len(inbox.messages) == 2
    by_to = {m["To"]: m for m in inbox.messages}
    mum = by_to["mum@example.jp"].get_content()
    assert "Trip tomorrow" in mum and "明日は遠足です" in mum
    assert by_to["mum@example.jp"]["Subject"].startswith("Message from")
    url = re.search(r"http://school\.test/s/(\S+)", mum)
    assert url is not None
    # Only the primary guardian gets a survey link
    assert "/s/" not in by_to["dad@example.jp"].get_content()
    token = url.group(1)
    async with transaction(app.sessions) as s:
        q = (await bc.survey_questions(s, survey.id))[0]
        link = await bm.answer_by_link(s, token, {q.id: 2}, clock.now())
        assert link.answered == {q.id: 2} and link.child_ids == [kid.id]
        t = await bc.tally(s, survey.id)
        assert [(o.digit, o.count) for o in t[0].options] == [(1, 0), (2, 1)]
        p = await bc.progress(s, camp.id)
        assert p.emails_sent == 2 and p.percent == 100
        with pytest.raises(bm.LinkError) as err:
            await bm.resolve_link(s, token, clock.now() + timedelta(days=15))
        assert err.value.kind == "expired"
        with pytest.raises(bm.LinkError):
            await bm.resolve_link(s, "nope", clock.now())
