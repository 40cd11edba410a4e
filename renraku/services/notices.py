"""Notices to the whole school, one grade or one class, shown to families from ``publish_at``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Classroom, Notice

SCOPES = ("school", "grade", "class")


@dataclass(frozen=True)
class NoticeDraft:
    scope: str
    title: str
    body: str
    grade: int | None = None
    class_id: int | None = None
    publish_at: datetime | None = None  # None: at once
    translations: dict[str, dict[str, str]] = field(default_factory=dict)
    important: bool = False  # also called to households without email (family_reach)


async def create_notice(
    session: AsyncSession, school_id: int, draft: NoticeDraft, staff_id: int | None, now: datetime
) -> Notice:
    if draft.scope not in SCOPES:
        raise ValueError("scope")
    if not draft.title.strip() or not draft.body.strip():
        raise ValueError("title and body")
    grade, class_id = None, None
    if draft.scope == "grade":
        if draft.grade is None:
            raise ValueError("grade")
        grade = draft.grade
    elif draft.scope == "class":
        room = await session.get(Classroom, draft.class_id) if draft.class_id else None
        if room is None or room.school_id != school_id:
            raise ValueError("class")
        class_id = room.id
    publish_at = draft.publish_at or now
    if publish_at.tzinfo is None:
        raise ValueError("naive publish_at")
    notice = Notice(
        school_id=school_id, scope=draft.scope, grade=grade, class_id=class_id,
        title=draft.title.strip(), body=draft.body.strip(), translations=draft.translations,
        publish_at=publish_at, important=draft.important,
        created_by=staff_id, created_at=now,
    )
    session.add(notice)
    await session.flush()
    return notice


async def staff_notices(
    session: AsyncSession, school_id: int, class_ids: list[int] | None
) -> list[Notice]:
    """Newest first: every notice of the school (admin), or school/grade-wide + own classes."""
    query = select(Notice).where(Notice.school_id == school_id)
    if class_ids is not None:
        query = query.where(Notice.class_id.is_(None) | Notice.class_id.in_(class_ids))
    return list(await session.scalars(query.order_by(Notice.publish_at.desc(), Notice.id.desc())))


async def withdraw_notice(session: AsyncSession, notice: Notice, now: datetime) -> bool:
    """A scheduled notice not yet shown may be withdrawn; a published one stays on record."""
    if notice.publish_at <= now:
        return False
    await session.delete(notice)
    await session.flush()
    return True
