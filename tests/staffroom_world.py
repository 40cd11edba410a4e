"""A school morning for the staff-room tests: two classes, children with and without
reports, families with one or two phones, an email only, or no contact; every staff role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.db import transaction
from models.enums import ReportKind, ReportReason
from renraku.rules.phone import normalise
from renraku.services import absences
from renraku.services import staff as staff_svc
from tests.factories import make_child, make_class, make_guardian, make_school

DAY = date(2026, 12, 4)  # Friday; PORTAL_NOW is 09:30 in Tokyo that day
REPORTED_AT = datetime(2026, 12, 3, 22, 0, tzinfo=UTC)
PASSWORD = "staff-pass-123"


@dataclass
class World:
    school: int
    mine: int  # 1年1組: teacher mori
    theirs: int  # 1年2組: teacher kato
    aoki: int  # absence report (illness)
    baba: int  # no report; mother (primary, mobile) and father (mobile, English)
    chiba: int  # late report
    doi: int  # no report; guardian with email only
    eto: int  # no report; no contact at all
    other_kid: int  # in 1年2組
    staff: dict[str, int]  # role name → id: mori, kato, principal, nurse, admin
    baba_mother_phone: str
    guardian_email: str  # 馬場 mother's login


async def build(sessions: async_sessionmaker[AsyncSession], *, baba_phone: str = "090-2000-0001",
                timezone: str = "Asia/Tokyo") -> World:
    async with transaction(sessions) as s:
        school = await make_school(s, "さくら小学校", cutoff=time(20, 0), timezone=timezone)
        mine = await make_class(s, school, "1年1組")
        theirs = await make_class(s, school, "1年2組")
        kids = {}
        for key, name, reading in [("aoki", "青木 一郎", "あおき"), ("baba", "馬場 二郎", "ばば"),
                                   ("chiba", "千葉 三郎", "ちば"), ("doi", "土井 四郎", "どい"),
                                   ("eto", "江藤 五郎", "えとう")]:
            kids[key] = await make_child(s, school, name, reading, mine)
        other = await make_child(s, school, "山本 六郎", "やまもと", theirs)
        await make_guardian(s, "青木 母", "090-2000-0009", children=(kids["aoki"],))
        await make_guardian(s, "馬場 母", baba_phone, children=(kids["baba"],),
                                     email="baba-mother@example.jp")
        await make_guardian(s, "馬場 父", "090-2000-0002", "en", children=(kids["baba"],))
        await make_guardian(s, "千葉 父", "090-2000-0003", children=(kids["chiba"],))
        await make_guardian(s, "土井 母", None, children=(kids["doi"],),
                            email="doi@example.jp")
        await make_guardian(s, "江藤 母", None, children=(kids["eto"],))
        await make_guardian(s, "山本 母", "090-2000-0006", children=(other,),
                            email="yamamoto@example.jp")
        for child, kind in ((kids["aoki"], ReportKind.ABSENCE), (kids["chiba"], ReportKind.LATE)):
            await absences.submit(
                s, absences.ReportDraft(child.id, DAY, kind, ReportReason.ILLNESS,
                                        time(10, 0) if kind == ReportKind.LATE else None),
                channel="phone", guardian_id=None, now=REPORTED_AT)
        staff = {}
        for key, role, classes in [("mori", "teacher", [mine.id]), ("kato", "teacher", [theirs.id]),
                                   ("principal", "principal", []), ("nurse", "nurse", []),
                                   ("admin", "admin", [])]:
            person = await staff_svc.create_staff(
                s, school.id, name=key, email=f"{key}@sakura.test", role=role,
                password=PASSWORD, class_ids=classes)
            staff[key] = person.id
    return World(school.id, mine.id, theirs.id, kids["aoki"].id, kids["baba"].id,
                 kids["chiba"].id, kids["doi"].id, kids["eto"].id, other.id, staff,
                 normalise(baba_phone).e164,
                 "baba-mother@example.jp")
