"""Everyone the authorization matrix and the CSP check sign in as, on the guardian world.

School A (tests.web_world): class 1 (山田 太郎 of Hanako and Ken, 佐藤 次郎 of Sato) and
class 3 (Taro's sibling). Its staff: a teacher of class 1, a teacher of class 3, a nurse,
a principal, an admin, and a spare teacher whose account the admin pages change. School B
has its own admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select

from models import Campaign, Event, FamilyEvent, Notice, Staff, StaffClass
from models.db import transaction
from models.enums import Channel, ReportKind, ReportReason
from renraku.services import absences
from renraku.services.passwords import hash_password
from tests.db_fixtures import Database
from tests.factories import make_class, make_school
from tests.web_world import NOW, PASSWORD, World, build_world

STAFF_PASSWORD = "staff-pass-123"
# role → how they sign in (None: nobody)
SIGN_IN: dict[str, tuple[str, str] | None] = {
    "anonymous": None,
    "guardian": ("/login", "hanako@example.jp"),
    "other_guardian": ("/login", "sato@example.jp"),
    "teacher": ("/staff/login", "teacher1@a.test"),
    "other_teacher": ("/staff/login", "teacher3@a.test"),
    "nurse": ("/staff/login", "nurse@a.test"),
    "principal": ("/staff/login", "principal@a.test"),
    "admin": ("/staff/login", "admin@a.test"),
    "other_admin": ("/staff/login", "admin@b.test"),
}
ROLES = tuple(SIGN_IN)


@dataclass
class SecurityWorld:
    world: World
    report: int
    family_event: int
    event: int
    notice: int
    campaign: int
    spare_staff: int

    def password(self, role: str) -> str:
        return PASSWORD if SIGN_IN[role] and SIGN_IN[role][0] == "/login" else STAFF_PASSWORD


async def build_security_world(db: Database) -> SecurityWorld:
    world = await build_world(db)
    pw = hash_password(STAFF_PASSWORD)
    async with transaction(db.sessions) as s:
        other = await make_school(s, "第二小学校")
        await make_class(s, other, "1年1組", 1)
        people = [("teacher1@a.test", "teacher", world.school, [world.class1]),
                  ("teacher3@a.test", "teacher", world.school, [world.class3]),
                  ("nurse@a.test", "nurse", world.school, []),
                  ("principal@a.test", "principal", world.school, []),
                  ("admin@a.test", "admin", world.school, []),
                  ("spare@a.test", "teacher", world.school, [world.class1]),
                  ("admin@b.test", "admin", other.id, [])]
        ids = {}
        for email, role, school, classes in people:
            person = Staff(school_id=school, name=email.split("@")[0], email=email,
                           password_hash=pw, role=role)
            s.add(person)
            await s.flush()
            s.add_all(StaffClass(staff_id=person.id, class_id=c) for c in classes)
            ids[email] = person.id
        report = await absences.submit(
            s, absences.ReportDraft(world.taro, date(2026, 12, 7), ReportKind.ABSENCE,
                                    ReportReason.ILLNESS, memo="熱"),
            channel=Channel.WEB, guardian_id=world.hanako, now=NOW)
        family = FamilyEvent(child_id=world.taro, created_by=world.hanako, title="旅行",
                             starts_at=datetime(2026, 12, 7, 0, 0, tzinfo=UTC),
                             ends_at=datetime(2026, 12, 8, 0, 0, tzinfo=UTC), all_day=True,
                             created_at=NOW)
        s.add(family)
        await s.flush()
        event = await s.scalar(select(Event.id).where(Event.school_id == world.school))
        notice = await s.scalar(select(Notice.id).where(Notice.school_id == world.school))
        campaign = await s.scalar(select(Campaign.id).where(Campaign.school_id == world.school))
        assert event and notice and campaign
        return SecurityWorld(world, report.id, family.id, event, notice, campaign,
                             ids["spare@a.test"])
