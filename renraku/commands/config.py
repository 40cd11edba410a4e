"""``renraku config``: show the effective settings (secrets masked)."""

from __future__ import annotations

import argparse
import json

from renraku.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    print(json.dumps(settings.redacted(), indent=2, ensure_ascii=False))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="show the effective settings, secrets masked")
    p.set_defaults(func=run, needs_schema=False)
