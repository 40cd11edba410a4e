"""``renraku web``: serve the guardian and staff web portal."""

from __future__ import annotations

import argparse
import asyncio

from renraku.app import open_app
from renraku.settings import Settings


async def run(settings: Settings, args: argparse.Namespace) -> int:
    from webportal.app import start

    app = open_app(settings)
    host, port = args.host or settings.web_host, args.port or settings.web_port
    runner = await start(app, host, port)
    print(f"web portal on http://{host}:{port}  (public URL {settings.base_url})")
    try:
        await asyncio.Event().wait()  # until Ctrl-C / SIGTERM cancels the loop
    finally:
        await runner.cleanup()
        await app.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("web", help="serve the web portal (guardians and staff)")
    p.add_argument("--host", default="", help="listen address (default: settings.web_host)")
    p.add_argument("--port", type=int, default=0, help="listen port (default: settings.web_port)")
    p.set_defaults(func=run)
