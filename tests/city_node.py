"""A city's app-node processes for the cluster tests: killed with SIGKILL like real ones.

``python -m tests.city_node app SETTINGS HOST PORT NOW [VOICE]``: an app node's FastAGI
server (the absence flow with its clock at NOW, ISO; the broadcast flow on the system clock)
on the database of ``settings.database_url``, with short tones for voices (VOICE "bench":
one tone per prompt key, as the peak benchmarks use).

``python -m tests.city_node dialer SETTINGS CONFIG``: the broadcast dialer of an app node,
wired as ``renraku dialer`` wires it (an AMI client to ``settings.ami_host:ami_port`` that
reconnects, calls carrying ``settings.node_name``), without the morning jobs, the campaign
emails and the speech rendering the test does not need. CONFIG is a JSON object of
:class:`ivr.dialer.DialerConfig` fields.

SETTINGS is the pickled, base64-encoded Settings. Each prints ``ready`` once it serves (the
dialer: once its AMI client is logged in) and dies with its parent (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import base64
import json
import pickle
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from renraku import eventloop
from renraku.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def encode(settings: Settings) -> str:
    return base64.b64encode(pickle.dumps(settings)).decode()


def spawn(kind: str, settings: Settings, *args: str,
          log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a node process and wait for its ``ready`` line (its log in ``log``)."""
    from ivr.asterisk_runtime import die_with_parent

    err = open(log, "ab") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.city_node", kind, encode(settings), *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=err, preexec_fn=die_with_parent)
    if log is not None:
        err.close()  # the child has its own copy
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != b"ready":
        proc.kill()
        raise RuntimeError(f"{kind} node did not start: {line!r} (log {log})")
    return proc


async def app_node(settings: Settings, host: str, port: int, now: datetime,
                   voice: str = "tone") -> None:
    from benchmarks.dialer import Voice
    from benchmarks.phones import bench_voice
    from ivr import absence_flow
    from ivr.broadcast_flow import BroadcastCall
    from ivr.fastagi import AGIChannel, FastAGIServer, Hangup
    from models.db import create_engine, session_factory
    from renraku.app import App
    from renraku.clock import FakeClock, SystemClock
    from tests.absence_fakes import ToneVoice

    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    absence_app = App(settings, FakeClock(now), engine, sessions)
    campaign_app = App(settings, SystemClock(), engine, sessions)
    # "bench": one tone per prompt key, whatever its fields (benchmarks.phones.bench_voice),
    # so a benchmark's calls do not run sox for every child's name in the middle of the peak
    absence_voice = bench_voice(settings) if voice == "bench" else ToneVoice(settings)
    campaign_voice = Voice(settings.sounds_dir)
    await absence_flow.warm_up(absence_app)
    server = FastAGIServer("127.0.0.0/8")  # the IVR nodes' loopback addresses

    async def absence(agi: AGIChannel) -> None:
        await absence_flow.handle(agi, absence_app, absence_voice)

    async def broadcast(agi: AGIChannel) -> None:
        await BroadcastCall(agi, campaign_app, campaign_voice, Hangup).run()

    server.route("absence", absence)
    server.route("broadcast", broadcast)
    await server.start(host, port)
    print("ready", flush=True)
    await asyncio.Event().wait()  # until killed


async def dialer_node(settings: Settings, config: dict[str, object]) -> None:
    from ivr.dialer import Dialer, DialerConfig
    from renraku.app import open_app
    from renraku.clock import SystemClock
    from renraku.commands.dialer import ami_port

    app = open_app(settings, SystemClock())
    port, manager = ami_port(settings)
    manager.connect()
    while not port.connected:  # noqa: ASYNC110 - the client's state, not an event
        await asyncio.sleep(0.05)
    dialer = Dialer(app, port, DialerConfig(**config))  # type: ignore[arg-type]
    print("ready", flush=True)
    await dialer.run()


def main(argv: list[str]) -> None:
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(message)s")
    kind, settings = argv[0], pickle.loads(base64.b64decode(argv[1]))
    if kind == "app":
        eventloop.run(app_node(settings, argv[2], int(argv[3]), datetime.fromisoformat(argv[4]),
                             *argv[5:6]))
    elif kind == "dialer":
        eventloop.run(dialer_node(settings, json.loads(argv[2])))
    else:
        raise SystemExit(f"unknown node kind {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
