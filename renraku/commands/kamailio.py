"""``renraku kamailio``: the cluster's SIP proxy in front of the IVR Asterisk nodes."""

from __future__ import annotations

import argparse
import sys

from ivr.kamailio_runtime import KamailioError, kamailio_instance
from renraku.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        kam = kamailio_instance(settings)
        if args.action == "render":
            print(f"configuration written to {kam.cfg}")
        elif args.action == "start":
            pid = kam.start()
            print(f"Kamailio running (pid {pid}) on {settings.kamailio_listen}: calls from "
                  f"{settings.kamailio_carrier} go to {settings.kamailio_nodes}")
        elif args.action == "stop":
            kam.stop()
            print("Kamailio stopped")
        elif args.action == "status":
            if kam.pid() is None:
                print("not running")
                return 3
            for uri, up in sorted(kam.nodes().items()):
                print(f"{uri}\t{'up' if up else 'DOWN'}")
    except KamailioError as exc:
        print(f"renraku kamailio: {exc}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "kamailio",
        help="the cluster's SIP proxy: render, start, stop; status lists the IVR nodes",
        description="Kamailio's dispatcher spreads the carrier's calls over the IVR "
        "Asterisk nodes (kamailio_nodes) and probes them with OPTIONS every "
        "kamailio_probe_s seconds; campaign calls from the nodes leave to kamailio_carrier.",
    )
    p.add_argument("action", choices=["render", "start", "stop", "status"])
    p.set_defaults(func=run, needs_schema=False)
