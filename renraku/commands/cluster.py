"""``renraku cluster up|down|status|call``: a whole city on this machine, to try it out.

``up`` starts, each on its own loopback address (ivr.city): Kamailio, two IVR Asterisk
nodes, the carrier simulator sending its calls to Kamailio, and two app nodes (``renraku
run --no-asterisk``: FastAGI, dialer and portal) against one PostgreSQL. It stays in the
foreground; Ctrl-C (or ``renraku cluster down`` from another terminal) stops everything,
and every part is tied to it, so nothing outlives it even if it is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ivr import asterisk_runtime as rt
from ivr import city as town
from renraku.settings import Settings, ensure_secret

DEFAULT_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
STATE = "cluster.json"
RTP_BASE = 44000  # away from the test harness's ranges; 100 ports per Asterisk
APP_NAMES = ("app1", "app2")


def _say(message: str) -> None:
    print(message, flush=True)


def _data(settings: Settings, args: argparse.Namespace) -> Path:
    return (Path(args.data) if args.data else settings.data_dir / "city").resolve()


def _state(data: Path) -> dict[str, Any] | None:
    try:
        return json.loads((data / STATE).read_text())
    except (OSError, ValueError):
        return None


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def up(settings: Settings, args: argparse.Namespace) -> int:
    data = _data(settings, args)
    if (state := _state(data)) is not None and town.alive(state["pid"]):
        print(f"renraku cluster: already up (pid {state['pid']}); renraku cluster down",
              file=sys.stderr)
        return 1
    db = args.db or settings.database_url or DEFAULT_DB
    started: list[bool] = []
    stop = _on_stop_signals(started)
    city: town.City | None = None
    apps: list[subprocess.Popen[bytes]] = []
    try:
        _say(f"database {_redacted(db)}: bringing the schema up to date…")
        from models.migrate import upgrade

        asyncio.run(upgrade(db))
        root = rt.sid_root_or_system(settings.asterisk_root)
        web_ports = [town.free_port() for _ in town.APP_HOSTS]
        plan = town.CityPlan(data / "ivr", tuple(town.free_port() for _ in town.APP_HOSTS))
        city = town.City(plan)
        base = settings.replace(database_url=db)
        from renraku.commands.asterisk import sync_sounds

        written, same = asyncio.run(sync_sounds(base.replace(data_dir=plan.data)))
        _say(f"IVR nodes' own sounds (the voicemail fallback's): {written} prompts written, "
             f"{same} already there")
        for i, (name, host) in enumerate(town.NODE_HOSTS.items()):
            _say(f"IVR node {name}: Asterisk at sip:{host}:{plan.node_sip[name]}…")
            city.start_node(base, name, (RTP_BASE + 100 * i, RTP_BASE + 100 * i + 98))
        _say(f"Kamailio at sip:{plan.kamailio_listen}, probing the nodes every "
             f"{town.PROBE_S} s…")
        city.start_kamailio(base)
        _say(f"carrier simulator at sip:127.0.0.1:{plan.carrier_sip}, trunk to Kamailio…")
        city.start_carrier(root, secrets.token_hex(16), (RTP_BASE + 200, RTP_BASE + 298))
        secret_key = ensure_secret(base.replace(data_dir=data), "secret_key")
        for i, host in enumerate(town.APP_HOSTS):
            _say(f"app node {APP_NAMES[i]}: portal http://{host}:{web_ports[i]}/, FastAGI "
                 f"{host}:{plan.fastagi_ports[i]}…")
            apps.append(_start_app(city, i, data, db, web_ports[i], secret_key))
        for i, app in enumerate(apps):  # the portal opens last: the node is up
            _wait_app(app, town.APP_HOSTS[i], web_ports[i], data / f"{APP_NAMES[i]}.log")
        city.wait_nodes({n: True for n in town.NODE_HOSTS}, within=20)
        _write_state(data, city, apps, web_ports, db)
        started.append(True)
        _summary(city, web_ports, data)
        while not stop and all(app.poll() is None for app in apps):
            time.sleep(0.2)
        for i, app in enumerate(apps):
            if app.poll() is not None and not stop:
                _say(f"app node {APP_NAMES[i]} exited ({app.returncode}); see "
                     f"{data / (APP_NAMES[i] + '.log')}")
    except (rt.AsteriskError, OSError, subprocess.CalledProcessError) as exc:
        print(f"renraku cluster: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # stopped while starting: what did start stops below
        return 130
    finally:
        _say("stopping the city…")
        for app in apps:  # all at once: each lets its calls in progress finish (10 s)
            if app.poll() is None:
                app.terminate()
        for app in apps:
            town.stop_process(app)
        if city is not None:
            city.stop()
        (data / STATE).unlink(missing_ok=True)
        _say("stopped")
    return 0


def _on_stop_signals(started: list[bool]) -> list[int]:
    """SIGINT/SIGTERM/SIGHUP: once the city is up, a flag the foreground loop checks; while
    it starts, an interruption (``up`` then stops whatever had started)."""
    stop: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        stop.append(signum)
        if not started:
            raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
    return stop


def _start_app(city: town.City, i: int, data: Path, db: str, web_port: int,
               secret_key: str) -> subprocess.Popen[bytes]:
    host, name = town.APP_HOSTS[i], APP_NAMES[i]
    node = city.node_settings[list(town.NODE_HOSTS)[i]]  # its dialer's Asterisk
    env = {
        **os.environ,
        "RENRAKU_DATA_DIR": str(data / name), "RENRAKU_DATABASE_URL": db,
        "RENRAKU_NODE_NAME": name, "RENRAKU_SECRET_KEY": secret_key,
        "RENRAKU_FASTAGI_HOST": host, "RENRAKU_FASTAGI_PORT": str(city.plan.fastagi_ports[i]),
        "RENRAKU_FASTAGI_PEERS": city.plan.fastagi_peers,
        "RENRAKU_FASTAGI_ALLOWED": "127.0.0.0/8",
        "RENRAKU_WEB_HOST": host, "RENRAKU_WEB_PORT": str(web_port),
        "RENRAKU_SOUNDS_URL": f"http://{host}:{web_port}/sounds",
        "RENRAKU_AMI_HOST": node.ami_host, "RENRAKU_AMI_PORT": str(node.ami_port),
        "RENRAKU_AMI_SECRET": ensure_secret(node, "ami_secret"),
        "RENRAKU_TRUNK_PEER": city.plan.kamailio_listen,
    }
    (data / name).mkdir(parents=True, exist_ok=True)
    log = open(data / f"{name}.log", "ab")  # the child keeps it
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "renraku.cli", "run", "--no-asterisk"], env=env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches `up`, which stops the parts in order
            preexec_fn=rt.die_with_parent)
    finally:
        log.close()


def _wait_app(app: subprocess.Popen[bytes], host: str, port: int, log: Path,
              within: float = 90) -> None:
    deadline = time.monotonic() + within
    while not rt.port_open(host, port):
        if app.poll() is not None or time.monotonic() > deadline:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise rt.AsteriskError(f"app node at {host} did not start:\n{tail}")
        time.sleep(0.2)


def _write_state(data: Path, city: town.City, apps: list[subprocess.Popen[bytes]],
                 web_ports: list[int], db: str) -> None:
    plan = city.plan
    parts = {name: part.pid() for name, part in city.parts()}
    parts.update({APP_NAMES[i]: app.pid for i, app in enumerate(apps)})
    state = {
        "pid": os.getpid(), "parts": parts, "database": _redacted(db),
        "kamailio": plan.kamailio_listen, "kamailio_home": str(city.kamailio.home)
        if city.kamailio else "",
        "carrier_ami": ["127.0.0.1", plan.carrier_ami, "carrier", city.carrier_secret],
        "nodes": {n: f"{h}:{plan.node_sip[n]}" for n, h in town.NODE_HOSTS.items()},
        "portals": [f"http://{h}:{p}/" for h, p in zip(town.APP_HOSTS, web_ports,
                                                       strict=True)],
        "fastagi": plan.fastagi_peers,
    }
    path = data / STATE
    path.write_text(json.dumps(state, indent=1))
    path.chmod(0o600)  # the carrier simulator's AMI secret


def _summary(city: town.City, web_ports: list[int], data: Path) -> None:
    plan = city.plan
    _say("The city is up:")
    _say(f"  Kamailio            sip:{plan.kamailio_listen} (carrier 127.0.0.1:"
         f"{plan.carrier_sip})")
    for name, host in town.NODE_HOSTS.items():
        _say(f"  IVR node {name:<10} sip:{host}:{plan.node_sip[name]}, AMI "
             f"{host}:{plan.node_ami[name]}, log {city.nodes[name].log_file}")
    for i, host in enumerate(town.APP_HOSTS):
        _say(f"  app node {APP_NAMES[i]:<10} portal http://{host}:{web_ports[i]}/, FastAGI "
             f"{host}:{plan.fastagi_ports[i]}, log {data / (APP_NAMES[i] + '.log')}")
    _say("  place a call: renraku cluster call 09012345678 "
         f"(--data {data} if not the default)")
    _say("  Ctrl-C or `renraku cluster down` stops everything.")


def down(settings: Settings, args: argparse.Namespace) -> int:
    data = _data(settings, args)
    state = _state(data)
    if state is None or not town.alive(state["pid"]):
        _say("the city is not up")
        (data / STATE).unlink(missing_ok=True)
        return 0
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while town.alive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {name: pid for name, pid in state["parts"].items()
            if pid and town.alive(pid)}
    for pid in left.values():  # only the parts this city started, by their own ids
        os.kill(pid, signal.SIGKILL)
    _say("the city is down" + (f" (killed {', '.join(left)})" if left else ""))
    return 0


def status(settings: Settings, args: argparse.Namespace) -> int:
    data = _data(settings, args)
    state = _state(data)
    if state is None or not town.alive(state["pid"]):
        _say("not up")
        return 3
    _say(f"up (pid {state['pid']}), database {state['database']}")
    for name, pid in state["parts"].items():
        _say(f"  {name:<18} {'running' if pid and town.alive(pid) else 'GONE'} (pid {pid})")
    from ivr.kamailio_runtime import Kamailio

    dispatcher = Kamailio(Path(state["kamailio_home"])).nodes()
    for name, address in state["nodes"].items():
        up_now = dispatcher.get(f"sip:{address}")
        _say(f"  Kamailio → {name:<8} {'up' if up_now else 'DOWN'}")
    _say("  portals: " + " ".join(state["portals"]))
    return 0


def call(settings: Settings, args: argparse.Namespace) -> int:
    """A call from the carrier simulator through Kamailio, as a family would dial."""
    from ivr.ami import AMIClient

    data = _data(settings, args)
    state = _state(data)
    if state is None or not town.alive(state["pid"]):
        print("renraku cluster: not up", file=sys.stderr)
        return 3
    host, port, user, secret = state["carrier_ami"]

    async def originate() -> dict[str, Any]:
        ami = await AMIClient(host, port, user, secret).start()
        try:
            reply = await ami.send_action({
                "Action": "Originate", "Channel": f"PJSIP/{args.dialled}@ivr",
                "Context": "caller", "Exten": "s", "Priority": "1", "Async": "true",
                "Variable": f"PHONE_ID={secrets.token_hex(8)}",
                "CallerID": f'"{args.number}" <{args.number}>'})
            return dict(reply if not isinstance(reply, list) else reply[0])
        finally:
            ami.close()

    reply = asyncio.run(originate())
    if reply.get("Response") != "Success":
        print(f"renraku cluster call: {reply.get('Message', reply)}", file=sys.stderr)
        return 1
    _say(f"calling {args.dialled} from {args.number} through Kamailio {state['kamailio']}")
    return 0


def run(settings: Settings, args: argparse.Namespace) -> int:
    return {"up": up, "down": down, "status": status, "call": call}[args.action](
        settings, args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cluster",
        help="a whole city on this machine to try: Kamailio, two IVR nodes, two app nodes",
        description="up starts Kamailio (127.0.0.10), two IVR Asterisk nodes (127.0.0.11-12),"
        " the carrier simulator (its trunk leads to Kamailio) and two app nodes "
        "(127.0.0.13-14: FastAGI, dialer, portal) against PostgreSQL, and stays in the "
        "foreground until Ctrl-C or `renraku cluster down`. Run it as root (Asterisk runs "
        "in its chroot).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def data_option(q: argparse.ArgumentParser) -> None:
        q.add_argument("--data", metavar="DIR",
                       help="the city's folder (default: <data_dir>/city)")

    q = actions.add_parser("up", help="start the city and wait (Ctrl-C stops it)")
    q.add_argument("--db", metavar="URL",
                   help=f"the PostgreSQL database (default: database_url, else {DEFAULT_DB})")
    data_option(q)
    q = actions.add_parser("down", help="stop a city started by up")
    q.add_argument("--timeout", type=float, default=60, help="seconds to wait (default 60)")
    data_option(q)
    q = actions.add_parser("status", help="the city's parts and what Kamailio sees")
    data_option(q)
    q = actions.add_parser("call", help="a call from the carrier simulator through Kamailio")
    q.add_argument("number", help="the caller's number, e.g. 09012345678")
    q.add_argument("--dialled", default="0120000000", help="the number dialled")
    data_option(q)
    p.set_defaults(func=run, needs_schema=False)
