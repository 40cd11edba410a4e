"""``renraku db``: schema migrations."""

from __future__ import annotations

import argparse

from models import migrate
from renraku.settings import Settings


async def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "upgrade":
        await migrate.upgrade(settings.db_url, args.revision)
        where = settings.redacted()["database_url"] or settings.sqlite_path
        print(f"database at revision {args.revision}: {where}")
    elif args.action == "downgrade":
        await migrate.downgrade(settings.db_url, args.revision)
        print(f"database downgraded to {args.revision}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="create or migrate the database schema (Alembic)")
    p.add_argument("action", choices=["upgrade", "downgrade"], help="direction")
    p.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    p.set_defaults(func=run, needs_schema=False)
