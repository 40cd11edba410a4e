"""The roster from the database: classes of a year, CSV import (preview, then apply), export,
and children leaving (転出) or arriving (転入) mid-year.

The import's decisions are the pure ``renraku.rules.roster``; here they are read from and
written to the database with bulk statements (10,000 rows in well under a few seconds).
``import_roster`` plans and, only when asked and the plan has no problem, writes: the web
preview and the CLI's --dry-run call it with ``apply=False``, the confirm with ``True``
inside one transaction, so what is written is re-planned against the database as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, insert, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Child, Classroom, Enrolment, RegistrationToken, School
from models.enums import LeaveReason
from renraku.rules import roster as rules
from renraku.rules.csv_cells import csv_bytes
from renraku.rules.roster import ADD, CHANGE, MOVE, ClassRef, Current, Plan
from renraku.rules.schoolyear import class_name

EXPORT_HEADER = ("学籍番号", "学年", "組", "出席番号", "氏", "名", "ふりがな", "生年月日")


async def year_classes(session: AsyncSession, school_id: int, year: int) -> list[Classroom]:
    rows = await session.scalars(
        select(Classroom).where(Classroom.school_id == school_id, Classroom.academic_year == year)
        .order_by(Classroom.grade, Classroom.name))
    return list(rows)


async def school_years(session: AsyncSession, school_id: int) -> list[int]:
    """Academic years that have classes, newest first."""
    rows = await session.scalars(
        select(Classroom.academic_year).where(Classroom.school_id == school_id).distinct())
    return sorted(rows, reverse=True)


def refs(classes: list[Classroom]) -> list[ClassRef]:
    return [ClassRef(c.id, c.grade, c.name, c.special_needs) for c in classes]


async def save_class(session: AsyncSession, school_id: int, year: int, grade: int, name: str,
                     class_id: int | None = None) -> Classroom:
    """Create a class of the year, or rename (and re-grade) one; names are unique per year."""
    name = name.strip()
    if not name or not 0 <= grade <= rules.MAX_GRADE:
        raise ValueError("class_name")
    clash = await session.scalar(select(Classroom.id).where(
        Classroom.school_id == school_id, Classroom.academic_year == year,
        Classroom.name == name, Classroom.id != (class_id or 0)))
    if clash:
        raise ValueError("class_taken")
    if class_id is None:
        room = Classroom(school_id=school_id, academic_year=year, grade=grade, name=name)
        session.add(room)
    else:
        found = await session.get(Classroom, class_id)
        if found is None or found.school_id != school_id:
            raise LookupError(class_id)
        room = found
        room.name, room.grade = name, grade
    await session.flush()
    return room


async def current_children(session: AsyncSession, school_id: int, year: int) -> list[Current]:
    """Every child with a student number, with the homeroom (and 出席番号) of ``year`` and
    the child's other classes of the year."""
    rooms = await year_enrolments(session, school_id, year)
    rows = await session.execute(
        select(Child.id, Child.student_number, Child.family_name, Child.given_name,
               Child.reading, Child.birth_date, Child.active)
        .where(Child.school_id == school_id, Child.student_number.is_not(None)))
    out = []
    for cid, number, family, given, reading, birth, active in rows:
        mine = rooms.get(cid, [])
        home_id, home_number = mine[0] if mine else (None, None)
        out.append(Current(cid, number, family, given, reading, birth, home_id, home_number,
                           active, tuple(mine[1:])))
    return out


async def year_enrolments(session: AsyncSession, school_id: int,
                          year: int) -> dict[int, list[tuple[int, int | None]]]:
    """Child → its classes of ``year`` as (class id, 出席番号), the homeroom first: a graded
    class before a mixed-grade one (0), so the roster file's one class per child is stable."""
    rooms: dict[int, list[tuple[int, int | None]]] = {}
    enrolled = await session.execute(
        select(Enrolment.child_id, Enrolment.class_id, Enrolment.number)
        .join(Classroom, Classroom.id == Enrolment.class_id)
        .where(Classroom.school_id == school_id, Classroom.academic_year == year)
        .order_by(Classroom.grade.desc(), Classroom.id))
    for child_id, class_id, number in enrolled:
        rooms.setdefault(child_id, []).append((class_id, number))
    return rooms


@dataclass
class RosterImport:
    plan: Plan
    encoding: str
    year: int
    applied: bool = False
    renamed: list[int] | None = None  # children whose spoken name changed


async def import_roster(session: AsyncSession, school: School, data: bytes, *, year: int,
                        encoding: str | None = None, create_classes: bool = False,
                        apply: bool = False) -> RosterImport:
    """Plan the import of a roster file; with ``apply`` and no problem, write it.

    ``create_classes``: classes of the file missing in the year are made (1年1組...)
    instead of being errors. Raises ``rules.RosterFileError`` for an unreadable file.
    """
    content, used = rules.decode(data, encoding)
    parsed = rules.parse(content)
    classes = refs(await year_classes(session, school.id, year))
    current = await current_children(session, school.id, year)
    plan = rules.plan(parsed, classes, current, create_classes)
    result = RosterImport(plan, used, year)
    if apply and plan.ok:
        if plan.new_classes:
            for grade, section in plan.new_classes:
                await save_class(session, school.id, year, grade, class_name(grade, section))
            classes = refs(await year_classes(session, school.id, year))
            plan = rules.plan(parsed, classes, current)
        result.renamed = await _apply(session, school.id, plan)
        result.applied = True
    return result


def _child_values(row: rules.RosterRow) -> dict[str, object]:
    return {"name": row.name, "reading": row.reading,
            "display_name": row.given_name or row.family_name,
            "family_name": row.family_name, "given_name": row.given_name,
            "birth_date": row.birth_date}


async def _apply(session: AsyncSession, school_id: int, plan: Plan) -> list[int]:
    adds = plan.of(ADD)
    new_ids: dict[str, int] = {}
    if adds:
        made = await session.execute(
            insert(Child).returning(Child.id, Child.student_number),
            [{"school_id": school_id, "student_number": p.row.student_number, "active": True,
              **_child_values(p.row)} for p in adds])
        new_ids = {number: cid for cid, number in made}
    touched = [p for p in plan.items if p.action in (CHANGE, MOVE)]
    edits = [p for p in touched if {"name", "reading", "birth_date"} & set(p.changed)]
    if edits:
        await session.execute(update(Child), [
            {"id": p.child_id, **_child_values(p.row)} for p in edits])
    # A move or a first enrolment this year replaces the homeroom; a number changes in place.
    rehome = [p for p in touched if p.action == MOVE or p.from_class_id is None]
    moved = [(p.child_id, p.from_class_id) for p in rehome if p.from_class_id is not None]
    if moved:
        await session.execute(delete(Enrolment).where(
            tuple_(Enrolment.child_id, Enrolment.class_id).in_(moved)))
    enrol = [(new_ids[p.row.student_number], p) for p in adds] + [
        (p.child_id, p) for p in rehome if p.child_id is not None]
    if enrol:
        await session.execute(insert(Enrolment), [
            {"child_id": cid, "class_id": p.class_id, "number": p.row.number}
            for cid, p in enrol])
    renumber = [p for p in touched if p.action != MOVE and p.from_class_id is not None
                and "number" in p.changed]
    if renumber:
        await session.execute(update(Enrolment), [
            {"child_id": p.child_id, "class_id": p.class_id, "number": p.row.number}
            for p in renumber])
    await session.flush()
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # Fresh statistics, or PostgreSQL plans the month register over a bulk import badly.
        await session.execute(text("ANALYZE children, enrolments"))
    return [p.child_id for p in edits
            if p.child_id is not None and {"name", "reading"} & set(p.changed)]


# --------------------------------------------------------------------------------------------
# Export


async def export_csv(session: AsyncSession, school_id: int, year: int) -> bytes:
    """The year's roster in the import's own format (re-importing it changes nothing): one
    row per child, in the homeroom (a child's second class is kept by the import)."""
    homerooms = {cid: rooms[0][0] for cid, rooms in
                 (await year_enrolments(session, school_id, year)).items()}
    rows = await session.execute(
        select(Child.id, Enrolment.class_id, Child.student_number, Classroom.grade,
               Classroom.name, Enrolment.number,
               Child.family_name, Child.given_name, Child.name, Child.reading, Child.birth_date)
        .join(Enrolment, Enrolment.child_id == Child.id)
        .join(Classroom, Classroom.id == Enrolment.class_id)
        .where(Child.school_id == school_id, Classroom.academic_year == year,
               Child.active.is_(True))
        .order_by(Classroom.grade, Classroom.name, Enrolment.number, Child.reading))
    out: list[tuple[object, ...]] = [EXPORT_HEADER]
    for cid, class_id, number, grade, room, attendance, family, given, name, reading, birth \
            in rows:
        if homerooms.get(cid) != class_id:
            continue
        if not family and not given:  # made before the roster import: split the shown name
            family, _, given = name.partition(" ")
        out.append((number or "", grade, rules.normalise_section(room), attendance or "",
                    family, given, reading, birth.isoformat() if birth else ""))
    return csv_bytes(out)


# --------------------------------------------------------------------------------------------
# 転出 and 転入


async def leave(session: AsyncSession, child: Child, day: date, now: datetime,
                reason: str = LeaveReason.TRANSFER) -> None:
    """The child leaves: kept with their reports, gone from guardians' pages and phone menu.

    Registration codes stop working, so nobody registers to a child who has left.
    """
    child.active = False
    child.left_on = day
    child.left_reason = reason
    await session.execute(
        update(RegistrationToken)
        .where(RegistrationToken.child_id == child.id, RegistrationToken.revoked_at.is_(None))
        .values(revoked_at=now))
    await session.flush()


async def join_class(session: AsyncSession, child: Child, room: Classroom) -> bool:
    """The child also belongs to ``room`` (a special-needs class beside the regular one, or
    the other way round): one child, one set of guardians, one record of each absence; both
    classes' teachers and registers see it. False when the child already was in it."""
    if room.school_id != child.school_id:
        raise LookupError(room.id)
    if not child.active:
        raise ValueError("child_left")
    if await session.get(Enrolment, (child.id, room.id)) is not None:
        return False
    session.add(Enrolment(child_id=child.id, class_id=room.id))
    await session.flush()
    return True


async def drop_class(session: AsyncSession, child: Child, room: Classroom,
                     now: datetime) -> None:
    """The child no longer belongs to ``room``; never their only class of that year (that
    is a move, made by the roster import, or leaving, 転出). The class's code stops working."""
    if await session.get(Enrolment, (child.id, room.id)) is None:
        raise LookupError(room.id)
    others = await session.scalar(
        select(Enrolment.class_id).join(Classroom, Classroom.id == Enrolment.class_id)
        .where(Enrolment.child_id == child.id, Enrolment.class_id != room.id,
               Classroom.academic_year == room.academic_year).limit(1))
    if others is None:
        raise ValueError("only_class")
    await session.execute(delete(Enrolment).where(
        Enrolment.child_id == child.id, Enrolment.class_id == room.id))
    await session.execute(
        update(RegistrationToken)
        .where(RegistrationToken.child_id == child.id, RegistrationToken.class_id == room.id,
               RegistrationToken.revoked_at.is_(None))
        .values(revoked_at=now))
    await session.flush()


async def admit(session: AsyncSession, school_id: int, room: Classroom, *, student_number: str,
                family_name: str, given_name: str, reading: str, number: int | None = None,
                birth_date: date | None = None) -> Child:
    """A child arriving mid-year (転入); the class's QR sheet then has a code for them."""
    row = rules.RosterRow(0, student_number.strip(), room.grade, "", number,
                          family_name.strip(), given_name.strip(), " ".join(reading.split()),
                          birth_date)
    if not (row.student_number and row.family_name and row.reading):
        raise ValueError("admit_fields")
    if room.school_id != school_id:
        raise LookupError(room.id)
    if await session.scalar(select(Child.id).where(
            Child.school_id == school_id, Child.student_number == row.student_number)):
        raise ValueError("student_number_taken")
    child = Child(school_id=school_id, student_number=row.student_number, active=True,
                  **_child_values(row))
    session.add(child)
    await session.flush()
    session.add(Enrolment(child_id=child.id, class_id=room.id, number=number))
    await session.flush()
    return child
