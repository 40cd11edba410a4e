"""Staff-only records: calendar entries for the staff (meetings, duty rotas) and notes
between staff about a child (引継ぎ) whose every version is kept.

Neither table is read by any guardian page, feed or export: that is the guarantee.
Callers check who may see a child's notes (renraku.rules.permissions.can_view_child_notes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import ChildNote, ChildNoteVersion, Staff, StaffEvent

MAX_NOTE = 4000


class StaffNoteError(ValueError):
    """Bad input; ``str(exc)`` is a code the page turns into a message."""


async def add_entry(session: AsyncSession, school_id: int, staff_id: int, *, title: str,
                    starts_at: datetime, ends_at: datetime, place: str, note: str,
                    now: datetime) -> StaffEvent:
    title = title.strip()[:200]
    if not title:
        raise StaffNoteError("title")
    if ends_at < starts_at:
        raise StaffNoteError("order")
    entry = StaffEvent(school_id=school_id, title=title, starts_at=starts_at, ends_at=ends_at,
                       place=place.strip()[:200], note=note.strip(), created_by=staff_id,
                       created_at=now)
    session.add(entry)
    await session.flush()
    return entry


async def entries(session: AsyncSession, school_id: int, since: datetime) -> list[StaffEvent]:
    return list(await session.scalars(
        select(StaffEvent).where(StaffEvent.school_id == school_id, StaffEvent.ends_at >= since)
        .order_by(StaffEvent.starts_at, StaffEvent.id)))


async def delete_entry(session: AsyncSession, entry_id: int, school_id: int) -> StaffEvent | None:
    entry = await session.get(StaffEvent, entry_id)
    if entry is None or entry.school_id != school_id:
        return None
    await session.delete(entry)
    await session.flush()
    return entry


@dataclass(frozen=True)
class NoteVersion:
    body: str
    author: str
    at: datetime


@dataclass(frozen=True)
class NoteView:
    note: ChildNote
    author: str
    versions: list[NoteVersion]  # oldest first; the last is the current text

    @property
    def edited(self) -> bool:
        return len(self.versions) > 1


def _body(text: str) -> str:
    body = text.strip()
    if not body:
        raise StaffNoteError("empty")
    if len(body) > MAX_NOTE:
        raise StaffNoteError("long")
    return body


async def add_note(session: AsyncSession, child_id: int, staff_id: int, text: str,
                   now: datetime) -> ChildNote:
    note = ChildNote(child_id=child_id, author_id=staff_id, body=_body(text), created_at=now,
                     updated_at=now)
    session.add(note)
    await session.flush()
    session.add(ChildNoteVersion(note_id=note.id, body=note.body, staff_id=staff_id, at=now))
    await session.flush()
    return note


async def edit_note(session: AsyncSession, note: ChildNote, staff_id: int, text: str,
                    now: datetime) -> ChildNote:
    """A new version; the earlier ones stay, with who wrote them and when."""
    body = _body(text)
    if body != note.body:
        note.body, note.updated_at = body, now
        session.add(ChildNoteVersion(note_id=note.id, body=body, staff_id=staff_id, at=now))
        await session.flush()
    return note


async def notes(session: AsyncSession, child_id: int) -> list[NoteView]:
    rows = list(await session.execute(
        select(ChildNote, Staff.name).join(Staff, Staff.id == ChildNote.author_id)
        .where(ChildNote.child_id == child_id).order_by(ChildNote.created_at.desc(),
                                                        ChildNote.id.desc())))
    versions: dict[int, list[NoteVersion]] = {}
    for v, name in await session.execute(
        select(ChildNoteVersion, Staff.name).join(Staff, Staff.id == ChildNoteVersion.staff_id)
        .where(ChildNoteVersion.note_id.in_([n.id for n, _a in rows]))
        .order_by(ChildNoteVersion.id)):
        versions.setdefault(v.note_id, []).append(NoteVersion(v.body, name, v.at))
    return [NoteView(n, author, versions.get(n.id, [])) for n, author in rows]
