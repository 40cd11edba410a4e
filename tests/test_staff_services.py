"""Staff portal services on SQLite and PostgreSQL: register, events, proxy registration, QR."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from models import Event, EventChange, Guardian, GuardianPhone, Term
from models.db import transaction
from models.enums import EventStatus, ReportKind, ReportReason
from renraku.services import absences, events, notices, proxy, register, registration
from renraku.services import staff as staff_svc
from renraku.services.guardians import GuardianLimitReached, guardians_by_phone
from renraku.settings import Settings
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school

NOW = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)  # Friday 09:30 in Tokyo
DAY = date(2026, 12, 4)


async def test_register_today_month_and_csv(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        s.add(Term(school_id=school.id, name="2学期", start_date=date(2026, 9, 1),
                   end_date=date(2026, 12, 24)))
        room = await make_class(s, school)
        other = await make_class(s, school, "1年2組")
        kid = await make_child(s, school, "青木 一郎", "あおき いちろう", room)
        kid2 = await make_child(s, school, "馬場 二郎", "ばば じろう", room)
        stranger = await make_child(s, school, "千葉 三郎", "ちば さぶろう", other)
        mum = await make_guardian(s, "青木 母", "090-1111-0001", children=(kid,))
        teacher = await staff_svc.create_staff(
            s, school.id, name="森", email="Mori@x.jp", role="teacher",
            password="long-enough-pw", class_ids=[room.id],
        )
        room_id, kid_id, kid2_id = room.id, kid.id, kid2.id
        for child, kind, reason, day in [
            (kid, ReportKind.ABSENCE, ReportReason.ILLNESS, DAY),
            (kid2, ReportKind.LATE, ReportReason.OTHER, DAY),
            (kid2, ReportKind.ABSENCE, ReportReason.SUSPENSION, date(2026, 12, 3)),
            (stranger, ReportKind.ABSENCE, ReportReason.ILLNESS, DAY),
        ]:
            await absences.submit(
                s, absences.ReportDraft(child.id, day, kind, reason,
                                        time(10, 0) if kind == ReportKind.LATE else None),
                channel="phone", guardian_id=mum.id if child is kid else None, now=NOW,
            )
    async with transaction(db.sessions) as s:
        scope = await staff_svc.staff_scope(s, teacher)
        assert scope.class_ids == {room_id} and teacher.email == "mori@x.jp"
        today = await register.day_reports(s, room_id, DAY)
        assert [(e.child_id, e.kind) for e in today] == [(kid_id, "absence"), (kid2_id, "late")]
        assert today[0].guardian_name == "青木 母" and today[1].at_time == time(10, 0)
        stamp = await register.change_stamp(s, room_id, DAY)
        assert await register.mark_seen(s, today[0].report_id, room.id + 999, teacher, NOW) is None
        seen = await register.mark_seen(s, today[0].report_id, room_id, teacher, NOW)
        assert seen is not None and seen.seen_by == teacher.id
    async with transaction(db.sessions) as s:
        assert await register.change_stamp(s, room_id, DAY) != stamp
        room = await s.get_one(type(room), room_id)
        grid = await register.month_register(s, room, 2026, 12, until=DAY)
    assert [r.child.name for r in grid.rows] == ["青木 一郎", "馬場 二郎"]
    assert grid.rows[0].cells[3] == "欠" and grid.rows[1].cells[2:4] == ["停", "遅"]
    assert grid.rows[1].totals.required == 3 and grid.rows[1].totals.late == 1
    data = register.register_csv(grid, "1年1組")
    assert data.startswith(b"\xef\xbb\xbf")
    assert not register.register_csv(grid, "1年1組", bom=False).startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["1年1組 2026年12月 出席簿"]
    assert rows[1][0] == "氏名" and rows[1][1] == "1" and rows[1][5] == "(5)"
    assert rows[2][0] == "青木 一郎" and rows[2][4] == "欠" and rows[2][-4] == "1"
    assert rows[4][0] == "欠席計" and rows[4][3] == "1" and rows[4][4] == "1"


async def test_event_change_notifies_affected_guardians(db: Database) -> None:
    sent: list[EmailMessage] = []

    async def send(msg: EmailMessage) -> None:
        sent.append(msg)

    async with transaction(db.sessions) as s:
        school = await make_school(s)
        room = await make_class(s, school)
        other = await make_class(s, school, "1年2組")
        kid = await make_child(s, school, classroom=room)
        kid2 = await make_child(s, school, "外 一", "そと はじめ", other)
        await make_guardian(s, "Emily", "090-1000-0005", "en", (kid,), "emily@example.com")
        await make_guardian(s, "祖母", "03-3000-0001", "ja", (kid,))  # no email
        await make_guardian(s, "別組", "090-1000-0009", "ja", (kid2,), "other@example.jp")
        start = datetime(2026, 12, 11, 5, 0, tzinfo=UTC)
        draft = events.EventDraft("遠足", start, start + timedelta(hours=3), place="動物園",
                                  class_id=room.id)
        event = await events.create_event(s, school.id, draft, None, NOW)
        assert event.status == EventStatus.SCHEDULED
        same = await events.change_event(s, event, draft, None, NOW)
        assert same is None  # nothing changed, nobody bothered
        moved = events.EventDraft("遠足", start + timedelta(days=7),
                                  start + timedelta(days=7, hours=3), place="動物園",
                                  class_id=room.id)
        change = await events.change_event(s, event, moved, None, NOW)
        assert change is not None and event.status == EventStatus.CHANGED
        n = await events.notify_pending(s, send, sender="school@x.jp", base_url="http://s",
                                        now=NOW)
    assert n == 1 and [m["To"] for m in sent] == ["emily@example.com"]
    body = sent[0].get_content()
    assert "Event changed" in sent[0]["Subject"] and "December 18, 2026" in body
    assert "Before: Friday, December 11, 2026" in body
    async with transaction(db.sessions) as s:
        assert await events.notify_pending(s, send, sender="x@x", base_url="", now=NOW) == 0
        event = await s.get_one(Event, event.id)
        await events.cancel_event(s, event, None, NOW)
        assert event.status == EventStatus.CANCELLED
        with pytest.raises(ValueError):
            await events.change_event(s, event, moved, None, NOW)

        async def broken(msg: EmailMessage) -> None:
            raise OSError("SMTP down")

        assert await events.notify_pending(s, broken, sender="x@x", base_url="", now=NOW) == 0
        assert await events.notify_pending(s, send, sender="x@x", base_url="", now=NOW) == 1
        actions = list(await s.scalars(select(EventChange.action).order_by(EventChange.id)))
    assert actions == ["created", "changed", "cancelled"]
    assert "cancelled" in sent[-1]["Subject"]


async def test_proxy_registration_landline(db: Database) -> None:
    sent: list[EmailMessage] = []
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        room = await make_class(s, school)
        kid = await make_child(s, school, classroom=room)
        sib = await make_child(s, school, "佐藤 次郎", "さとう じろう", room)
        form = proxy.ProxyForm(kid.id, "佐藤 ハル", "さとう はる", "祖母", "03-3000-0001")
        result = await proxy.proxy_register(s, form)
        assert not result.reused and result.number.kind == "landline"
        again = await proxy.proxy_register(s, proxy.ProxyForm(
            sib.id, "佐藤 ハル", "さとう はる", "祖母", "03 3000 0001"))
        assert again.reused and again.guardian.id == result.guardian.id
        found = await guardians_by_phone(s, "+81330000001")
        assert [g.id for g in found] == [result.guardian.id]
        assert found[0].proxy_registered
        with pytest.raises(proxy.ProxyError) as err:
            await proxy.proxy_register(s, proxy.ProxyForm(kid.id, "X", "", "", "12"))
        assert err.value.field == "phone"
        mailable = await proxy.proxy_register(s, proxy.ProxyForm(
            kid.id, "Wang Fang", "", "母", "090-1000-0003", "zh", "Wang@Example.cn"))
        msg = proxy.completion_email(mailable.guardian, "小明", "第一小学校", mailable.number,
                                     "s@x", NOW)
        assert msg is not None and msg["To"] == "wang@example.cn" and "090-1000-0003" in str(
            msg.get_content())
        sent.append(msg)
        assert proxy.completion_email(result.guardian, "", "", result.number, "s@x",
                                      NOW) is None
        await proxy.proxy_register(s, proxy.ProxyForm(kid.id, "三人目", "", "", "090-1000-0008"))
        with pytest.raises(GuardianLimitReached):
            await proxy.proxy_register(s, proxy.ProxyForm(kid.id, "四", "", "", "090-1000-0007"))
    async with db.sessions() as s:
        phone = await s.scalar(
            select(GuardianPhone).join(Guardian).where(Guardian.name == "佐藤 ハル"))
        assert phone is not None and phone.verified and phone.e164 == "+81330000001"


async def test_registration_tokens_and_notices(db: Database) -> None:
    settings = Settings(public_url="http://school.test/")
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        room = await make_class(s, school)
        kid = await make_child(s, school, classroom=room)
        first = await registration.issue(s, kid.id, room.id, NOW)
        assert (await registration.issue(s, kid.id, room.id, NOW)).id == first.id
        assert registration.registration_url(settings, first.token) == (
            f"http://school.test/r/{first.token}")
        assert await registration.lookup(s, first.token) is not None
        new = await registration.reissue(s, kid.id, room.id, NOW)
        assert new.token != first.token
        assert await registration.lookup(s, first.token) is None
        assert await registration.revoke(s, kid.id, room.id, NOW) == 1
        assert await registration.active_token(s, kid.id, room.id) is None
        assert "<svg" in registration.qr_svg("http://school.test/r/x")

        later = NOW + timedelta(days=1)
        n1 = await notices.create_notice(
            s, school.id, notices.NoticeDraft("class", "持ち物", "体操服", class_id=room.id),
            None, NOW)
        assert n1.publish_at == NOW
        n2 = await notices.create_notice(
            s, school.id, notices.NoticeDraft("grade", "学年", "本文", grade=1, publish_at=later),
            None, NOW)
        with pytest.raises(ValueError):
            await notices.create_notice(
                s, school.id, notices.NoticeDraft("class", "x", "y", class_id=None), None, NOW)
        assert [n.id for n in await notices.staff_notices(s, school.id, [room.id])] == [
            n2.id, n1.id]
        assert not await notices.withdraw_notice(s, n1, NOW)
        assert await notices.withdraw_notice(s, n2, NOW)


async def test_two_workers_retrying_at_once_send_each_change_once(db: Database) -> None:
    sent: list[str] = []

    async def slow_send(msg: EmailMessage) -> None:
        await asyncio.sleep(0.05)  # SMTP takes a while: the other worker's retry comes in
        sent.append(msg["To"])

    async with transaction(db.sessions) as s:
        school = await make_school(s)
        room = await make_class(s, school)
        kid = await make_child(s, school, classroom=room)
        await make_guardian(s, "Emily", "090-1000-0005", "en", (kid,), "emily@example.com")
        start = datetime(2026, 12, 11, 5, 0, tzinfo=UTC)
        for title in ("遠足", "参観日"):
            draft = events.EventDraft(title, start, start + timedelta(hours=1), class_id=room.id)
            event = await events.create_event(s, school.id, draft, None, NOW)
            await events.cancel_event(s, event, None, NOW)

    async def worker() -> int:
        async with transaction(db.sessions) as s:
            return await events.notify_pending(s, slow_send, sender="x@x", base_url="", now=NOW)

    counts = await asyncio.gather(worker(), worker())
    assert sorted(counts) == [0, 2] or sorted(counts) == [1, 1]
    assert sent == ["emily@example.com"] * 2
