"""A small believable demo: two schools, ~40 children, families in four languages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Child,
    Classroom,
    Enrolment,
    Event,
    Guardian,
    GuardianPhone,
    Notice,
    School,
    Staff,
    Survey,
    SurveyOption,
    SurveyQuestion,
    Term,
)
from renraku.rules.phone import normalise
from renraku.rules.school_settings import parse_school_settings
from renraku.services.guardians import link_guardian
from renraku.services.passwords import hash_password
from renraku.services.schools import create_school
from renraku.services.staff import create_staff, set_phone_and_pin

ELEMENTARY = "さくら市立さくら小学校"
JUNIOR_HIGH = "さくら市立ひまわり中学校"
DEMO_PASSWORD = "renraku-demo"  # printed by `renraku demo-data`; demo only
TOKYO = ZoneInfo("Asia/Tokyo")

# (family name, reading, children per school, guardian name, reading, language, phone, email)
FAMILIES: list[tuple[str, str, tuple[int, int], str, str, str, str | None, str | None]] = [
    (
        "山田",
        "やまだ",
        (1, 1),
        "山田花子",
        "やまだはなこ",
        "ja",
        "090-1000-0001",
        "hanako@example.jp",
    ),
    ("佐藤", "さとう", (1, 0), "佐藤ハル", "さとうはる", "ja", "03-3000-0001", None),  # landline
    ("王", "Wang", (1, 1), "王芳", "Wang Fang", "zh", "090-1000-0003", "wang.fang@example.cn"),
    (
        "García",
        "García",
        (2, 0),
        "María García",
        "María García",
        "es",
        "080-1000-0004",
        "maria.garcia@example.es",
    ),
    (
        "Smith",
        "Smith",
        (1, 0),
        "Emily Smith",
        "Emily Smith",
        "en",
        "070-1000-0005",
        "emily.smith@example.com",
    ),
]
GIVEN = [
    ("太郎", "たろう"),
    ("花子", "はなこ"),
    ("健太", "けんた"),
    ("美咲", "みさき"),
    ("翔", "しょう"),
    ("結衣", "ゆい"),
    ("大輝", "だいき"),
    ("葵", "あおい"),
    ("蓮", "れん"),
    ("陽菜", "ひな"),
    ("悠真", "ゆうま"),
    ("凛", "りん"),
]
SURNAMES = [
    ("鈴木", "すずき"),
    ("高橋", "たかはし"),
    ("田中", "たなか"),
    ("伊藤", "いとう"),
    ("渡辺", "わたなべ"),
    ("中村", "なかむら"),
    ("小林", "こばやし"),
    ("加藤", "かとう"),
    ("吉田", "よしだ"),
    ("山本", "やまもと"),
    ("松本", "まつもと"),
    ("井上", "いのうえ"),
    ("木村", "きむら"),
    ("林", "はやし"),
    ("清水", "しみず"),
    ("山口", "やまぐち"),
]


@dataclass
class DemoResult:
    created: bool
    schools: int = 0
    children: int = 0
    guardians: int = 0


def _academic_terms(year: int) -> list[tuple[str, date, date]]:
    return [
        ("1学期", date(year, 4, 6), date(year, 7, 20)),
        ("2学期", date(year, 9, 1), date(year, 12, 24)),
        ("3学期", date(year + 1, 1, 8), date(year + 1, 3, 24)),
    ]


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, TOKYO).astimezone(UTC)


async def _school(
    session: AsyncSession, name: str, reading: str, cutoff: time, grades: list[tuple[int, str]]
) -> tuple[School, list[Classroom]]:
    school = await create_school(session, parse_school_settings(
        name=name, reading=reading, cutoff=cutoff.strftime("%H:%M")))
    for term_name, start, end in _academic_terms(2026):
        session.add(Term(school_id=school.id, name=term_name, start_date=start, end_date=end))
    rooms = []
    for grade, room_name in grades:
        room = Classroom(
            school_id=school.id,
            academic_year=2026,
            grade=grade,
            name=room_name,
            special_needs=room_name.startswith("ひまわり"),
        )
        session.add(room)
        rooms.append(room)
    await session.flush()
    return school, rooms


def _name_parts(name: str, reading: str) -> tuple[str, str]:
    """氏 and 名 of a demo name: "山田 太郎", "Lucas García" (read as written), "王小明"."""
    if " " not in name:
        return name[:1], name[1:]
    if reading == name:  # a Western name, given name first
        given, _, family = name.rpartition(" ")
        return family, given
    family, _, given = name.partition(" ")
    return family, given


async def _child(
    session: AsyncSession, school: School, room: Classroom, name: str, reading: str
) -> Child:
    family, given = _name_parts(name, reading)
    child = Child(school_id=school.id, name=name, reading=reading, display_name=name.split(" ")[-1],
                  family_name=family, given_name=given)
    session.add(child)
    await session.flush()
    # 学籍番号 as many systems write it: the year the child entered, then a serial number
    child.student_number = f"{2027 - max(room.grade, 1)}{child.id:04d}"
    session.add(Enrolment(child_id=child.id, class_id=room.id))
    return child


async def _guardian(
    session: AsyncSession,
    name: str,
    reading: str,
    language: str,
    phone: str | None,
    email: str | None,
    children: list[Child],
    relation: str = "",
) -> Guardian:
    number = normalise(phone) if phone else None
    guardian = Guardian(
        name=name,
        reading=reading,
        language=language,
        email=email,
        email_verified=email is not None,
        password_hash=hash_password(DEMO_PASSWORD) if email else None,
        proxy_registered=number is not None and number.kind == "landline",
    )
    session.add(guardian)
    await session.flush()
    if number:
        session.add(
            GuardianPhone(
                guardian_id=guardian.id, e164=number.e164, kind=number.kind, verified=True
            )
        )
    for child in children:
        await link_guardian(session, child.id, guardian.id, relation)
    return guardian


async def create_demo_data(session: AsyncSession, now: datetime) -> DemoResult:
    """Create the demo schools once; a second call finds them and changes nothing."""
    if await session.scalar(select(School.id).where(School.name == ELEMENTARY)):
        return DemoResult(created=False)
    elem, elem_rooms = await _school(
        session,
        ELEMENTARY,
        "さくらしりつさくらしょうがっこう",
        time(20, 0),
        [(1, "1年1組"), (1, "1年2組"), (4, "4年1組"), (0, "ひまわり学級")],
    )
    jhs, jhs_rooms = await _school(
        session,
        JUNIOR_HIGH,
        "さくらしりつひまわりちゅうがっこう",
        time(19, 0),
        [(1, "1年A組"), (2, "2年B組")],
    )
    result = DemoResult(created=True, schools=2)
    # Families with named guardians: siblings across both schools, four languages.
    for idx, (
        family,
        fam_reading,
        (n_elem, n_jhs),
        gname,
        greading,
        lang,
        phone,
        email,
    ) in enumerate(FAMILIES):
        kids = []
        for k in range(n_elem + n_jhs):
            given, given_reading = GIVEN[(idx * 3 + k) % len(GIVEN)]
            if lang in ("en", "es"):
                name, reading = f"{['Lucas', 'Sofía', 'Oliver'][k % 3]} {family}", ""
                reading = name
            elif lang == "zh":
                name, reading = (
                    f"{family}{['小明', '小红'][k % 2]}",
                    ["Wang Xiaoming", "Wang Xiaohong"][k % 2],
                )
            else:
                name, reading = f"{family} {given}", f"{fam_reading} {given_reading}"
            in_elem = k < n_elem
            school, rooms = (elem, elem_rooms) if in_elem else (jhs, jhs_rooms)
            kids.append(
                await _child(
                    session, school, rooms[k % (len(rooms) - (1 if in_elem else 0))], name, reading
                )
            )
        await _guardian(
            session, gname, greading, lang, phone, email, kids, "母" if idx != 1 else "祖母"
        )
        result.guardians += 1
        result.children += len(kids)
    # The Yamada children also have their father on the same home landline as a second guardian.
    yamada = list(await session.scalars(select(Child).where(Child.name.like("山田%"))))
    await _guardian(
        session,
        "山田一郎",
        "やまだいちろう",
        "ja",
        "03-3000-0010",
        "ichiro@example.jp",
        yamada,
        "父",
    )
    result.guardians += 1
    # The rest of the classes: one child and one guardian per family.
    serial = 100
    for i, (surname, sur_reading) in enumerate(SURNAMES * 2):
        given, given_reading = GIVEN[i % len(GIVEN)]
        rooms, school = (elem_rooms[:3], elem) if i % 3 else (jhs_rooms, jhs)
        child = await _child(
            session,
            school,
            rooms[i % len(rooms)],
            f"{surname} {given}",
            f"{sur_reading} {given_reading}",
        )
        serial += 1
        await _guardian(
            session,
            f"{surname} 由美",
            f"{sur_reading} ゆみ",
            "ja",
            f"090-2000-{serial:04d}",
            f"parent{serial}@example.jp",
            [child],
            "母",
        )
        result.children += 1
        result.guardians += 1
    # A child in two classes: the Smith child of 1年1組 also belongs to ひまわり学級 (特別支援
    # 学級), whose teacher sees their reports too.
    smith = await session.scalar(select(Child).where(Child.family_name == "Smith"))
    if smith is not None:
        session.add(Enrolment(child_id=smith.id, class_id=elem_rooms[3].id))
    await _staff_and_calendar(session, elem, elem_rooms, jhs, jhs_rooms, now)
    await session.flush()
    return result


async def _staff_and_calendar(
    session: AsyncSession,
    elem: School,
    elem_rooms: list[Classroom],
    jhs: School,
    jhs_rooms: list[Classroom],
    now: datetime,
) -> None:
    async def staff(school: School, name: str, email: str, role: str,
                    rooms: list[Classroom]) -> Staff:
        return await create_staff(session, school.id, name=name, email=email, role=role,
                                  password=DEMO_PASSWORD, class_ids=[r.id for r in rooms])

    admin = await staff(elem, "校長 佐々木", "admin@sakura.example.jp", "admin", [])
    await set_phone_and_pin(session, admin, "090-9000-0001", "1234")  # the recording line
    teacher = await staff(elem, "担任 森", "mori@sakura.example.jp", "teacher", elem_rooms[:1])
    await staff(elem, "担任 林", "hayashi@sakura.example.jp", "teacher", elem_rooms[3:])
    jhs_admin = await staff(jhs, "教頭 石川", "admin@himawari.example.jp", "admin", [])
    await staff(jhs, "担任 岡田", "okada@himawari.example.jp", "teacher", jhs_rooms[:1])
    today = now.astimezone(TOKYO).date()
    soon = today + timedelta(days=(4 - today.weekday()) % 7 or 7)  # next Friday
    session.add_all(
        [
            Event(
                school_id=elem.id,
                title="個人面談",
                starts_at=_local(soon, time(14, 0)),
                ends_at=_local(soon, time(17, 0)),
                place="各教室",
                note="15分ずつ",
                created_by=admin.id,
                created_at=now,
                updated_at=now,
            ),
            Event(
                school_id=elem.id,
                class_id=elem_rooms[0].id,
                title="校外学習（動物園）",
                starts_at=_local(soon + timedelta(days=7), time(9, 0)),
                ends_at=_local(soon + timedelta(days=7), time(15, 0)),
                place="さくら動物園",
                note="お弁当・水筒を持たせてください",
                created_by=teacher.id,
                created_at=now,
                updated_at=now,
            ),
            Event(
                school_id=jhs.id,
                title="期末テスト",
                starts_at=_local(soon, time(8, 40)),
                ends_at=_local(soon, time(12, 30)),
                created_by=jhs_admin.id,
                created_at=now,
                updated_at=now,
            ),
            Notice(
                school_id=elem.id,
                scope="school",
                title="インフルエンザにご注意ください",
                body="校内でインフルエンザの患者が増えています。手洗い・うがいをお願いします。",
                translations={
                    "en": {
                        "title": "Please watch out for influenza",
                        "body": "Influenza cases are rising at school. "
                        "Please remind your child to wash hands.",
                    }
                },
                publish_at=now,
                created_by=admin.id,
                created_at=now,
            ),
        ]
    )
    survey = Survey(school_id=elem.id, title="個人面談の出欠", created_by=admin.id, created_at=now)
    session.add(survey)
    await session.flush()
    question = SurveyQuestion(
        survey_id=survey.id,
        position=1,
        text={
            "ja": "個人面談に出席されますか。",
            "en": "Will you attend the parent-teacher meeting?",
            "zh": "您会参加家长面谈吗？",
            "es": "¿Asistirá a la reunión con el maestro?",
        },
    )
    session.add(question)
    await session.flush()
    for digit, labels in (
        (1, ("出席します", "Yes", "参加", "Sí")),
        (2, ("欠席します", "No", "不参加", "No")),
    ):
        session.add(
            SurveyOption(
                question_id=question.id,
                digit=digit,
                label=dict(zip(("ja", "en", "zh", "es"), labels, strict=True)),
            )
        )
