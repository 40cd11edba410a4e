"""``renraku web``: serve the guardian and staff web portal.

One process serves one core (~40–75 pages/s each in benchmarks/portal.py), so by default
one worker per core shares the port (SO_REUSEPORT: the kernel spreads the connections).
Workers keep no state of their own that matters: sessions are signed cookies, the live
register polls the database, and background retries claim their rows.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
from multiprocessing.connection import wait

from renraku import eventloop
from renraku.app import open_app
from renraku.settings import Settings, ensure_secret


async def serve(settings: Settings, host: str, port: int, reuse_port: bool = False) -> None:
    """One portal process until it is cancelled (Ctrl-C) or sent SIGTERM."""
    from webportal.app import start

    app = open_app(settings)
    runner = await start(app, host, port, reuse_port=reuse_port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await app.close()


def _worker(settings: Settings, host: str, port: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops workers with SIGTERM
    eventloop.run(serve(settings, host, port, reuse_port=True))


async def run(settings: Settings, args: argparse.Namespace) -> int:
    host, port = args.host or settings.web_host, args.port or settings.web_port
    workers = args.workers or os.cpu_count() or 1
    print(f"web portal on http://{host}:{port}  (public URL {settings.base_url}), "
          f"{workers} worker{'s' if workers > 1 else ''}")
    if workers == 1:
        await serve(settings, host, port)
        return 0
    ensure_secret(settings, "secret_key")  # made once here, not raced by the workers
    # spawn, not fork: this process already runs an event loop.
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(settings, host, port), daemon=True)
             for _ in range(workers)]
    for p in procs:
        p.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    # Until Ctrl-C / SIGTERM, or a worker dies (then stop all: a supervisor restarts).
    died = asyncio.ensure_future(asyncio.to_thread(wait, [p.sentinel for p in procs]))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({died, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        for p in procs:
            p.terminate()
        for p in procs:
            await asyncio.to_thread(p.join, 10)
        await died  # returns now that every worker has ended
    return 0 if stop.is_set() else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("web", help="serve the web portal (guardians and staff)")
    p.add_argument("--host", default="", help="listen address (default: settings.web_host)")
    p.add_argument("--port", type=int, default=0, help="listen port (default: settings.web_port)")
    p.add_argument("--workers", type=int, default=0,
                   help="portal processes sharing the port (default: one per CPU core)")
    p.set_defaults(func=run)
