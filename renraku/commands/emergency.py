"""``renraku emergency``: one announcement to every family by voice, email and the portal.

Creates, for each school (``--school ID``, repeatable; every school by default), a running
voice + email campaign and a school-wide notice published now (renraku.services.emergency),
then sends the emails at once. The running dialers call the households; a failed email is
retried by the dialer.
"""

from __future__ import annotations

import argparse

from models import Campaign
from models.db import transaction
from renraku.app import open_app
from renraku.services import emergency
from renraku.services.broadcast_mail import send_due_emails
from renraku.settings import Settings


async def run(settings: Settings, args: argparse.Namespace) -> int:
    message = {"ja": args.message}
    for lang in ("en", "zh", "es"):
        if text := getattr(args, f"message_{lang}"):
            message[lang] = text
    app = open_app(settings)
    try:
        async with transaction(app.sessions) as s:
            declared = await emergency.declare(
                s, settings, title=args.title, message=message, now=app.clock.now(),
                school_ids=args.school or None)
        sent = 0
        for d in declared:
            async with app.sessions() as s:
                campaign = await s.get_one(Campaign, d.campaign_id)
            sent += await send_due_emails(app, campaign)
    finally:
        await app.close()
    for d in declared:
        print(f"school {d.school_id}: campaign {d.campaign_id} running, notice {d.notice_id}")
    print(f"{len(declared)} school(s); {sent} email(s) sent now")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("emergency", help="announce to every family at once: voice, email, portal")
    p.add_argument("--title", required=True, help="the notice's and the email's title")
    p.add_argument("--message", required=True, help="the announcement in Japanese")
    for lang in ("en", "zh", "es"):
        p.add_argument(f"--message-{lang}", default="", help=f"the announcement in {lang}")
    p.add_argument("--school", type=int, action="append", default=[],
                   help="a school's id (repeat for several; default: every school)")
    p.set_defaults(func=run)
