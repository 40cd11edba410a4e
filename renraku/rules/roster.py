"""Roster CSV files as school-affairs systems (校務支援システム) export them: pure parsing and
the plan of what an import would change.

A file is bytes in UTF-8 (with or without BOM) or Shift_JIS/CP932; ``decode`` finds out
which, or takes the encoding the admin chose. ``parse`` reads the header (Japanese or
English names, see ``COLUMNS``) and every row, collecting problems instead of stopping at
the first: the admin fixes the file once. ``plan`` compares the rows with the school's
children (by student number) and classes of the year: each row is an addition, a change, a
move to another class, or unchanged. Nothing here touches the database.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

# field → accepted header names (compared after NFKC, lower case, spaces removed)
COLUMNS: dict[str, tuple[str, ...]] = {
    "student_number": ("学籍番号", "児童番号", "生徒番号", "student_number"),
    "grade": ("学年", "grade"),
    "class": ("組", "学級", "クラス", "class"),
    "number": ("出席番号", "番号", "number"),
    "family_name": ("氏", "姓", "family_name"),
    "given_name": ("名", "given_name"),
    "reading": ("ふりがな", "よみ", "よみがな", "フリガナ", "reading"),
    "family_reading": ("氏ふりがな", "姓ふりがな", "氏よみ", "family_reading"),
    "given_reading": ("名ふりがな", "名よみ", "given_reading"),
    "birth_date": ("生年月日", "birth_date"),
}
ROSTER_REQUIRED = ("student_number", "grade", "class", "family_name", "given_name")
ASSIGNMENT_REQUIRED = ("student_number", "grade", "class")
MAY_BE_EMPTY = frozenset({"given_name"})  # a required column; some people have one name only
ENCODINGS = {"utf-8": "utf-8-sig", "utf8": "utf-8-sig", "cp932": "cp932",
             "shift_jis": "cp932", "sjis": "cp932", "shift-jis": "cp932"}
MAX_GRADE = 9  # 義務教育学校 runs grades 1-9; 0 is a mixed-grade special-needs class
_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


@dataclass(frozen=True)
class Problem:
    """Why a row (``line`` > 0) or the whole file (``line`` 0) cannot be imported.

    ``code`` selects a translated message; ``params`` fill it in.
    """

    code: str
    line: int = 0
    params: dict[str, str] = field(default_factory=dict)


class RosterFileError(Exception):
    """The file as a whole cannot be read (encoding, empty, binary, header)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.code)
        self.problem = problem


@dataclass(frozen=True)
class RosterRow:
    line: int
    student_number: str
    grade: int
    section: str
    number: int | None
    family_name: str = ""
    given_name: str = ""
    reading: str = ""
    birth_date: date | None = None

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.family_name, self.given_name) if p)


@dataclass
class ParsedRoster:
    rows: list[RosterRow]
    problems: list[Problem]
    columns: frozenset[str]  # fields present in the header
    ignored: list[str]  # header names this import does not use


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The file's text and the encoding used ("utf-8" or "cp932")."""
    if not data.strip(b"\xef\xbb\xbf \t\r\n"):
        raise RosterFileError(Problem("empty_file"))
    if b"\x00" in data:  # no text export holds NUL; the csv module would choke on it
        raise RosterFileError(Problem("binary_file"))
    if encoding:
        codec = ENCODINGS.get(encoding.lower())
        if codec is None:
            raise RosterFileError(Problem("unknown_encoding", params={"encoding": encoding}))
        candidates = [codec]
    else:
        candidates = ["utf-8-sig", "cp932"]
    for codec in candidates:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as exc:
            if encoding:
                line = data[: exc.start].count(b"\n") + 1
                raise RosterFileError(Problem(
                    "bad_encoding", line, {"encoding": _label(codec)})) from exc
            continue
        if _unprintable(text):
            raise RosterFileError(Problem("binary_file"))
        return text, _label(codec)
    raise RosterFileError(Problem("undetected_encoding"))


def _label(codec: str) -> str:
    return "utf-8" if codec.startswith("utf-8") else codec


def _unprintable(text: str) -> bool:
    """Control characters a text export never holds: a binary file that happened to decode."""
    sample = text[:4096]
    bad = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\r\n")
    return bad > len(sample) // 100


def header_key(name: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", name)).lower()


_ALIASES = {header_key(alias): key for key, names in COLUMNS.items() for alias in names}


def normalise_section(value: str) -> str:
    """組 as written in a file or a class name: "1組", "１", "A組" → "1", "1", "A"."""
    text = unicodedata.normalize("NFKC", value).strip()
    text = re.sub(r"^\d+年", "", text)
    return re.sub(r"組$", "", text).strip().upper()


def parse(text: str, required: Sequence[str] = ROSTER_REQUIRED) -> ParsedRoster:
    """Rows and problems of a roster (or class assignment) file.

    A missing required column is a file error; row problems are collected, one per row.
    """
    try:
        return _parse(csv.reader(text.splitlines(keepends=True)), required)
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise RosterFileError(Problem("binary_file")) from exc


def _parse(reader: Any, required: Sequence[str]) -> ParsedRoster:
    header: list[str] = []
    for cells in reader:
        if any(c.strip() for c in cells):
            header = cells
            break
    if not header:
        raise RosterFileError(Problem("empty_file"))
    index: dict[str, int] = {}
    ignored: list[str] = []
    for i, name in enumerate(header):
        key = _ALIASES.get(header_key(name))
        if key is None:
            if name.strip():
                ignored.append(name.strip())
        elif key in index:
            raise RosterFileError(Problem("duplicate_column", reader.line_num,
                                          {"column": name.strip()}))
        else:
            index[key] = i
    for key in required:
        if key not in index:
            raise RosterFileError(Problem("missing_column", params={"column": COLUMNS[key][0]}))
    wants_reading = "family_name" in required
    if wants_reading and "reading" not in index and not (
        "family_reading" in index and "given_reading" in index
    ):
        raise RosterFileError(Problem("missing_column", params={"column": COLUMNS["reading"][0]}))
    rows: list[RosterRow] = []
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        line = reader.line_num

        def cell(key: str, cells: list[str] = cells) -> str:
            i = index.get(key)
            return cells[i].strip() if i is not None and i < len(cells) else ""

        row, problem = _row(line, cell, required, wants_reading)
        if problem is None and row is not None:
            if row.student_number in first_line:
                problem = Problem("duplicate_student_number", line, {
                    "number": row.student_number, "first": str(first_line[row.student_number])})
            else:
                first_line[row.student_number] = line
                rows.append(row)
        if problem is not None:
            problems.append(problem)
    if not rows and not problems:
        raise RosterFileError(Problem("no_rows"))
    return ParsedRoster(rows, problems, frozenset(index), ignored)


def _row(line: int, cell: Callable[[str], str], required: Sequence[str],
         wants_reading: bool) -> tuple[RosterRow | None, Problem | None]:
    """One data row, or the first thing wrong with it."""
    for key in required:
        if not cell(key) and key not in MAY_BE_EMPTY:
            return None, Problem("empty_value", line, {"column": COLUMNS[key][0]})
    number_text = unicodedata.normalize("NFKC", cell("student_number"))
    grade_text = unicodedata.normalize("NFKC", cell("grade")).removesuffix("年")
    if not grade_text.isdigit() or int(grade_text) > MAX_GRADE:
        return None, Problem("bad_grade", line, {"value": cell("grade")})
    attendance: int | None = None
    if cell("number"):
        raw = unicodedata.normalize("NFKC", cell("number"))
        if not raw.isdigit() or not 0 < int(raw) < 1000:
            return None, Problem("bad_number", line, {"value": cell("number")})
        attendance = int(raw)
    reading = ""
    if wants_reading:
        reading = _reading(cell("reading")) or " ".join(
            p for p in (_reading(cell("family_reading")), _reading(cell("given_reading"))) if p)
        if not reading:
            return None, Problem("empty_reading", line, {"number": number_text})
    birth: date | None = None
    if cell("birth_date"):
        birth = parse_date(cell("birth_date"))
        if birth is None:
            return None, Problem("bad_date", line, {"value": cell("birth_date")})
    section = normalise_section(cell("class"))
    if not section:
        return None, Problem("empty_value", line, {"column": COLUMNS["class"][0]})
    return RosterRow(line, number_text, int(grade_text), section, attendance,
                     cell("family_name"), cell("given_name"), reading, birth), None


def _reading(text: str) -> str:
    """NFKC turns half-width ｶﾀｶﾅ from older systems into full width; spaces are squeezed."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def parse_date(text: str) -> date | None:
    """2015-04-02, 2015/4/2, 2015年4月2日, 20150402; None if it is not a real date."""
    value = unicodedata.normalize("NFKC", text).strip()
    if re.fullmatch(r"\d{8}", value):
        value = f"{value[:4]}-{value[4:6]}-{value[6:]}"
    match = _DATE.match(value)
    if not match:
        return None
    try:
        return date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# The plan of an import


@dataclass(frozen=True)
class ClassRef:
    class_id: int
    grade: int
    name: str
    special_needs: bool = False

    @property
    def section(self) -> str:
        return normalise_section(self.name)


@dataclass(frozen=True)
class Current:
    """A child of the school as the import sees it; class and number are the year's homeroom."""

    child_id: int
    student_number: str
    family_name: str
    given_name: str
    reading: str
    birth_date: date | None
    class_id: int | None
    number: int | None
    active: bool = True
    # The child's other classes of the year (class id, 出席番号): a child in a special-needs
    # class and a regular one. A row naming one of them is no move.
    others: tuple[tuple[int, int | None], ...] = ()


ADD, CHANGE, MOVE, UNCHANGED = "add", "change", "move", "unchanged"


@dataclass(frozen=True)
class Planned:
    row: RosterRow
    action: str
    class_id: int
    child_id: int | None = None
    changed: tuple[str, ...] = ()  # fields that differ: name, reading, birth_date, number
    from_class_id: int | None = None  # the year's class now (None: the import enrols them)


@dataclass
class Plan:
    items: list[Planned]
    problems: list[Problem]
    ignored: list[str] = field(default_factory=list)
    new_classes: list[tuple[int, str]] = field(default_factory=list)  # (grade, section) to make

    @property
    def ok(self) -> bool:
        return not self.problems

    def of(self, action: str) -> list[Planned]:
        return [p for p in self.items if p.action == action]

    def counts(self) -> dict[str, int]:
        return {a: len(self.of(a)) for a in (ADD, CHANGE, MOVE, UNCHANGED)}


def class_lookup(classes: Iterable[ClassRef]) -> dict[tuple[int, str], int]:
    """(grade, section) → class id; a class's full name works too, for any grade."""
    found: dict[tuple[int, str], int] = {}
    for room in classes:
        found[(room.grade, room.section)] = room.class_id
    return found


def find_class(lookup: dict[tuple[int, str], int], grade: int, section: str) -> int | None:
    return lookup.get((grade, section)) or lookup.get((0, section))


NEW_CLASS = 0  # class id of a row whose class the import creates


def plan(parsed: ParsedRoster, classes: Sequence[ClassRef], current: Iterable[Current],
         create_classes: bool = False) -> Plan:
    """What importing ``parsed`` into the year of ``classes`` would do.

    A class not in ``classes`` is a problem, or with ``create_classes`` one to create (its
    rows get the class id ``NEW_CLASS`` until it exists).
    """
    lookup = class_lookup(classes)
    by_number = {c.student_number: c for c in current}
    problems = list(parsed.problems)
    items: list[Planned] = []
    missing: set[tuple[int, str]] = set()
    for row in parsed.rows:
        class_id = find_class(lookup, row.grade, row.section)
        if class_id is None and create_classes:
            missing.add((row.grade, row.section))
            class_id = NEW_CLASS
        if class_id is None:
            problems.append(Problem("unknown_class", row.line,
                                    {"grade": str(row.grade), "class": row.section}))
            continue
        now = by_number.get(row.student_number)
        if now is None:
            items.append(Planned(row, ADD, class_id))
            continue
        if not now.active:
            problems.append(Problem("left_student", row.line, {"number": row.student_number}))
            continue
        other = dict(now.others)
        if class_id in other:  # the file names the child's other class: that one, in place
            now = replace(now, class_id=class_id, number=other[class_id])
        changed = _changes(row, now, "birth_date" in parsed.columns)
        if now.class_id is not None and now.class_id != class_id:
            action = MOVE
        elif changed or now.class_id is None:
            action = CHANGE
        else:
            action = UNCHANGED
        items.append(Planned(row, action, class_id, now.child_id, changed, now.class_id))
    problems.sort(key=lambda p: p.line)
    return Plan(items, problems, parsed.ignored, sorted(missing))


def _changes(row: RosterRow, now: Current, has_birth_date: bool) -> tuple[str, ...]:
    changed = []
    if (row.family_name, row.given_name) != (now.family_name, now.given_name):
        changed.append("name")
    if row.reading != now.reading:
        changed.append("reading")
    if has_birth_date and row.birth_date != now.birth_date:
        changed.append("birth_date")
    if row.number is not None and row.number != now.number:
        changed.append("number")
    return tuple(changed)
