"""``renraku school``: create a school (the first step on an empty database) and list them."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import select

from models import School
from models.db import transaction
from renraku.app import open_app
from renraku.rules.phone import PhoneNumber
from renraku.rules.school_settings import InvalidSchoolSettings, parse_school_settings
from renraku.services.schools import create_school
from renraku.settings import LANGUAGES, Settings


async def _create(settings: Settings, args: argparse.Namespace) -> int:
    try:
        values = parse_school_settings(
            name=args.name, reading=args.reading,
            timezone=args.timezone or settings.default_timezone, cutoff=args.cutoff,
            languages=[x.strip() for x in args.languages.split(",") if x.strip()],
            absence_line=args.absence_line, weekdays=args.weekdays.split(","),
            region=settings.default_region)
    except InvalidSchoolSettings as exc:
        print(f"renraku school create: {next(iter(exc.errors.values()))}", file=sys.stderr)
        return 2
    app = open_app(settings)
    try:
        async with transaction(app.sessions) as session:
            school = await create_school(session, values)
    finally:
        await app.close()
    print(f"school {school.id} created: {school.name} ({school.reading or 'no reading'}), "
          f"{school.timezone}, phone cutoff {school.phone_cutoff:%H:%M}")
    if not school.reading:
        print("  the phone line reads the name as written; set its reading (--reading or "
              "the school settings page) so it is spoken right")
    print(f"  next: renraku staff create --admin EMAIL --school {school.id}")
    return 0


async def _list(settings: Settings, args: argparse.Namespace) -> int:
    app = open_app(settings)
    try:
        async with app.sessions() as session:
            schools = list(await session.scalars(select(School).order_by(School.id)))
    finally:
        await app.close()
    for school in schools:
        line = PhoneNumber(school.absence_line_e164, "").national \
            if school.absence_line_e164 else "-"
        print(f"{school.id:>4}  {school.name}  ({school.reading or '-'})  {school.timezone}  "
              f"cutoff {school.phone_cutoff:%H:%M}  line {line}")
    if not schools:
        print("no schools yet: renraku school create --name NAME --reading READING")
    return 0


def run(settings: Settings, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    return {"create": _create, "list": _list}[args.action](settings, args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("school", help="create a school, list the schools")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = actions.add_parser(
        "create", help="create a school; prints its id",
        description="Everything can be changed later by the school's admin on the settings "
        "page (/staff/school).")
    q.add_argument("--name", required=True, help="official name, e.g. さくら市立さくら小学校")
    q.add_argument("--reading", default="",
                   help="the name in kana as the phone line says it, e.g. さくらしょうがっこう")
    q.add_argument("--timezone", default="",
                   help="IANA timezone (default: the default_timezone setting, Asia/Tokyo)")
    q.add_argument("--cutoff", default="20:00",
                   help="HH:MM: phone reports from then on are for the next school day "
                   "(default 20:00)")
    q.add_argument("--languages", default=",".join(LANGUAGES),
                   help="phone line languages in menu order (default ja,en,zh,es)")
    q.add_argument("--absence-line", default="", metavar="NUMBER",
                   help="the absence line's number families dial (printed on QR sheets)")
    q.add_argument("--weekdays", default="1,2,3,4,5",
                   help="school days of the week, 1 = Monday (default 1,2,3,4,5)")
    actions.add_parser("list", help="the schools with their ids")
    p.set_defaults(func=run)
