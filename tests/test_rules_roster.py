"""Roster files, CSV injection and the rollover, as pure rules."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from renraku.rules import roster
from renraku.rules.csv_cells import csv_bytes
from renraku.rules.roster import ClassRef, Current, RosterFileError
from renraku.rules.schoolyear import (
    Member,
    academic_year_of,
    class_name,
    next_class,
    plan_rollover,
)

HEADER_JA = "学籍番号,学年,組,出席番号,氏,名,ふりがな,生年月日\r\n"
CLASSES = [ClassRef(1, 1, "1年1組"), ClassRef(2, 1, "1年2組"), ClassRef(3, 2, "2年A組"),
           ClassRef(4, 0, "ひまわり学級", True)]


def parsed(body: str, header: str = HEADER_JA) -> roster.ParsedRoster:
    return roster.parse(header + body)


def codes(problems: list[roster.Problem]) -> list[tuple[str, int]]:
    return [(p.code, p.line) for p in problems]


def test_decode_detects_utf8_bom_and_cp932_or_takes_the_chosen_one() -> None:
    text = HEADER_JA + "1001,1,1,1,山田,太郎,やまだ たろう,2019-04-02\r\n"
    assert roster.decode(("\ufeff" + text).encode("utf-8")) == (text, "utf-8")
    assert roster.decode(text.encode("utf-8")) == (text, "utf-8")
    assert roster.decode(text.encode("cp932")) == (text, "cp932")
    assert roster.decode(text.encode("cp932"), "Shift_JIS") == (text, "cp932")
    with pytest.raises(RosterFileError) as wrong:
        roster.decode(text.encode("cp932"), "utf-8")
    assert wrong.value.problem.code == "bad_encoding"
    assert wrong.value.problem.params == {"encoding": "utf-8"}


@pytest.mark.parametrize(("data", "code"), [
    (b"", "empty_file"), (b"\xef\xbb\xbf\r\n  \r\n", "empty_file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary_file"),
    (bytes(range(1, 32)) * 20, "binary_file"),
    (HEADER_JA.encode() * 500 + b"1,1,1,1,a\x00,b,c,\r\n", "binary_file"),
])
def test_empty_and_binary_files_are_file_errors(data: bytes, code: str) -> None:
    with pytest.raises(RosterFileError) as err:
        roster.decode(data)
    assert err.value.problem.code == code


def test_headers_in_english_with_split_readings_and_half_width_kana() -> None:
    header = "Student_Number,Grade,Class,Number,Family_Name,Given_Name,Family_Reading," \
             "Given_Reading,性別\n"
    result = parsed("１００２,1年,2組,３,佐藤,花子,ｻﾄｳ,ﾊﾅｺ,女\n", header)
    assert result.problems == [] and result.ignored == ["性別"]
    (row,) = result.rows
    assert (row.student_number, row.grade, row.section, row.number) == ("1002", 1, "2", 3)
    assert row.name == "佐藤 花子" and row.reading == "サトウ ハナコ" and row.birth_date is None


def test_huge_field_is_a_file_error_not_a_crash() -> None:
    with pytest.raises(RosterFileError) as err:
        roster.parse(HEADER_JA + "1,1,1,1,山田,太郎,\"" + "x" * 200_000 + "\",\r\n")
    assert err.value.problem.code == "binary_file"
    with pytest.raises(RosterFileError) as twice:
        roster.parse("学籍番号,学年,組,学年,氏,名,ふりがな\r\n")
    assert (twice.value.problem.code, twice.value.problem.line) == ("duplicate_column", 1)


def test_missing_column_header_only_and_bad_rows_each_get_their_reason() -> None:
    with pytest.raises(RosterFileError) as err:
        roster.parse("学籍番号,学年,氏,名,ふりがな\r\n1,1,a,b,c\r\n")
    assert (err.value.problem.code, err.value.problem.params) == ("missing_column",
                                                                 {"column": "組"})
    with pytest.raises(RosterFileError) as err:
        roster.parse(HEADER_JA)
    assert err.value.problem.code == "no_rows"
    result = parsed(
        "1001,1,1,1,山田,太郎,やまだ たろう,2019-04-02\r\n"
        "1001,1,1,2,山田,次郎,やまだ じろう,2019-04-03\r\n"  # duplicate number
        "1003,1,1,3,田中,一,,2019/4/3\r\n"  # empty reading
        "1004,1,1,4,田中,二,たなか じ,2019-02-30\r\n"  # no such day
        "1005,七,1,5,田中,三,たなか さん,\r\n"  # bad grade
        ",1,1,6,田中,四,たなか し,\r\n"  # no student number
        "\r\n"
        "1008,1,1,x,田中,五,たなか ご,20190405\r\n"  # bad attendance number
    )
    assert codes(result.problems) == [
        ("duplicate_student_number", 3), ("empty_reading", 4), ("bad_date", 5),
        ("bad_grade", 6), ("empty_value", 7), ("bad_number", 9)]
    assert result.problems[0].params == {"number": "1001", "first": "2"}
    assert [r.student_number for r in result.rows] == ["1001"]
    single = parsed("1009,1,1,9,Aung,,アウン,\r\n")  # one name only: 名 may be empty
    assert single.problems == [] and single.rows[0].name == "Aung"
    assert roster.parse_date("2019年4月5日") == date(2019, 4, 5)
    assert roster.parse_date("20190405") == date(2019, 4, 5)


def test_plan_adds_changes_moves_and_leaves_unchanged_rows_alone() -> None:
    result = parsed(
        "1,1,1,1,山田,太郎,やまだ たろう,2019-04-02\r\n"  # unchanged
        "2,1,2,2,佐藤,花子,さとう はなこ,2019-05-01\r\n"  # moves from 1組 to 2組
        "3,2,a,1,鈴木,一郎,すずき いちろう,2018-06-01\r\n"  # reading corrected
        "4,1,1,4,新井,光,あらい ひかる,\r\n"  # new
        "5,3,1,1,森,林,もり りん,\r\n"  # no 3rd grade class
        "6,1,1,6,木村,拓,きむら たく,\r\n"  # has left the school
    )
    current = [
        Current(11, "1", "山田", "太郎", "やまだ たろう", date(2019, 4, 2), 1, 1),
        Current(12, "2", "佐藤", "花子", "さとう はなこ", date(2019, 5, 1), 1, 2),
        Current(13, "3", "鈴木", "一郎", "すずき いちろ", date(2018, 6, 1), 3, 1),
        Current(16, "6", "木村", "拓", "きむら たく", None, None, None, active=False),
    ]
    plan = roster.plan(result, CLASSES, current)
    assert codes(plan.problems) == [("unknown_class", 6), ("left_student", 7)]
    assert plan.counts() == {"add": 1, "change": 1, "move": 1, "unchanged": 1}
    (move,) = plan.of("move")
    assert (move.child_id, move.from_class_id, move.class_id) == (12, 1, 2)
    (change,) = plan.of("change")
    assert change.changed == ("reading",) and change.class_id == 3
    assert plan.of("add")[0].row.student_number == "4" and not plan.ok
    # The special-needs class is found by its name, whatever the grade written.
    special = roster.plan(parsed("7,3,ひまわり学級,1,森,林,もり りん,\r\n"), CLASSES, [])
    assert special.ok and special.items[0].class_id == 4


def test_csv_cells_that_look_like_formulas_are_neutralised() -> None:
    # The cells themselves: tests/test_csv_injection.py. The roster's export as bytes:
    data = csv_bytes([["=HYPERLINK(\"http://x\")", "ok"]])
    assert data.startswith(b"\xef\xbb\xbf")
    assert next(csv.reader(io.StringIO(data.decode("utf-8-sig")))) == [
        "'=HYPERLINK(\"http://x\")", "ok"]


def test_academic_year_and_class_names() -> None:
    assert academic_year_of(date(2027, 3, 31)) == 2026
    assert academic_year_of(date(2027, 4, 1)) == 2027
    assert class_name(3, "1") == "3年1組" and class_name(2, "さくら") == "2年さくら組"
    assert class_name(0, "ひまわり") == "ひまわり"
    assert next_class(ClassRef(1, 2, "2年A組")) == (3, "3年A組")
    assert next_class(ClassRef(1, 2, "A")) == (3, "3年A組")
    assert next_class(ClassRef(1, 0, "ひまわり学級")) == (0, "ひまわり学級")


def test_rollover_by_rule_moves_up_graduates_the_top_grade_and_teachers_follow() -> None:
    classes = [ClassRef(1, 1, "1年1組"), ClassRef(2, 6, "6年1組"), ClassRef(3, 0, "ひまわり")]
    members = [Member(10, "10", "一年 生", 1, 3), Member(20, "20", "六年 生", 2, 1),
               Member(20, "20", "六年 生", 3, None), Member(30, "30", "特別 組", 3, None)]
    plan = plan_rollover(classes, members, [(100, 1), (200, 2), (300, 3)], last_grade=6)
    assert plan.ok
    assert [(m.child_id, m.to, m.number) for m in plan.moves] == [
        (10, (2, "2年1組"), 3), (30, (0, "ひまわり"), None)]
    assert [g.child_id for g in plan.graduates] == [20]
    assert plan.new_classes == [(0, "ひまわり"), (2, "2年1組")]
    assert plan.teachers == [(100, (2, "2年1組")), (300, (0, "ひまわり"))]


def test_rollover_from_the_april_list() -> None:
    classes = [ClassRef(1, 1, "1年1組"), ClassRef(2, 1, "1年2組"), ClassRef(3, 2, "2年1組")]
    members = [Member(1, "1", "a", 1, 1), Member(2, "2", "b", 2, 1), Member(3, "3", "c", 3, 1),
               Member(4, "4", "d", 1, 2)]
    listed = roster.parse("学籍番号,学年,組,出席番号\n1,2,2,5\n2,2,1,1\n3,3,1,1\n9,2,1,2\n",
                          roster.ASSIGNMENT_REQUIRED)
    plan = plan_rollover(classes, members, [], last_grade=3, assignments=listed)
    assert [(m.child_id, m.to, m.number) for m in plan.moves] == [
        (1, (2, "2年2組"), 5), (2, (2, "2年1組"), 1), (3, (3, "3年1組"), 1)]
    assert codes(plan.problems) == [("not_assigned", 0), ("unknown_student", 5)]
