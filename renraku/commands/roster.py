"""``renraku roster import|export``: the school's children from and to CSV files.

``import`` prints the plan (additions, changes, class moves, unchanged) and every problem
with its line; it writes only when the whole file is correct, and never with ``--dry-run``.
Exit status: 0 done (or a clean dry run), 1 problems in the file, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from models import School
from models.db import transaction
from renraku.app import App, open_app
from renraku.rules.roster import ENCODINGS, Plan, RosterFileError
from renraku.rules.schoolyear import academic_year_of, class_name
from renraku.services import roster
from renraku.services.schools import school_now
from renraku.settings import Settings
from webportal.i18n import translator
from webportal.speech import children_names
from webportal.staff.roster_texts import problem_text

ACTIONS = {"add": "to add", "change": "to change", "move": "to move class",
           "unchanged": "unchanged"}


def run(settings: Settings, args: argparse.Namespace) -> int | Coroutine[Any, Any, int]:
    """Files are read and written here, around the database work of ``_run``."""
    if args.action == "export":
        return _export(settings, args)
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"renraku: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    return _import(settings, args, data)


async def _school(app: App, args: argparse.Namespace) -> tuple[School, int] | None:
    """The school of ``--school`` and the academic year asked for (default: the current)."""
    async with app.sessions() as session:
        school = await session.get(School, args.school)
    if school is None:
        print(f"renraku: no school with id {args.school}", file=sys.stderr)
        return None
    return school, args.year or academic_year_of(school_now(app.clock, school).date())


async def _export(settings: Settings, args: argparse.Namespace) -> int:
    app = open_app(settings)
    try:
        found = await _school(app, args)
        if found is None:
            return 2
        school, year = found
        async with app.sessions() as session:
            data = await roster.export_csv(session, school.id, year)
    finally:
        await app.close()
    if args.output == "-":
        sys.stdout.buffer.write(data)
    else:
        await asyncio.to_thread(Path(args.output).write_bytes, data)
        print(f"{school.name} {year}: roster written to {args.output}")
    return 0


async def _import(settings: Settings, args: argparse.Namespace, data: bytes) -> int:
    _ = translator("en")
    app = open_app(settings)
    try:
        found = await _school(app, args)
        if found is None:
            return 2
        school, year = found
        try:
            async with transaction(app.sessions) as session:
                result = await roster.import_roster(
                    session, school, data, year=year, encoding=args.encoding,
                    create_classes=args.create_classes, apply=not args.dry_run)
        except RosterFileError as exc:
            print(f"{args.file}: {problem_text(_, exc.problem)}", file=sys.stderr)
            print("nothing imported", file=sys.stderr)
            return 1
        if result.renamed:  # the phone line's name phrases follow a changed reading
            await children_names(app, result.renamed)
    finally:
        await app.close()
    print(f"{args.file}: {result.encoding}, school {school.name}, academic year {year}")
    _summary(result.plan)
    for grade, section in result.plan.new_classes:
        print(f"  new class: {class_name(grade, section)}")
    for problem in result.plan.problems:
        print(f"  {problem_text(_, problem)}", file=sys.stderr)
    if not result.plan.ok:
        print(f"{len(result.plan.problems)} problem(s): nothing imported", file=sys.stderr)
        return 1
    print("dry run: nothing written" if args.dry_run else "imported")
    return 0


def _summary(plan: Plan) -> None:
    counts = plan.counts()
    print("  " + ", ".join(f"{counts[k]} {label}" for k, label in ACTIONS.items()))
    if plan.ignored:
        print(f"  columns not used: {', '.join(plan.ignored)}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("roster", help="import or export the school's children (CSV)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = actions.add_parser(
        "import", help="add and update children from a school-affairs CSV (preview first)",
        description="Columns (Japanese or English header): 学籍番号/student_number, 学年/grade, "
        "組/class, 出席番号/number, 氏/family_name, 名/given_name, ふりがな/reading (or "
        "氏ふりがな + 名ふりがな), 生年月日/birth_date. See README, 'Roster and school year'.")
    imp.add_argument("file", help="the CSV file (UTF-8 with or without BOM, or Shift_JIS)")
    imp.add_argument("--encoding", choices=sorted(ENCODINGS), help="default: detected")
    imp.add_argument("--dry-run", action="store_true", help="show the plan, write nothing")
    imp.add_argument("--create-classes", action="store_true",
                     help="create the file's classes missing in the year (else an error)")
    exp = actions.add_parser("export", help="write the year's roster as CSV (UTF-8 with BOM)")
    exp.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    for q in (imp, exp):
        q.add_argument("--school", type=int, required=True, help="the school's id")
        q.add_argument("--year", type=int, help="academic year (default: the current one)")
    p.set_defaults(func=run)
