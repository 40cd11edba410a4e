"""``renraku asterisk``: provision, start, stop and talk to the IVR's Asterisk."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ivr import asterisk_runtime as rt
from renraku.settings import Settings, ensure_secret


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.action == "provision":
            if (found := rt.system_asterisk()) is not None:
                print(f"using the system Asterisk at {found}")
            else:
                rt.provision(settings.asterisk_root)
            return 0
        if args.action == "sync-sounds":
            written, same = asyncio.run(sync_sounds(settings))
            print(f"{args.node}: {written} prompts written, {same} already there "
                  f"({settings.sounds_dir.resolve()})")
            return 0
        inst = rt.ivr_instance(settings, name=args.node, render_only=args.action == "render")
        if args.action == "render":
            print(f"configuration written to {inst.etc}")
        if args.action == "start":
            pid = inst.start(ready=lambda: rt.port_open(settings.ami_host, settings.ami_port))
            print(f"Asterisk running (pid {pid}); AMI {settings.ami_host}:{settings.ami_port}")
            print(
                f"  calls enter at sip:<number>@{settings.sip_host}:{settings.sip_port} "
                f"from the carrier peer {settings.trunk_peer}"
            )
            print(
                f"  softphone: user 'softphone', password "
                f"{ensure_secret(settings, 'softphone_password')!r}, "
                f"server {settings.sip_host}:{settings.sip_port} (dial 1, 2, 3 or 8000)"
            )
        elif args.action == "stop":
            inst.stop()
            print("Asterisk stopped")
        elif args.action == "status":
            pid = inst.pid()
            print(f"running (pid {pid})" if pid else "not running")
            return 0 if pid else 3
        elif args.action == "cli":
            print(inst.rx(" ".join(args.command) or "core show version"), end="")
    except rt.AsteriskError as exc:
        print(f"renraku asterisk: {exc}", file=sys.stderr)
        return 1
    return 0


async def sync_sounds(settings: Settings) -> tuple[int, int]:
    """The active prompts from the database into this node's sounds folder (for what the
    dialplan plays without an app node: the voicemail fallback)."""
    from models.db import create_engine, session_factory
    from prompts.media import sync_node

    engine = create_engine(settings.db_url)
    try:
        return await sync_node(session_factory(engine), settings.sounds_dir.resolve())
    finally:
        await engine.dispose()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "asterisk",
        help="provision, start, stop the IVR's Asterisk; run CLI commands",
        description="Uses a system Asterisk >= 20 when installed, else Debian "
        "sid's Asterisk 22 in a cached debootstrap root.",
    )
    p.add_argument("action", choices=["provision", "render", "start", "stop", "status", "cli",
                                      "sync-sounds"],
                   help="sync-sounds: write the active prompts from the database into the "
                        "node's sounds folder (run at the node's start in a city)")
    p.add_argument("command", nargs="*", help="for cli: the command, e.g. dialplan show")
    p.add_argument("--node", default="ivr", metavar="NAME",
                   help="this IVR node's name in a cluster: its folder under "
                        "<data_dir>/asterisk/ and the prefix of its calls' unique ids "
                        "(default: ivr)")
    p.set_defaults(func=run, needs_schema=False)
