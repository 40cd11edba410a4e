"""``renraku demo-data``: a small believable school to try everything with."""

from __future__ import annotations

import argparse

from models.db import transaction
from renraku.app import open_app
from renraku.demo import DEMO_PASSWORD, create_demo_data
from renraku.settings import Settings


async def run(settings: Settings, args: argparse.Namespace) -> int:
    app = open_app(settings)
    try:
        async with transaction(app.sessions) as session:
            result = await create_demo_data(session, app.clock.now())
    finally:
        await app.close()
    if not result.created:
        print("demo data already present; nothing changed")
        return 0
    print(
        f"demo data: {result.schools} schools, {result.children} children, "
        f"{result.guardians} guardians"
    )
    print(
        f"  staff:     admin@sakura.example.jp / mori@sakura.example.jp  (password {DEMO_PASSWORD})"
    )
    print("  ひまわり学級 (special needs): hayashi@sakura.example.jp; Emily Smith's child is "
          "in it and in 1年1組")
    print(f"  guardian:  hanako@example.jp  (password {DEMO_PASSWORD}); phone 090-1000-0001")
    print("  landline:  03-3000-0001 (佐藤ハル, registered by the school)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo-data", help="create demo schools, families and events (idempotent)")
    p.set_defaults(func=run)
