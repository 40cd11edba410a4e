"""``renraku run``: the whole platform in one process (Asterisk, FastAGI, dialer, web)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from ivr import absence_flow
from ivr import asterisk_runtime as rt
from ivr.dialer import DEMO_CHANNEL, DialerConfig
from ivr.routes import build_server
from ivr.sip_guard import RELOAD_COMMAND, SipGuard, policy_from_settings
from renraku.app import open_app
from renraku.commands.dialer import ami_port, platform_dialer, run_with_morning_jobs
from renraku.services import voicemail
from renraku.services.sip_bans import BanStore
from renraku.settings import Settings, ensure_secret
from webportal.app import start as start_web

log = logging.getLogger(__name__)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.demo:
        settings = settings.replace(demo_phones=True)
    app = open_app(settings)
    instance = None
    if not args.no_asterisk:
        try:
            instance = rt.ivr_instance(settings)
            await asyncio.to_thread(
                instance.start, lambda: rt.port_open(settings.ami_host, settings.ami_port))
        except rt.AsteriskError as exc:
            print(f"renraku run: {exc}")
            await app.close()
            return 1
    fastagi = build_server(app)
    app.start_call_database()  # a transaction at once, not a loop turn a statement
    await absence_flow.warm_up(app)
    await fastagi.start(settings.fastagi_host, settings.fastagi_port)
    runner = await start_web(app)
    port, manager = ami_port(settings)
    manager.connect()  # type: ignore[attr-defined]
    dialer = platform_dialer(app, port, dialer_config(settings))
    guard = None
    if instance is not None:
        # The SIP ban needs Asterisk's CLI socket to reload its ACL: only where this process
        # runs Asterisk (with --no-asterisk, see README "SIP password guessing").
        started = instance
        guard = SipGuard(policy_from_settings(settings), BanStore(settings.data_dir),
                         started.etc, lambda: asyncio.to_thread(started.rx, RELOAD_COMMAND),
                         app.clock)
        guard.attach(manager)
        await guard.start()
    print(f"Renraku is running — portal {settings.base_url}/")
    print(f"  staff login {settings.base_url}/staff/login · FastAGI "
          f"{settings.fastagi_host}:{settings.fastagi_port} · AMI {settings.ami_host}:"
          f"{settings.ami_port}")
    if instance is not None:
        print(f"  calls from the carrier ({settings.trunk_peer}) enter at "
              f"sip:<any number>@{settings.sip_host}:{settings.sip_port}")
        print(f"  softphone: sip:softphone@{settings.sip_host}:{settings.sip_port}, password "
              f"{ensure_secret(settings, 'softphone_password')} — dial 1 (山田), 2 (佐藤, "
              "landline), 3 (own number) or 8000 (admin)")
        if settings.demo_phones:
            print("  demo calls: broadcasts ring the softphone when it is registered, else a "
                  "built-in household answers and presses 1")
    print("  Ctrl-C stops everything.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    importer = asyncio.create_task(voicemail.import_loop(app, stop))
    try:
        await run_with_morning_jobs(app, dialer, stop)
    finally:
        stop.set()
        await importer
        if guard is not None:
            await guard.close()
        manager.close()  # type: ignore[attr-defined]
        await fastagi.stop()
        await runner.cleanup()
        if instance is not None:
            await asyncio.to_thread(instance.stop)
        await app.close()
    return 0


def dialer_config(settings: Settings) -> DialerConfig:
    """The demo rings its own phones (dialplans/demo.conf); everything else the carrier."""
    return DialerConfig(channel=DEMO_CHANNEL) if settings.demo_phones else DialerConfig()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run everything: Asterisk, call flows, dialer and web portal")
    p.add_argument("--no-asterisk", action="store_true",
                   help="Asterisk runs elsewhere (e.g. its own container)")
    p.add_argument("--demo", action="store_true",
                   help="campaign calls ring the softphone or a built-in household, "
                        "not the carrier (as `make run` does)")
    p.set_defaults(func=run)
