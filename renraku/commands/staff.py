"""``renraku staff create``: a school's first administrator (or any staff member).

No password on the command line (it would stay in the shell history and the process
list): the command prints a one-time set-password link, valid 24 hours, or asks for the
password at a prompt with ``--password-prompt``.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from models.db import transaction
from models.enums import StaffRole
from renraku.app import open_app
from renraku.services import staff as staff_svc
from renraku.services.passwords import STAFF_MIN
from renraku.settings import LANGUAGES, Settings

MESSAGES = {
    "name": "the name must not be empty",
    "email": "that is not an email address",
    "role": "unknown role",
    "password_short": f"the password must be at least {STAFF_MIN} characters",
    "password_common": "that password is one of the most common ones; choose another",
    "school": "no school with id {school} (renraku school list shows them)",
    "email_taken": "a staff account with the email {email} already exists",
}


def _read_password() -> str | None:
    """Twice at a terminal (hidden); one line from a pipe (scripted setups)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        print("renraku staff create: the two passwords differ", file=sys.stderr)
        return None
    return first


async def _create(settings: Settings, args: argparse.Namespace) -> int:
    email = args.admin or args.email
    role = StaffRole.ADMIN if args.admin else args.role
    password = None
    if args.password_prompt:
        password = _read_password()
        if password is None:
            return 2
    app = open_app(settings)
    link = ""
    try:
        async with transaction(app.sessions) as session:
            person = await staff_svc.create_staff(
                session, args.school, name=args.name or email.split("@")[0], email=email,
                role=role, password=password, class_ids=[], language=args.language)
            if password is None:
                link = await staff_svc.password_link(session, person, settings, app.clock.now())
    except staff_svc.StaffError as exc:
        text = MESSAGES[str(exc)].format(school=args.school, email=email.strip().lower())
        print(f"renraku staff create: {text}", file=sys.stderr)
        return 1
    finally:
        await app.close()
    print(f"staff {person.id} created: {person.email} ({person.role}) at school {args.school}")
    if link:
        print("  set the password with this link (once, within 24 hours), then log in at "
              f"{settings.base_url}/staff/login:")
        print(f"  {link}")
    else:
        print(f"  log in at {settings.base_url}/staff/login")
    return 0


def run(settings: Settings, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    return {"create": _create}[args.action](settings, args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("staff", help="create staff accounts (the first admin of a school)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = actions.add_parser(
        "create", help="create a staff account; prints a one-time set-password link",
        description="Without --password-prompt, prints a link (valid 24 h, usable once) where "
        "the person sets their own password. More staff, classes, phone and PIN: the admin's "
        "staff page (/staff/accounts).")
    who = q.add_mutually_exclusive_group(required=True)
    who.add_argument("--admin", metavar="EMAIL", help="create a school administrator")
    who.add_argument("--email", metavar="EMAIL", help="create staff with --role")
    q.add_argument("--role", choices=[r.value for r in StaffRole], default=StaffRole.TEACHER,
                   help="with --email (default teacher)")
    q.add_argument("--school", type=int, required=True, metavar="ID",
                   help="the school's id (renraku school list)")
    q.add_argument("--name", default="", help="shown name (default: the email's user part)")
    q.add_argument("--language", choices=LANGUAGES, default="ja",
                   help="language of the recording line's prompts (default ja)")
    q.add_argument("--password-prompt", action="store_true",
                   help="ask for the password now instead of printing a link")
    p.set_defaults(func=run)
