"""Read receipts of notices: which families opened them, and a resend to the others.

A family is one child's guardians: the first of them to open the notice on the web marks
it read for that child. The resend goes by email to families with an address and by a
call to households without one (one broadcast campaign).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import Campaign, Child, Classroom, Guardian, Notice, NoticeRead
from renraku.rules import campaign as rules
from renraku.services import broadcast
from renraku.services.register import class_children
from renraku.settings import Settings


async def unread(session: AsyncSession, notice_ids: list[int], child_id: int) -> list[int]:
    """Those of these notices this child's family has not opened yet.

    Asked in a read-only session first, so the page takes a write lock only when it must.
    """
    seen = set(await session.scalars(select(NoticeRead.notice_id).where(
        NoticeRead.child_id == child_id, NoticeRead.notice_id.in_(notice_ids))))
    return [nid for nid in notice_ids if nid not in seen]


async def mark_read(session: AsyncSession, notice_ids: list[int], child_id: int,
                    guardian_id: int, now: datetime) -> None:
    """Record the first opening of each notice by this child's family."""
    for notice_id in await unread(session, notice_ids, child_id):
        try:
            async with session.begin_nested():  # another guardian of the family, same instant
                session.add(NoticeRead(notice_id=notice_id, child_id=child_id,
                                       guardian_id=guardian_id, read_at=now))
        except IntegrityError:
            continue


def reaches(notice: Notice, room: Classroom) -> bool:
    """Whether the notice is shown to the children of this class."""
    return (notice.scope == "school" or (notice.scope == "grade" and room.grade == notice.grade)
            or (notice.scope == "class" and room.id == notice.class_id))


@dataclass
class FamilyRead:
    room: Classroom
    child: Child
    read_at: datetime | None
    reader: str  # the guardian who opened it first


async def family_reads(session: AsyncSession, notice: Notice,
                       rooms: list[Classroom]) -> list[FamilyRead]:
    """Per child of these classes (the caller's scope) that the notice reaches: read or not."""
    rows: list[FamilyRead] = []
    for room in rooms:
        if reaches(notice, room):
            rows += [FamilyRead(room, c, None, "") for c in await class_children(session, room.id)]
    reads = {r.child_id: (r.read_at, name) for r, name in await session.execute(
        select(NoticeRead, Guardian.name).join(Guardian, Guardian.id == NoticeRead.guardian_id)
        .where(NoticeRead.notice_id == notice.id,
               NoticeRead.child_id.in_([row.child.id for row in rows])))}
    for row in rows:
        row.read_at, row.reader = reads.get(row.child.id, (None, ""))
    return rows


async def resend_to_unread(session: AsyncSession, settings: Settings, notice: Notice,
                           child_ids: list[int], now: datetime,
                           staff_id: int | None) -> Campaign | None:
    """Email the unread families that have an address; call the households without one."""
    if not child_ids:
        return None
    message = {"ja": f"{notice.title}\n{notice.body}"}
    for lang, text in (notice.translations or {}).items():
        message[lang] = f"{text.get('title') or notice.title}\n{text.get('body') or notice.body}"
    target = {"children": sorted(child_ids)}
    infos = broadcast.child_infos(
        await broadcast.target_children(session, notice.school_id, target))
    no_email = {phone for info in infos if not any(g.email for g in info.guardians)
                for g in info.guardians if (phone := rules.preferred_phone(g.phones))}
    campaign = await broadcast.create_campaign(
        session, settings, school_id=notice.school_id, title=notice.title, target=target,
        now=now, message=message, voice=bool(no_email), email=True, created_by=staff_id)
    campaign.notice_id = notice.id  # its link followed or message heard: the notice is read
    return await broadcast.launch(session, settings, campaign, now, only_phones=no_email)
