"""The ``renraku`` console command.

Each module in :mod:`renraku.commands` registers its own subcommand, so a feature adds its
command without touching this file. A command that works without the database schema
(``db``, ``config``...) says so with ``set_defaults(needs_schema=False)``; every other
command is refused with "run renraku db upgrade" while the schema is missing or behind.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import pkgutil
import sys
from collections.abc import Sequence

from renraku import __version__, call_logging, commands, eventloop
from renraku.settings import Settings, load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="renraku",
        description="Renraku (連絡): school-to-home contact over the phone and the web.",
    )
    parser.add_argument("--version", action="version", version=f"renraku {__version__}")
    parser.add_argument(
        "-c", "--config", help="TOML settings file (default: $RENRAKU_CONFIG or ./renraku.toml)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    # Every command is checked against an outdated schema unless it says it needs none.
    parser.set_defaults(needs_schema=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"renraku.commands.{info.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    call_logging.install()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format=call_logging.FORMAT)
    try:
        settings = load_settings(args.config)
    except (OSError, ValueError) as exc:
        print(f"renraku: bad settings: {exc}", file=sys.stderr)
        return 2
    try:
        eventloop.chosen()
    except ValueError as exc:
        print(f"renraku: {exc}", file=sys.stderr)
        return 2
    if args.needs_schema and (problem := _schema_problem(settings)):
        print(f"renraku {args.command}: {problem}", file=sys.stderr)
        return 1
    result = args.func(settings, args)
    if inspect.isawaitable(result):
        result = eventloop.run(result)
    return int(result or 0)


def _schema_problem(settings: Settings) -> str | None:
    """Checked before every command that uses the database (all but those that set
    ``needs_schema=False``), so none of them meets a missing table as a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from models.migrate import schema_problem

    try:
        problem = asyncio.run(schema_problem(settings.db_url))
    except (OSError, SQLAlchemyError) as exc:
        where = settings.redacted()["database_url"] or settings.sqlite_path
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"cannot open the database at {where} ({first}); check database_url"
    return f"{problem}; run renraku db upgrade" if problem else None


if __name__ == "__main__":
    sys.exit(main())
