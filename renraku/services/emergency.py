"""An emergency broadcast: one announcement, at once, by every way a family can hear it.

A typhoon closes every school at 6:00. One action, for one school or all of them:
- a **voice campaign** to every household with a phone (the dialers of every app node
  call it, within the trunk's channel cap),
- an **email** to every guardian with an address (queued with the campaign; the caller
  of :func:`declare` sends them right away, and the dialer retries the ones that fail),
- a **notice** to the whole school, published now: it is on every guardian's page of the
  school at once, for the families whose phone line does not work.

All in one transaction: the three exist together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import School
from renraku.services import broadcast as bc
from renraku.services import notices
from renraku.settings import Settings

# An emergency is not bound by the school's usual calling window (8:00–20:00 by default):
# a closure at 6:00 must reach families before they leave home. Nobody is woken at night.
WINDOW = ("05:00", "22:00")


@dataclass(frozen=True)
class Declared:
    school_id: int
    campaign_id: int
    notice_id: int


async def declare(
    session: AsyncSession,
    settings: Settings,
    *,
    title: str,
    message: dict[str, str],
    now: datetime,
    school_ids: list[int] | None = None,
    staff_id: int | None = None,
) -> list[Declared]:
    """The announcement to the schools named (every school: None), by voice, email and
    notice. ``message`` by language; Japanese is required (the voice and the email fall back
    to it, and it is the notice's own text)."""
    text = {k: v.strip() for k, v in message.items() if v and v.strip()}
    if not title.strip() or not text.get("ja"):
        raise bc.CampaignError("an emergency needs a title and a Japanese message")
    query = select(School.id).order_by(School.id)
    if school_ids is not None:
        query = query.where(School.id.in_(school_ids))
    found = list(await session.scalars(query))
    if school_ids is not None and set(found) != set(school_ids):
        raise bc.CampaignError(f"no such school: {sorted(set(school_ids) - set(found))}")
    declared = []
    for school_id in found:
        campaign = await bc.create_campaign(
            session, settings, school_id=school_id, title=title.strip(),
            target={"school": True}, now=now, message=text, voice=True, email=True,
            window_start=WINDOW[0], window_end=WINDOW[1], created_by=staff_id)
        await bc.launch(session, settings, campaign, now)
        notice = await notices.create_notice(
            session, school_id, notices.NoticeDraft(
                scope="school", title=title.strip(), body=text["ja"],
                translations={lang: {"body": body}
                              for lang, body in text.items() if lang != "ja"}),
            staff_id, now)
        declared.append(Declared(school_id, campaign.id, notice.id))
    return declared
