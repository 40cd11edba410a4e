"""The principal's daily digest: the school's morning summary by email, per class
(reported, unexplained, present, not marked), at the school's configured time
(renraku.services.morning)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from models import School, Staff
from models.enums import StaffRole
from renraku.app import App
from renraku.i18n import tr
from renraku.services import rollcall
from renraku.services.mail import MailError, send_mail
from renraku.services.schools import school_now
from renraku.services.staff import school_classes

log = logging.getLogger(__name__)


async def send_digest(app: App, school: School) -> int:
    """Email today's summary to every active principal of the school; returns how many."""
    day = school_now(app.clock, school).date()
    async with app.sessions() as s:
        rooms = await school_classes(s, school.id)
        summary = await rollcall.school_summary(s, rooms, day)
        principals = list(await s.scalars(select(Staff).where(
            Staff.school_id == school.id, Staff.role == StaffRole.PRINCIPAL,
            Staff.active.is_(True))))
    sent = 0
    for person in principals:
        lang = person.language
        lines = [tr(lang, "%(name)s: reported %(reported)s / unexplained %(unexplained)s / "
                          "present %(present)s / not marked %(unmarked)s",
                    name=c.name, **vars(c.counts)) for c in summary]
        body = "\n".join([*lines, "", f"{app.settings.base_url}/staff/summary"])
        try:
            await send_mail(app.settings, person.email,
                            tr(lang, "%(school)s morning summary %(day)s", school=school.name,
                               day=day.isoformat()),
                            body, now=app.clock.now())
            sent += 1
        except MailError:
            log.warning("digest email to staff %d failed", person.id)
    return sent
