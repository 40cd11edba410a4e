"""The staff board (職員連絡): posting to all staff, a grade team or named colleagues, with
PDF/image attachments, pinning, read status per recipient and optional email notices.

Only the author and the recipients may open a message or its files (checked here, in
:func:`readable_message`); attachments live under ``<data_dir>/staff_attachments``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Classroom,
    Staff,
    StaffAttachment,
    StaffBoardPref,
    StaffClass,
    StaffMessage,
    StaffMessageRecipient,
)
from renraku.app import App
from renraku.i18n import tr
from renraku.rules.staffboard import (
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    attachment_type,
    safe_filename,
)
from renraku.services.mail import MailError, send_mail
from renraku.settings import Settings

log = logging.getLogger(__name__)
AUDIENCES = ("all", "grade", "people")


class BoardError(ValueError):
    """Bad input; ``str(exc)`` is a code the page turns into a message."""


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


def attachments_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "staff_attachments"


async def recipients(session: AsyncSession, school_id: int, audience: str, grade: int | None,
                     people: list[int]) -> list[Staff]:
    """Active staff of the school the message goes to (the author is left out later)."""
    q = select(Staff).where(Staff.school_id == school_id, Staff.active.is_(True))
    if audience == "grade":
        year = await session.scalar(select(func.max(Classroom.academic_year))
                                    .where(Classroom.school_id == school_id))
        team = select(StaffClass.staff_id).join(Classroom, Classroom.id == StaffClass.class_id) \
            .where(Classroom.school_id == school_id, Classroom.academic_year == year,
                   Classroom.grade == grade)
        q = q.where(Staff.id.in_(team))
    elif audience == "people":
        q = q.where(Staff.id.in_(people))
    return list(await session.scalars(q.order_by(Staff.id)))


def _checked(uploads: list[Upload]) -> list[tuple[Upload, str]]:
    if len(uploads) > MAX_ATTACHMENTS:
        raise BoardError("too_many_files")
    out = []
    for upload in uploads:
        if len(upload.data) > MAX_ATTACHMENT_BYTES:
            raise BoardError("file_too_big")
        kind = attachment_type(upload.data[:16])
        if kind is None:
            raise BoardError("file_type")
        out.append((upload, kind))
    return out


async def post(
    session: AsyncSession, settings: Settings, author: Staff, *, audience: str,
    grade: int | None, people: list[int], subject: str, body: str, pinned: bool,
    uploads: list[Upload], now: datetime,
) -> StaffMessage:
    subject, body = subject.strip()[:200], body.strip()
    if not subject or not body:
        raise BoardError("empty")
    if audience not in AUDIENCES or (audience == "grade" and grade is None):
        raise BoardError("audience")
    files = _checked(uploads)
    readers = [s for s in await recipients(session, author.school_id, audience, grade, people)
               if s.id != author.id]
    if not readers:
        raise BoardError("nobody")
    message = StaffMessage(school_id=author.school_id, author_id=author.id, audience=audience,
                           grade=grade if audience == "grade" else None, subject=subject,
                           body=body, pinned=pinned, created_at=now)
    session.add(message)
    await session.flush()
    session.add_all(StaffMessageRecipient(message_id=message.id, staff_id=s.id) for s in readers)
    folder = attachments_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    for upload, kind in files:
        token = secrets.token_urlsafe(24)
        (folder / token).write_bytes(upload.data)
        session.add(StaffAttachment(message_id=message.id, filename=safe_filename(upload.filename),
                                    content_type=kind, size=len(upload.data), token=token))
    await session.flush()
    return message


@dataclass(frozen=True)
class InboxRow:
    message: StaffMessage
    author: str
    mine: bool  # written by the reader
    read_at: datetime | None
    read: int  # recipients who have read it
    total: int


async def inbox(session: AsyncSession, staff_id: int) -> list[InboxRow]:
    """Messages to or from this person: pinned first, newest first."""
    mine = select(StaffMessageRecipient.message_id).where(
        StaffMessageRecipient.staff_id == staff_id)
    rows = await session.execute(
        select(StaffMessage, Staff.name).join(Staff, Staff.id == StaffMessage.author_id)
        .where((StaffMessage.id.in_(mine)) | (StaffMessage.author_id == staff_id))
        .order_by(StaffMessage.pinned.desc(), StaffMessage.created_at.desc(),
                  StaffMessage.id.desc()).limit(200))
    messages = list(rows)
    ids = [m.id for m, _n in messages]
    counts = {mid: (int(read or 0), int(total)) for mid, read, total in await session.execute(
        select(StaffMessageRecipient.message_id, func.count(StaffMessageRecipient.read_at),
               func.count()).where(StaffMessageRecipient.message_id.in_(ids))
        .group_by(StaffMessageRecipient.message_id))}
    own_reads = dict((await session.execute(
        select(StaffMessageRecipient.message_id, StaffMessageRecipient.read_at).where(
            StaffMessageRecipient.staff_id == staff_id,
            StaffMessageRecipient.message_id.in_(ids)))).all())
    return [InboxRow(m, name, m.author_id == staff_id, own_reads.get(m.id),
                     *counts.get(m.id, (0, 0))) for m, name in messages]


async def readable_message(session: AsyncSession, message_id: int,
                           staff_id: int) -> StaffMessage | None:
    """The message if this person wrote or received it; None hides it from anyone else."""
    message = await session.get(StaffMessage, message_id)
    if message is None:
        return None
    if message.author_id == staff_id:
        return message
    got = await session.get(StaffMessageRecipient, (message_id, staff_id))
    return message if got is not None else None


async def mark_read(session: AsyncSession, message_id: int, staff_id: int,
                    now: datetime) -> None:
    row = await session.get(StaffMessageRecipient, (message_id, staff_id))
    if row is not None and row.read_at is None:
        row.read_at = now
        await session.flush()


async def read_status(session: AsyncSession, message_id: int) -> list[tuple[str, datetime | None]]:
    rows = await session.execute(
        select(Staff.name, StaffMessageRecipient.read_at)
        .join(Staff, Staff.id == StaffMessageRecipient.staff_id)
        .where(StaffMessageRecipient.message_id == message_id).order_by(Staff.name))
    return [(name, read_at) for name, read_at in rows]


async def attachments(session: AsyncSession, message_id: int) -> list[StaffAttachment]:
    return list(await session.scalars(select(StaffAttachment).where(
        StaffAttachment.message_id == message_id).order_by(StaffAttachment.id)))


async def wants_email(session: AsyncSession, staff_id: int) -> bool:
    pref = await session.get(StaffBoardPref, staff_id)
    return bool(pref and pref.email_notice)


async def set_wants_email(session: AsyncSession, staff_id: int, value: bool) -> None:
    pref = await session.get(StaffBoardPref, staff_id)
    if pref is None:
        session.add(StaffBoardPref(staff_id=staff_id, email_notice=value))
    else:
        pref.email_notice = value
    await session.flush()


async def email_notices(app: App, message_id: int) -> int:
    """Email the recipients who asked for it (after the message is committed)."""
    async with app.sessions() as s:
        message = await s.get_one(StaffMessage, message_id)
        author = await s.get_one(Staff, message.author_id)
        people = list(await s.scalars(
            select(Staff).join(StaffMessageRecipient, StaffMessageRecipient.staff_id == Staff.id)
            .join(StaffBoardPref, StaffBoardPref.staff_id == Staff.id)
            .where(StaffMessageRecipient.message_id == message_id,
                   StaffBoardPref.email_notice.is_(True))))
    sent = 0
    url = f"{app.settings.base_url}/staff/board/{message_id}"
    for person in people:
        fields = {"subject": message.subject, "author": author.name, "url": url}
        try:
            await send_mail(app.settings, person.email,
                            tr(person.language, "[Staff board] %(subject)s", **fields),
                            tr(person.language, "%(author)s posted a message for you on the "
                                                "staff board. Read it (and any attachments) on "
                                                "the staff pages: %(url)s", **fields),
                            now=app.clock.now())
            sent += 1
        except MailError:
            log.warning("staff board notice to staff %d failed", person.id)
    return sent
