"""Broadcast read receipts over HTTP with a real SMTP server (aiosmtpd): the email's tracked
link marks the family read and shows the message without login; the teacher sees read /
unread per family and resends to the unread once per click (a double click sends nothing
twice); bad links get a translated page; receipts are never shown to other families.
On SQLite and PostgreSQL: one receipt per family, first channel wins, races are safe."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select, update

from ivr.dialer import Dialer
from models import (
    BroadcastRead,
    Campaign,
    CampaignHousehold,
    Child,
    EmailDelivery,
    Notice,
    NoticeRead,
    Survey,
)
from models.db import transaction
from renraku.services import broadcast as bc
from renraku.services import broadcast_mail as bm
from renraku.services import broadcast_reads as reads
from renraku.services import receipts as notice_receipts
from renraku.services import staff as staff_svc
from renraku.services.broadcast_mail import send_due_emails
from renraku.settings import Settings
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school
from tests.staff_fixtures import StaffPortal
from tests.test_broadcast_console import mailbox  # noqa: F401 (the SMTP server fixture)
from tests.test_broadcast_mail import Inbox
from tests.test_dialer_fake_ami import FakeAmi

FORM = {"title": "運動会の延期", "message_ja": "運動会は来週に延期します。",
        "message_en": "Sports day moves to next week.", "channel": "email",
        "target": "classes", "send": "now", "window_start": "08:00", "window_end": "20:00",
        "action": "send"}
LINK = re.compile(r"http://school\.test(/m/\S+)")


async def _world(db: Database) -> dict[str, int]:
    """1年1組 (the teacher's): 青木 (mum with email, dad without), 馬場 (email), 千葉 (a
    landline, no email). 1年2組: 土井 (email), not the teacher's."""
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        mine = await make_class(s, school, "1年1組")
        theirs = await make_class(s, school, "1年2組")
        a = await make_child(s, school, "青木 一郎", "あおき", mine)
        b = await make_child(s, school, "馬場 二郎", "ばば", mine)
        c = await make_child(s, school, "千葉 三郎", "ちば", mine)
        d = await make_child(s, school, "土井 四郎", "どい", theirs)
        await make_guardian(s, "青木 母", "090-1111-0001", "en", (a,), "aoki@example.jp")
        await make_guardian(s, "青木 父", "090-1111-0002", "ja", (a,))
        await make_guardian(s, "馬場 母", "090-1111-0003", "ja", (b,), "baba@example.jp")
        await make_guardian(s, "千葉 祖母", "03-3000-0004", "ja", (c,))
        await make_guardian(s, "土井 父", "090-1111-0005", "ja", (d,), "doi@example.jp")
        await staff_svc.create_staff(s, school.id, name="森", email="mori@x.jp", role="teacher",
                                     password="teacher-pass-1", class_ids=[mine.id])
        await staff_svc.create_staff(s, school.id, name="林", email="hayashi@x.jp",
                                     role="teacher", password="teacher-pass-2",
                                     class_ids=[theirs.id])
        return {"mine": mine.id, "a": a.id, "b": b.id, "c": c.id, "d": d.id}


async def _receipts(db: Database, cid: int) -> dict[int, str]:
    async with db.sessions() as s:
        return {r.child_id: r.channel for r in await s.scalars(
            select(BroadcastRead).where(BroadcastRead.campaign_id == cid))}


def _link(inbox: Inbox, to: str) -> str:
    found = [m for m in inbox.messages if m["To"] == to]
    assert len(found) == 1, (to, len(found))
    link = LINK.search(found[0].get_content())
    assert link is not None, found[0].get_content()
    return link.group(1)


async def test_email_link_marks_the_family_read_and_the_teacher_resends_to_the_unread(
    staff_portal: StaffPortal, sqlite_db: Database, mailbox: tuple[Inbox, int]  # noqa: F811
) -> None:
    inbox, port = mailbox
    staff_portal.use_smtp_port(port)
    w = await _world(sqlite_db)
    app = staff_portal.app
    teacher = await staff_portal.client_as_staff("mori@x.jp", "teacher-pass-1")
    r = await staff_portal.post(teacher, "/staff/broadcasts", {**FORM, "classes": str(w["mine"])})
    assert r.status == 303, await r.text()
    url = r.headers["Location"]
    cid = int(url.rsplit("/", 1)[1])
    dialer = Dialer(app, FakeAmi(app, {}), mailer=lambda c: send_due_emails(app, c))
    await dialer.tick()
    assert sorted(m["To"] for m in inbox.messages) == ["aoki@example.jp", "baba@example.jp"]
    aoki = inbox.messages[0] if inbox.messages[0]["To"] == "aoki@example.jp" else inbox.messages[1]
    assert aoki["Subject"].startswith("Message from")  # her language, from the catalog

    # Aoki's mum follows her link: the message, no login, and only her own family marked
    anon = await staff_portal.client()
    page = await anon.get(_link(inbox, "aoki@example.jp"))
    html = await page.text()
    assert page.status == 200 and "運動会は来週に延期します。" in html
    assert 'id="message-read"' in html
    for other in ("馬場", "千葉", "土井", "青木 一郎"):  # no names, nobody else's receipt
        assert other not in html
    assert await _receipts(sqlite_db, cid) == {w["a"]: "email"}
    first = await _read_at(sqlite_db, cid, w["a"])
    app.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    await anon.get(_link(inbox, "aoki@example.jp"))  # again: the first read stays
    assert await _read_at(sqlite_db, cid, w["a"]) == first

    # The teacher's page: read / unread per family of the broadcast, and how
    show = await (await teacher.get(url)).text()
    assert re.search(rf'data-child="{w["a"]}" data-channel="email" class="read"', show)
    assert "メールのリンク" in show and "青木 母" in show
    for child in ("b", "c"):
        assert re.search(rf'data-child="{w[child]}" data-channel="" class="unread"', show)
    assert f'data-child="{w["d"]}"' not in show  # not addressed by this broadcast
    key = re.search(r'name="resend_key" value="([^"]+)"', show).group(1)

    # One click, sent twice (a double click): one resend, email to 馬場, a call to 千葉
    clicks = await asyncio.gather(*(staff_portal.post(teacher, f"{url}/resend",
                                                      {"resend_key": key}) for _ in range(2)))
    assert sorted(c.status for c in clicks) == [303, 303]
    async with sqlite_db.sessions() as s:
        resent = list(await s.scalars(select(Campaign).where(Campaign.resend_of == cid)))
        assert len(resent) == 1
        rid = resent[0].id
        mails = [d.address for d in await s.scalars(
            select(EmailDelivery).where(EmailDelivery.campaign_id == rid))]
        calls = [h.phone_e164 for h in await s.scalars(
            select(CampaignHousehold).where(CampaignHousehold.campaign_id == rid))]
    assert mails == ["baba@example.jp"] and calls == ["+81330000004"]
    assert {c.headers["Location"] for c in clicks} == {f"/staff/broadcasts/{rid}"}
    # The same key once more (a reload of the old page): nothing new
    r = await staff_portal.post(teacher, f"{url}/resend", {"resend_key": key})
    assert r.status == 303 and r.headers["Location"] == f"/staff/broadcasts/{rid}"
    await dialer.tick()
    assert [m["To"] for m in inbox.messages[2:]] == ["baba@example.jp"]  # once, the unread
    # 馬場 follows the resend's link: the original broadcast counts it
    anon2 = await staff_portal.client()
    resend_link = LINK.search(inbox.messages[2].get_content()).group(1)
    assert (await anon2.get(resend_link)).status == 200
    assert await _receipts(sqlite_db, cid) == {w["a"]: "email", w["b"]: "email"}
    assert await _receipts(sqlite_db, rid) == {}
    # ...and sees nothing of the other family's receipt, on that page or the portal
    html = await (await anon2.get(resend_link)).text()
    assert "青木" not in html and "メールのリンク" not in html
    baba = await staff_portal.client_as_guardian("baba@example.jp")
    assert (await baba.get(url)).status == 403
    assert (await baba.get(f"{url}/progress.json")).status == 403

    # Another teacher (not hers, not her class) can neither see nor resend it
    other = await staff_portal.client_as_staff("hayashi@x.jp", "teacher-pass-2")
    assert (await other.get(url)).status == 404
    show = await (await teacher.get(url)).text()
    key = re.search(r'name="resend_key" value="([^"]+)"', show).group(1)
    assert (await staff_portal.post(other, f"{url}/resend", {"resend_key": key})).status == 404
    # Without the CSRF token: refused, nothing sent
    r = await teacher.post(f"{url}/resend", data={"resend_key": key}, allow_redirects=False)
    assert r.status == 403
    async with sqlite_db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Campaign).where(
            Campaign.resend_of == cid)) == 1


async def _read_at(db: Database, cid: int, child_id: int) -> datetime:
    async with db.sessions() as s:
        row = await s.scalar(select(BroadcastRead).where(
            BroadcastRead.campaign_id == cid, BroadcastRead.child_id == child_id))
        assert row is not None
        return row.read_at


async def test_unknown_and_expired_links_get_a_translated_page(
    staff_portal: StaffPortal, sqlite_db: Database, mailbox: tuple[Inbox, int]  # noqa: F811
) -> None:
    inbox, port = mailbox
    staff_portal.use_smtp_port(port)
    w = await _world(sqlite_db)
    app = staff_portal.app
    teacher = await staff_portal.client_as_staff("mori@x.jp", "teacher-pass-1")
    r = await staff_portal.post(teacher, "/staff/broadcasts", {**FORM, "classes": str(w["mine"])})
    cid = int(r.headers["Location"].rsplit("/", 1)[1])
    await Dialer(app, FakeAmi(app, {}), mailer=lambda c: send_due_emails(app, c)).tick()
    anon = await staff_portal.client()
    r = await anon.get("/m/no-such-token")
    assert r.status == 404 and "このリンクは無効です。" in await r.text()
    await anon.get("/lang/es?next=/")
    r = await anon.get("/m/no-such-token")
    assert r.status == 404 and "Este enlace no es válido." in await r.text()
    async with transaction(sqlite_db.sessions) as s:
        await s.execute(update(EmailDelivery).values(
            token_expires_at=app.clock.now() - timedelta(seconds=1)))
    r = await anon.get(_link(inbox, "baba@example.jp"))
    assert r.status == 410 and "Este enlace ha caducado." in await r.text()
    assert await _receipts(sqlite_db, cid) == {}  # neither link marked anything


NOW = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)


async def test_one_receipt_per_family_first_channel_wins_and_races_are_safe(
    db: Database
) -> None:
    settings = Settings(public_url="http://school.test")
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        room = await make_class(s, school, "2年1組")
        kids = [await make_child(s, school, f"児童{i}", f"じどう{i}", room) for i in range(3)]
        for i, kid in enumerate(kids):
            await make_guardian(s, f"保護者{i}", f"090-2222-000{i}", "ja", (kid,),
                                f"g{i}@example.jp")
        camp = await bc.create_campaign(
            s, settings, school_id=school.id, title="t", target={"classes": [room.id]},
            now=NOW, message={"ja": "本文"}, voice=True, email=True)
        await bc.launch(s, settings, camp, NOW)
        cid, ids = camp.id, [k.id for k in kids]

    async def mark(channel: str, at: datetime) -> list[int]:
        async with transaction(db.sessions) as s:
            return await reads.mark_read(s, cid, [ids[0]], channel, None, at)

    got = await asyncio.gather(*(mark(ch, NOW) for ch in ("email", "call", "email", "call")))
    assert sum(len(g) for g in got) == 1  # exactly one of the racers wrote it
    assert await mark("web", NOW + timedelta(hours=1)) == []
    async with db.sessions() as s:
        rows = list(await s.scalars(select(BroadcastRead)))
        campaign = await s.get_one(Campaign, cid)
        table = await reads.family_reads(s, campaign)
    assert len(rows) == 1 and rows[0].read_at == NOW
    assert [(r.child.id, bool(r.read_at)) for r in table] == [(i, i == ids[0]) for i in ids]

    # Two requests with the same resend key at once: one resend
    async def resend(key: str) -> int | None:
        try:
            async with transaction(db.sessions) as s:
                campaign = await s.get_one(Campaign, cid)
                made = await reads.resend_to_unread(s, settings, campaign, key, NOW, None)
                return made.id if made else None
        except reads.AlreadyResent as done:
            return done.campaign_id

    async with db.sessions() as s:
        key = await reads.resend_key(s, await s.get_one(Campaign, cid))
    made = await asyncio.gather(*(resend(key) for _ in range(3)))
    async with db.sessions() as s:
        resent = list(await s.scalars(select(Campaign).where(Campaign.resend_of == cid)))
        mails = sorted(d.address for d in await s.scalars(select(EmailDelivery).where(
            EmailDelivery.campaign_id == resent[0].id)))
    assert len(resent) == 1 and set(made) == {resent[0].id}
    assert mails == ["g1@example.jp", "g2@example.jp"]  # the unread, once each
    with pytest.raises(reads.AlreadyResent):  # a stale key after that resend
        await resend_raw(db, settings, cid, key)


async def resend_raw(db: Database, settings: Settings, cid: int, key: str) -> None:
    async with transaction(db.sessions) as s:
        await reads.resend_to_unread(s, settings, await s.get_one(Campaign, cid), key, NOW,
                                     None)


async def test_the_survey_link_counts_as_reading(
    staff_portal: StaffPortal, sqlite_db: Database, mailbox: tuple[Inbox, int]  # noqa: F811
) -> None:
    inbox, port = mailbox
    staff_portal.use_smtp_port(port)
    w = await _world(sqlite_db)
    app = staff_portal.app
    teacher = await staff_portal.client_as_staff("mori@x.jp", "teacher-pass-1")
    r = await staff_portal.post(teacher, "/staff/broadcasts", {
        **FORM, "classes": str(w["mine"]), "q1_text": "参加しますか", "q1_opt1": "はい",
        "q1_opt2": "いいえ"})
    assert r.status == 303, await r.text()
    cid = int(r.headers["Location"].rsplit("/", 1)[1])
    await Dialer(app, FakeAmi(app, {}), mailer=lambda c: send_due_emails(app, c)).tick()
    mail = next(m for m in inbox.messages if m["To"] == "baba@example.jp")
    survey = re.search(r"http://school\.test(/s/\S+)", mail.get_content())
    assert survey is not None and "/m/" not in mail.get_content()
    anon = await staff_portal.client()
    page = await anon.get(survey.group(1))
    assert page.status == 200 and "運動会は来週に延期します。" in await page.text()
    assert await _receipts(sqlite_db, cid) == {w["b"]: "email"}
    # A survey link whose page cannot show the message (the survey closed) marks nothing
    async with transaction(sqlite_db.sessions) as s:
        camp = await s.get_one(Campaign, cid)
        await s.execute(update(Survey).where(Survey.id == camp.survey_id).values(
            closes_at=app.clock.now() - timedelta(minutes=1)))
    aoki = next(m for m in inbox.messages if m["To"] == "aoki@example.jp")
    closed = re.search(r"http://school\.test(/s/\S+)", aoki.get_content())
    assert closed is not None
    page = await anon.get(closed.group(1))
    assert page.status == 410 and "運動会は来週に延期します。" not in await page.text()
    assert await _receipts(sqlite_db, cid) == {w["b"]: "email"}


async def test_a_recorded_broadcast_is_resent_by_call_to_every_unread_family(
    db: Database
) -> None:
    settings = Settings(public_url="http://school.test")
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        room = await make_class(s, school, "3年1組")
        kids = [await make_child(s, school, f"児童{i}", f"じどう{i}", room) for i in range(2)]
        for i, kid in enumerate(kids):
            await make_guardian(s, f"保護者{i}", f"090-3333-000{i}", "ja", (kid,),
                                f"r{i}@example.jp")
        camp = await bc.create_campaign(
            s, settings, school_id=school.id, title="録音", target={"classes": [room.id]},
            now=NOW, recorded_prompt_key="broadcast.upload-x", voice=True, email=False)
        await bc.launch(s, settings, camp, NOW)
        await reads.mark_read(s, camp.id, [kids[0].id], "call", None, NOW)
        key = await reads.resend_key(s, camp)
        resend = await reads.resend_to_unread(s, settings, camp, key, NOW, None)
        assert resend is not None and not resend.email and resend.voice
        calls = [h.phone_e164 for h in await s.scalars(select(CampaignHousehold).where(
            CampaignHousehold.campaign_id == resend.id))]
        assert calls == ["+819033330001"]  # no text to email: a call, the unread only
        assert resend.recorded_prompt_key == "broadcast.upload-x"
        # Everyone read: nothing to resend
        await reads.mark_read(s, camp.id, [kids[1].id], "email", None, NOW)
        assert await reads.resend_to_unread(s, settings, camp,
                                            await reads.resend_key(s, camp), NOW, None) is None


async def test_a_call_heard_marks_every_child_reached_on_the_number(db: Database) -> None:
    """Dad is the primary guardian of 一郎 only: his survey household answers for 一郎, yet
    his call reached 次郎's family too (he is 次郎's second guardian)."""
    settings = Settings(public_url="http://school.test")
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        room = await make_class(s, school, "4年1組")
        ichiro = await make_child(s, school, "一郎", "いちろう", room)
        jiro = await make_child(s, school, "次郎", "じろう", room)
        await make_guardian(s, "母", "090-4444-0001", "ja", (jiro,))
        await make_guardian(s, "父", "090-4444-0002", "ja", (ichiro, jiro))
        for i in range(20):  # the rest of the class, each family on its own number
            other = await make_child(s, school, f"児童{i}", f"じどう{i}", room)
            await make_guardian(s, f"保護者{i}", f"090-4445-{i:04d}", "ja", (other,))
        survey = await bc.create_survey(s, school.id, "q", [
            {"text": {"ja": "参加しますか"}, "options": [
                {"digit": 1, "label": {"ja": "はい"}}, {"digit": 2, "label": {"ja": "いいえ"}}]}],
            NOW)
        camp = await bc.create_campaign(
            s, settings, school_id=school.id, title="t", target={"classes": [room.id]},
            now=NOW, message={"ja": "本文"}, survey_id=survey.id)
        await bc.launch(s, settings, camp, NOW)
        dad = await s.scalar(select(CampaignHousehold).where(
            CampaignHousehold.phone_e164 == "+819044440002"))
        assert dad is not None and dad.survey and dad.child_ids == [ichiro.id]
        attempt = await bc.start_attempt(s, dad.id, NOW)
        assert attempt is not None
    loaded: list[int] = []

    def seen(child: Child, _context: object) -> None:
        loaded.append(child.id)

    event.listen(Child, "load", seen)
    try:
        async with transaction(db.sessions) as s:
            assert sorted(await reads.mark_heard(s, attempt.id, NOW)) == sorted(
                [ichiro.id, jiro.id])
            assert await reads.mark_heard(s, attempt.id, NOW) == []  # once
    finally:
        event.remove(Child, "load", seen)
    # Only the number's families were read, not the class: a call's cost stays flat
    assert set(loaded) == {ichiro.id, jiro.id}


async def test_a_notice_resent_by_email_is_read_when_its_link_is_followed(db: Database) -> None:
    settings = Settings(public_url="http://school.test")
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        room = await make_class(s, school, "5年1組")
        kid = await make_child(s, school, "五郎", "ごろう", room)
        other = await make_child(s, school, "六郎", "ろくろう", room)
        mum = await make_guardian(s, "母", "090-5555-0001", "ja", (kid,), "goro@example.jp")
        await make_guardian(s, "父", "090-5555-0002", "ja", (other,), "roku@example.jp")
        notice = Notice(school_id=school.id, scope="school", title="学級通信", body="本文",
                        publish_at=NOW, created_at=NOW)
        s.add(notice)
        await s.flush()
        camp = await notice_receipts.resend_to_unread(s, settings, notice, [kid.id, other.id],
                                                      NOW, None)
        assert camp is not None and camp.notice_id == notice.id
        token = await s.scalar(select(EmailDelivery.token).where(
            EmailDelivery.campaign_id == camp.id, EmailDelivery.guardian_id == mum.id))
        await bm.read_by_link(s, token, NOW)
        rows = list(await s.scalars(select(NoticeRead)))
        assert [(r.notice_id, r.child_id, r.guardian_id) for r in rows] == [
            (notice.id, kid.id, mum.id)]  # her family only
        assert await notice_receipts.unread(s, [notice.id], other.id) == [notice.id]
