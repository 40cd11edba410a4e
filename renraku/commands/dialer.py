"""``renraku dialer``: run the broadcast dialer (voice calls over AMI, campaign emails)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from ivr.ami import AMIClient
from ivr.dialer import DEMO_CHANNEL, Dialer, DialerConfig, PanoramiskPort
from models import Campaign
from renraku.app import App, open_app
from renraku.services.broadcast_mail import send_due_emails
from renraku.settings import Settings, ensure_secret

log = logging.getLogger(__name__)


def ami_port(settings: Settings) -> tuple[PanoramiskPort, AMIClient]:
    """An AMI client that reconnects with backoff; the dialer waits while it is down.

    Call ``connect()`` on the returned client (inside the running loop) to start it.
    """
    manager = AMIClient(settings.ami_host, settings.ami_port, settings.ami_user,
                        ensure_secret(settings, "ami_secret"))
    return PanoramiskPort(manager), manager


def platform_dialer(app: App, port: PanoramiskPort, config: DialerConfig) -> Dialer:
    """The dialer as ``renraku dialer`` and ``renraku run`` use it: it sends the campaign
    emails and renders a campaign's speech before its first call."""

    async def mailer(campaign: Campaign) -> None:
        await send_due_emails(app, campaign)

    async def prepare(campaign: Campaign) -> None:
        from prompts.campaign import prerender_campaign

        async with app.sessions() as s:
            await prerender_campaign(app.settings, s, campaign.id)

    return Dialer(app, port, config, mailer=mailer, prepare=prepare)


async def run_with_morning_jobs(app: App, dialer: Dialer, stop: asyncio.Event) -> None:
    """The dialer, and beside it the schools' timed morning jobs (renraku.services.morning)."""
    from renraku.services import digest, morning

    await asyncio.gather(dialer.run(stop), morning.loop(app, stop, digest.send_digest))


async def run(settings: Settings, args: argparse.Namespace) -> int:
    app = open_app(settings)
    port, manager = ami_port(settings)
    manager.connect()
    default = DEMO_CHANNEL if settings.demo_phones else DialerConfig.channel
    config = DialerConfig(
        channel=args.channel or default, context=args.context, caller_id=args.caller_id,
        ring_timeout_s=args.ring_timeout,
    )
    dialer = platform_dialer(app, port, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await run_with_morning_jobs(app, dialer, stop)
    finally:
        manager.close()
        await app.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dialer", help="run the broadcast dialer (calls and campaign emails)")
    p.add_argument("--channel", default="",
                   help="dial string; {number} is the E.164 number without '+' (default: "
                        f"{DialerConfig.channel}, or the demo's phones with demo_phones on)")
    p.add_argument("--context", default=DialerConfig.context, help="dialplan context of calls")
    p.add_argument("--caller-id", default="", help="caller ID shown to families")
    p.add_argument("--ring-timeout", type=float, default=DialerConfig.ring_timeout_s,
                   help="seconds to ring before giving up (no answer)")
    p.set_defaults(func=run)
