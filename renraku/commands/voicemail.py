"""``renraku voicemail import``: voicemails Asterisk recorded alone → voicemail reports.

`renraku run` imports every IMPORT_EVERY_S seconds; this command does it once (a cron job
for installations that run the parts as separate services, or right after an outage).
"""

from __future__ import annotations

import argparse

from renraku.app import open_app
from renraku.services import voicemail
from renraku.settings import Settings


async def run(settings: Settings, args: argparse.Namespace) -> int:
    app = open_app(settings)
    try:
        added = await voicemail.import_spool(app)
    finally:
        await app.close()
    print(f"{added} new voicemail message(s) imported from {settings.voicemail_dir}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("voicemail", help="import the absence line's voicemail fallback messages")
    p.add_argument("action", choices=["import"],
                   help="import: turn finished recordings into voicemail reports (idempotent)")
    p.set_defaults(func=run)
