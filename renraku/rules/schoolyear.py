"""The academic year (April to March) and the rollover to the next one (進級処理), as pure rules.

A rollover keeps last year's classes and enrolments untouched (their registers stay) and
adds the new year's: every child who stays gets a class of the new year, either by rule
(same class letter, next grade: 2年1組 → 3年1組; a mixed-grade special-needs class keeps its
name) or from the April list of new assignments. Children of the last grade graduate.
Teachers follow their class (持ち上がり); the admin changes that on the staff accounts page.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from renraku.rules.roster import ClassRef, ParsedRoster, Problem

FIRST_MONTH = 4  # the Japanese school year starts in April


def academic_year_of(day: date) -> int:
    """2027-03-31 belongs to academic year 2026, 2027-04-01 to 2027."""
    return day.year if day.month >= FIRST_MONTH else day.year - 1


def year_end(year: int) -> date:
    """The last day of an academic year (graduates leave on it)."""
    return date(year + 1, FIRST_MONTH - 1, 31)


def class_name(grade: int, section: str) -> str:
    """A new class's name: "3年1組", "2年さくら組"; a mixed-grade class (0) is its section."""
    return f"{grade}年{section}組" if grade > 0 else section


def next_class(room: ClassRef) -> tuple[int, str]:
    """(grade, name) of the class this one becomes by rule."""
    if room.grade == 0:
        return 0, room.name
    prefix = f"{room.grade}年"
    if room.name.startswith(prefix):  # keeps the school's own spelling: 2年A組 → 3年A組
        return room.grade + 1, f"{room.grade + 1}年{room.name[len(prefix):]}"
    return room.grade + 1, class_name(room.grade + 1, room.section)


@dataclass(frozen=True)
class Member:
    """One enrolment of an active child in last year's class."""

    child_id: int
    student_number: str
    name: str
    class_id: int
    number: int | None


@dataclass(frozen=True)
class Move:
    child_id: int
    name: str
    from_class_id: int
    to: tuple[int, str]  # (grade, class name) in the new year
    number: int | None


@dataclass
class RolloverPlan:
    moves: list[Move]
    graduates: list[Member]
    new_classes: list[tuple[int, str]]
    teachers: list[tuple[int, tuple[int, str]]]  # staff id → new class
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def last_grade_of(classes: Iterable[ClassRef]) -> int:
    return max((c.grade for c in classes), default=0)


def plan_rollover(
    classes: Sequence[ClassRef],
    members: Sequence[Member],
    teachers: Iterable[tuple[int, int]],
    last_grade: int,
    assignments: ParsedRoster | None = None,
) -> RolloverPlan:
    """The moves, graduations, new classes and teacher assignments of one rollover.

    ``teachers`` are (staff id, last year's class id); ``assignments`` the April list
    (student number → grade, class, number), or None for the rule.
    """
    rooms = {c.class_id: c for c in classes}
    graduating = {m.child_id for m in members if rooms[m.class_id].grade >= last_grade}
    rows = {r.student_number: r for r in assignments.rows} if assignments else {}
    problems = list(assignments.problems) if assignments else []
    known = {m.student_number for m in members}
    for number, row in rows.items():
        if number not in known:
            problems.append(Problem("unknown_student", row.line, {"number": number}))
    moves: list[Move] = []
    graduates: list[Member] = []
    done: set[int] = set()  # children placed (or graduated) through their homeroom
    for m in members:
        room = rooms[m.class_id]
        row = rows.get(m.student_number)
        if room.grade == 0:  # a mixed-grade class carries over, except for graduates
            if m.child_id not in graduating or row is not None:
                moves.append(Move(m.child_id, m.name, m.class_id, next_class(room), m.number))
            continue
        if m.child_id in done:
            continue
        done.add(m.child_id)
        if row is not None:
            moves.append(Move(m.child_id, m.name, m.class_id,
                              (row.grade, class_name(row.grade, row.section)), row.number))
        elif m.child_id in graduating:
            graduates.append(m)
        elif assignments is None:
            moves.append(Move(m.child_id, m.name, m.class_id, next_class(room), m.number))
        else:
            problems.append(Problem("not_assigned", 0, {"number": m.student_number,
                                                        "name": m.name}))
    new_classes = sorted({mv.to for mv in moves})
    wanted = set(new_classes)
    staff_moves = sorted(
        (staff_id, to) for staff_id, class_id in teachers
        if class_id in rooms and rooms[class_id].grade < last_grade
        and (to := next_class(rooms[class_id])) in wanted
    )
    problems.sort(key=lambda p: p.line)
    return RolloverPlan(moves, graduates, new_classes, staff_moves, problems)

