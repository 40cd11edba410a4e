"""``renraku year rollover``: the new academic year (進級処理), previewed first.

Exit status: 0 done (or a clean dry run), 1 refused or problems, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from models import School
from models.db import transaction
from renraku.app import open_app
from renraku.rules.roster import ENCODINGS, RosterFileError
from renraku.services.schoolyear import Rollover, RolloverRefused, rollover
from renraku.settings import Settings
from webportal.i18n import translator
from webportal.staff.roster_texts import problem_text, say


def run(settings: Settings, args: argparse.Namespace) -> int | Coroutine[Any, Any, int]:
    assignments = None
    if args.assignments:
        try:
            assignments = Path(args.assignments).read_bytes()
        except OSError as exc:
            print(f"renraku: cannot read {args.assignments}: {exc.strerror}", file=sys.stderr)
            return 2
    return _rollover(settings, args, assignments)


async def _rollover(settings: Settings, args: argparse.Namespace,
                    assignments: bytes | None) -> int:
    _ = translator("en")
    app = open_app(settings)
    try:
        async with transaction(app.sessions) as session:
            school = await session.get(School, args.school)
            if school is None:
                print(f"renraku: no school with id {args.school}", file=sys.stderr)
                return 2
            result = await rollover(session, school, args.to, app.clock.now(),
                                    assignments=assignments, encoding=args.encoding,
                                    last_grade=args.last_grade, apply=not args.dry_run)
    except RolloverRefused as exc:
        print(f"renraku: {say(_, exc.code, exc.params)}", file=sys.stderr)
        return 1
    except RosterFileError as exc:
        print(f"{args.assignments}: {problem_text(_, exc.problem)}", file=sys.stderr)
        return 1
    finally:
        await app.close()
    _summary(result)
    for problem in result.plan.problems:
        print(f"  {problem_text(_, problem)}", file=sys.stderr)
    if not result.plan.ok:
        print(f"{len(result.plan.problems)} problem(s): nothing changed", file=sys.stderr)
        return 1
    if args.dry_run:
        print("dry run: nothing written")
        if not result.ready:
            print(say(_, "too_early", {"day": result.starts_on.isoformat()}))
    else:
        print(f"academic year {args.to} started")
    return 0


def _summary(result: Rollover) -> None:
    plan = result.plan
    print(f"{result.from_year} → {result.to_year}: {len(plan.moves)} enrolments in "
          f"{len(plan.new_classes)} classes, {len(plan.graduates)} graduate(s) "
          f"(grade {result.last_grade}), {len(plan.teachers)} teacher assignment(s)")
    for grade, name in plan.new_classes:
        count = sum(1 for m in plan.moves if m.to == (grade, name))
        print(f"  {name}: {count}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("year", help="the school year: rollover to the next one (進級処理)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    r = actions.add_parser(
        "rollover", help="move children up a grade, graduate the last grade",
        description="Without --assignments, children move by rule: same class letter, next "
        "grade (2年1組 → 3年1組). Teachers follow their class; graduates keep their history.")
    r.add_argument("--school", type=int, required=True, help="the school's id")
    r.add_argument("--to", type=int, required=True, help="the new academic year, e.g. 2027")
    r.add_argument("--assignments", help="CSV of new classes: 学籍番号, 学年, 組, 出席番号")
    r.add_argument("--encoding", choices=sorted(ENCODINGS), help="of --assignments")
    r.add_argument("--last-grade", type=int, help="the grade that graduates (default: highest)")
    r.add_argument("--dry-run", action="store_true", help="show the plan, write nothing")
    p.set_defaults(func=run)
