"""Small builders for test rows, shared by every test module that needs a family."""

from __future__ import annotations

from datetime import UTC, datetime, time

from sqlalchemy.ext.asyncio import AsyncSession

from models import Child, Classroom, Enrolment, Guardian, GuardianPhone, School
from renraku.rules.phone import normalise
from renraku.services.guardians import link_guardian


def morning_zone(now: datetime) -> str:
    """A whole-hour zone where it is 09:xx at ``now``. A school there stays inside the
    default 08:00-20:00 calling window for hours, whatever the real time, for tests and
    benchmarks that dial with the real clock (the window itself is tested with a FakeClock;
    a Tokyo school stops being called at 20:00 Tokyo time, 11:00 UTC)."""
    offset = (9 - now.astimezone(UTC).hour + 12) % 24 - 12  # hours east of UTC, -12..11
    return f"Etc/GMT{-offset:+d}"  # POSIX signs: Etc/GMT-9 is UTC+9


async def make_school(
    session: AsyncSession, name: str = "第一小学校", cutoff: time = time(20, 0), **kw: object
) -> School:
    school = School(name=name, phone_cutoff=cutoff, **kw)
    session.add(school)
    await session.flush()
    return school


async def make_class(
    session: AsyncSession, school: School, name: str = "1年1組", grade: int = 1
) -> Classroom:
    room = Classroom(school_id=school.id, academic_year=2026, grade=grade, name=name)
    session.add(room)
    await session.flush()
    return room


async def make_child(
    session: AsyncSession, school: School, name: str = "山田太郎", reading: str = "やまだたろう",
    classroom: Classroom | None = None,
) -> Child:
    child = Child(school_id=school.id, name=name, reading=reading, display_name=name.split()[-1])
    session.add(child)
    await session.flush()
    if classroom is not None:
        session.add(Enrolment(child_id=child.id, class_id=classroom.id))
        await session.flush()
    return child


async def make_guardian(
    session: AsyncSession,
    name: str = "山田花子",
    phone: str | None = "090-1234-5678",
    language: str = "ja",
    children: tuple[Child, ...] = (),
    email: str | None = None,
) -> Guardian:
    guardian = Guardian(name=name, language=language, email=email)
    session.add(guardian)
    await session.flush()
    if phone:
        number = normalise(phone)
        session.add(
            GuardianPhone(guardian_id=guardian.id, e164=number.e164, kind=number.kind,
                          verified=True)
        )
    for child in children:
        await link_guardian(session, child.id, guardian.id)
    await session.flush()
    return guardian
