"""Every email the services send is built by renraku.services.mail.build: From, To and
Subject as the service says, a Date from the caller's clock and a Message-ID in the
sender's domain (spam filters mark mail without them). Sent through a real SMTP server
(aiosmtpd), the body arrives as the service built it; test_service_email_texts pins those
texts word for word."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import select

from models import Campaign, EmailDelivery, EventChange, Notice
from models.db import transaction
from renraku.app import App
from renraku.clock import FakeClock
from renraku.rules.phone import normalise
from renraku.services import broadcast as bc
from renraku.services import broadcast_mail, events, family_reach, mail, notices, proxy
from renraku.settings import Settings
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school
from tests.web_fixtures import Mailbox

NOW = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)
FROM = "Sakura School <school@sakura.test>"
MUM = "mum.headers@example.org"  # the SMTP server is the session's: only this test's mail


def assert_headers(msg: EmailMessage, subject: str) -> None:
    assert (str(msg["From"]), str(msg["To"]), str(msg["Subject"])) == (FROM, MUM, subject)
    assert msg["Date"].datetime == NOW
    assert re.fullmatch(r"<[^<>@\s]+@sakura\.test>", str(msg["Message-ID"]))


def test_build_sets_every_header() -> None:
    first = mail.build(FROM, MUM, "件名", "本文", "<p>本文</p>", now=NOW)
    second = mail.build(FROM, MUM, "件名", "本文", now=NOW)
    for msg in (first, second):
        assert_headers(msg, "件名")
    assert first["Message-ID"] != second["Message-ID"]
    assert first["Date"] == "Fri, 04 Dec 2026 00:30:00 +0000"
    html = first.get_body(("html",))
    assert html is not None and html.get_content() == "<p>本文</p>\n"
    plain = first.get_body(("plain",))
    assert plain is not None and plain.get_content() == "本文\n"


async def test_every_service_email_arrives_with_its_headers(
    sqlite_db: Database, smtp_server: Mailbox
) -> None:
    settings = Settings(smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_from=FROM,
                        public_url="http://sakura.test")
    app = App(settings, FakeClock(NOW, frozen=True), sqlite_db.engine, sqlite_db.sessions)
    send = mail.sender(settings)
    before = len(smtp_server.to(MUM))
    async with transaction(app.sessions) as s:
        school = await make_school(s, "Sakura School", timezone="Asia/Tokyo")
        room = await make_class(s, school)
        kid = await make_child(s, school, classroom=room)
        mum = await make_guardian(s, "Tanaka", "090-2000-0001", "en", (kid,), MUM)
        start = NOW + timedelta(days=7)
        event = await events.create_event(s, school.id, events.EventDraft(
            "Sports day", start, start + timedelta(hours=3), place="Gym"), None, NOW)
        await events.change_event(s, event, events.EventDraft(
            "Sports day", start, start + timedelta(hours=3), place="Field"), None, NOW)
        await notices.create_notice(s, school.id, notices.NoticeDraft(
            "school", "Closure", "Closed tomorrow", important=True), None, NOW)
        campaign = await bc.create_campaign(
            s, settings, school_id=school.id, title="Trip", target={"school": True},
            now=NOW, message={"ja": "明日は遠足です", "en": "Trip tomorrow"}, voice=False,
            email=True)
        await bc.launch(s, settings, campaign, NOW)
    async with transaction(app.sessions) as s:
        assert await events.notify_pending(s, send, sender=FROM, base_url=settings.base_url,
                                           now=NOW) == 1
        assert await family_reach.notify_important(s, settings, send, sender=FROM,
                                                   base_url=settings.base_url, now=NOW) == 1
    assert await broadcast_mail.send_due_emails(app, campaign) == 1  # the default sender
    registered = proxy.completion_email(mum, "Ken", school.name, normalise("090-2000-0001"),
                                        FROM, NOW)
    assert registered is not None
    await send(registered)
    await mail.send_mail(settings, MUM, "Reset", "Your link", now=NOW)

    # What each service built, to compare with what the server received
    async with app.sessions() as s:
        change = await s.scalar(select(EventChange).where(EventChange.action == "changed"))
        notice = await s.scalar(select(Notice))
        delivery = await s.scalar(select(EmailDelivery))
        fresh = await s.get_one(Campaign, campaign.id)
        assert change is not None and notice is not None and delivery is not None
        built = [
            events.change_email(change, mum, school, FROM, "http://sakura.test/calendar", NOW),
            family_reach.notice_email(notice, mum, school, FROM, "http://sakura.test/notices",
                                      NOW),
            broadcast_mail.compose(settings, fresh, school, mum, delivery, False, NOW),
            registered,
            mail.build(FROM, MUM, "Reset", "Your link", now=NOW),
        ]
    arrived = smtp_server.to(MUM)[before:]  # each send returned once the server had it
    assert [str(m["Subject"]) for m in arrived] == [str(m["Subject"]) for m in built]
    for got, want in zip(arrived, built, strict=True):
        assert_headers(got, str(want["Subject"]))
        assert Mailbox.text(got).replace("\r\n", "\n") == want.get_content()  # SMTP's CRLF
    assert len({str(m["Message-ID"]) for m in arrived}) == len(built)
