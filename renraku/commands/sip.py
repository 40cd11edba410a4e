"""``renraku sip bans``: the addresses banned for SIP password guessing, and the history;
``renraku sip unban ADDRESS`` lifts one (the running guard takes the request).

``renraku run`` bans (see ivr/sip_guard.py); this command only reads what it keeps in the
data folder, so it works while the line runs and needs no database.
"""

from __future__ import annotations

import argparse
from datetime import datetime

from renraku.clock import clock_from_settings
from renraku.services.sip_bans import BanStore
from renraku.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    store = BanStore(settings.data_dir)
    if args.action == "unban":
        if not args.address:
            print("renraku sip unban: which address?")
            return 2
        if args.address not in {ban.address for ban in store.load()}:
            print(f"{args.address} is not banned")
            return 1
        store.request_unban(args.address)
        print(f"{args.address}: lifted within a second while renraku run runs, else at its "
              "next start")
        return 0
    now = clock_from_settings(settings.testing, settings.fake_now).now()
    active = [ban for ban in store.load() if ban.until > now]
    print(f"SIP bans in force: {len(active)} (after {settings.sip_ban_failures} failures in "
          f"{settings.sip_ban_window_s} s, for {settings.sip_ban_seconds} s)")
    for ban in active:
        left = int((ban.until - now).total_seconds())
        print(f"  {ban.address:<39} since {ban.since:%Y-%m-%d %H:%M:%S} UTC, {left} s left, "
              f"{ban.failures} failures ({ban.reason})")
    history = store.history(args.last)
    if history:
        print(f"History (last {len(history)}):")
    for entry in history:
        at = datetime.fromisoformat(entry["at"])
        by = f" by {entry['by']}" if entry.get("by") else ""
        print(f"  {at:%Y-%m-%d %H:%M:%S} {entry['event']:<5} {entry['address']}{by} "
              f"({entry.get('reason', '')})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sip", help="SIP security: the addresses banned for password guessing")
    p.add_argument("action", choices=["bans", "unban"],
                   help="bans: those in force and the history; unban ADDRESS: lift one now")
    p.add_argument("address", nargs="?", help="for unban: the banned address")
    p.add_argument("--last", type=int, default=20, metavar="N",
                   help="history entries to show (default 20)")
    p.set_defaults(func=run, needs_schema=False)
