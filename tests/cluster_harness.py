"""A city on one machine (ivr.city): Kamailio in front of two IVR Asterisk nodes, and two
app nodes that are FastAGI servers of this process.

Every part has its own loopback address, as separate machines would:

    carrier simulator 127.0.0.1 ──SIP──► Kamailio 127.0.0.10 ──► IVR node ivr1 127.0.0.11
                                                              └─► IVR node ivr2 127.0.0.12
    ivr1 ──FastAGI──► app node A 127.0.0.13, else app node B 127.0.0.14
    ivr2 ──FastAGI──► app node B first, else A (each node starts at its own app node)

The app nodes are two FastAGI servers of this process (the flows and the database are the
test's, as in tests/asterisk_harness.py); "killing" one aborts its connections at once,
which is what Asterisk sees of a process killed with SIGKILL. The IVR nodes share one data
folder (one machine): their local sounds are the same files (the app nodes' sounds reach
them by URL when a test sets sounds_url).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ivr import asterisk_runtime as rt
from ivr import call_metrics
from ivr.ami import AMIClient
from ivr.city import APP_HOSTS, NODE_HOSTS, PROBE_S, City, CityPlan
from ivr.fastagi import AGIChannel, FastAGIServer, played_names
from ivr.kamailio_runtime import Kamailio
from renraku.settings import Settings, ensure_secret
from tests.asterisk_harness import (
    _STARTED,
    PhoneLines,
    VirtualPhone,
    _guard,
    free_port,
    ivr_settings,
    rtp_range,
)

__all__ = ["APP_HOSTS", "NODE_HOSTS", "PROBE_S", "ClusterLines", "city"]


class ClusterLines(PhoneLines):
    """PhoneLines whose calls reach two IVR nodes through Kamailio."""

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.apps = [self.fastagi, FastAGIServer()]
        self.apps[1].listeners.append(self._on_agi)
        for app in self.apps:  # as ivr.routes.build_server does
            call_metrics.observe(app)
        self.nodes: dict[str, rt.Instance] = {}
        self.node_settings: dict[str, Settings] = {}
        self.node_ami: dict[str, AMIClient] = {}
        self.kamailio: Kamailio | None = None

    async def start_apps(self) -> list[int]:
        """Start the app nodes' FastAGI servers; their ports, in APP_HOSTS' order."""
        return [await app.start(host, free_port())
                for app, host in zip(self.apps, APP_HOSTS, strict=True)]

    async def start(self) -> None:
        app_ports = tuple(await self.start_apps())
        plan = CityPlan(self.base / "city", app_ports)
        self.town = City(plan)
        base = ivr_settings(plan.data, plan.carrier_sip, app_ports[0])
        for name in NODE_HOSTS:
            # Started from the main thread so they die with this process, even on SIGKILL.
            node = self.town.start_node(base, name, rtp_range())
            _STARTED.append(node)
            settings = self.town.node_settings[name]
            self.nodes[name], self.node_settings[name] = node, settings
            self.node_ami[name] = await AMIClient(
                settings.ami_host, settings.ami_port, settings.ami_user,
                ensure_secret(settings, "ami_secret")).start()
            if name == "ivr1":  # what PhoneLines' helpers use
                self.settings, self.ivr, self.ivr_ami = settings, node, self.node_ami[name]
        self.kamailio = self.town.start_kamailio(self.settings)
        self.node_uris = {n: plan.node_uri(n) for n in NODE_HOSTS}
        self.carrier_ami_port = plan.carrier_ami
        self.carrier = self.town.start_carrier(self.ivr.root, uuid.uuid4().hex, rtp_range())
        self.carrier_secret = self.town.carrier_secret
        _STARTED.append(self.carrier)
        self.carrier_ami = await AMIClient("127.0.0.1", self.carrier_ami_port, "carrier",
                                           self.carrier_secret).start()
        self.carrier_channels = {}
        self.carrier_ami.register_event("Newchannel", self._on_carrier_channel)
        await self.wait_nodes({n: True for n in NODE_HOSTS}, within=15)

    def first_app(self, node: str) -> int:
        """Index (in APP_HOSTS) of the app node IVR node ``node`` tries first: each node's
        own (renraku.settings.Settings.fastagi_urls_for), so the nodes' calls spread."""
        first = self.node_settings[node].fastagi_urls_for(node)[0]
        return APP_HOSTS.index(first.split("//", 1)[1].rsplit(":", 1)[0])

    async def wait_nodes(self, wanted: dict[str, bool], within: float = 10) -> None:
        """Until Kamailio's dispatcher sees each named node up (True) or down (False)."""
        await asyncio.to_thread(self.town.wait_nodes, wanted, within)

    def route(self, path: str, handler: Callable[[AGIChannel], Awaitable[object]]) -> None:
        for app in self.apps:
            app.route(path, handler)

    def kill_node(self, name: str) -> None:
        """SIGKILL an IVR node's Asterisk: its calls die with it."""
        pid = self.nodes[name].pid()
        assert pid is not None, f"{name} is not running"
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)

    async def restart_node(self, name: str) -> None:
        node, port = self.nodes[name], self.node_settings[name].ami_port
        await asyncio.to_thread(node.stop, 5)
        node.start(lambda: rt.port_open(NODE_HOSTS[name], port), tie_to_parent=True)
        await self.wait_nodes({name: True}, within=15)

    @staticmethod
    def kill_app(app: FastAGIServer) -> None:
        """What Asterisk sees of an app node killed with SIGKILL: every connection reset."""
        assert app._server is not None
        app._server.close()
        for task in list(app.active):
            task.cancel()

    async def stop(self) -> None:
        for client in self.node_ami.values():
            client.close()
        self.node_ami.clear()
        self.ivr_ami = None  # closed above
        await self.apps[1].stop(grace_s=1)
        if self.kamailio is not None:
            await asyncio.to_thread(self.kamailio.stop)
        await asyncio.to_thread(rt.stop_all, self.nodes.values())
        for node in self.nodes.values():
            with contextlib.suppress(ValueError):
                _STARTED.remove(node)
        await super().stop()


class ProcessCity(ClusterLines):
    """The city with real processes where a test kills them: each app node's FastAGI server
    is a process of its own (tests/city_node.py) on one database, and so is each node's
    dialer. What the callers hear is read from the IVR nodes' AMI (AGIExecStart: every
    STREAM FILE / GET DATA the flow sends, wherever the flow runs)."""

    def __init__(self, base: Path, database_url: str, now: datetime) -> None:
        super().__init__(base)
        self.database_url, self.now = database_url, now
        self.app_ports: list[int] = []
        self.app_procs: list[subprocess.Popen[bytes] | None] = [None] * len(APP_HOSTS)
        self.dialers: list[subprocess.Popen[bytes]] = []
        # Per caller (last 9 digits): (monotonic time, node, unique id, sound) of each prompt
        self.heard: dict[str, list[tuple[float, str, str, str]]] = {}
        self.carrier_ended: set[str] = set()  # the carrier's ChannelIds that hung up
        self.app_voice = "tone"  # tests.city_node's VOICE ("bench" for the benchmarks)

    async def start_apps(self) -> list[int]:
        self.app_ports = [free_port() for _ in APP_HOSTS]
        return self.app_ports

    async def start(self) -> None:
        await super().start()
        for i in range(len(APP_HOSTS)):
            await self.start_app(i)
        for name, ami in self.node_ami.items():
            ami.register_event("AGIExecStart",
                               lambda _m, e, n=name: self._on_exec(n, e))  # type: ignore[misc]
        self.carrier_ami.register_event("Hangup", self._on_carrier_hangup)

    def _on_exec(self, node: str, event: Any) -> None:
        names = played_names(event.get("Command", ""))
        if not names:
            return
        tail = event.get("CallerIDNum", "").lstrip("+")[-9:]
        self.heard.setdefault(tail, []).extend(
            (time.monotonic(), node, event.get("Uniqueid", ""), name) for name in names)
        self._changed()

    def _on_carrier_hangup(self, _manager: Any, event: Any) -> None:
        self.carrier_ended.add(event.get("Uniqueid", ""))
        self._changed()

    def log_path(self, name: str) -> Path:
        (self.base / "logs").mkdir(exist_ok=True)
        return self.base / "logs" / f"{name}.log"

    async def start_app(self, i: int) -> None:
        from tests.city_node import spawn

        settings = self.settings.replace(database_url=self.database_url)
        self.app_procs[i] = await asyncio.to_thread(
            spawn, "app", settings, APP_HOSTS[i], str(self.app_ports[i]), self.now.isoformat(),
            self.app_voice, log=self.log_path(f"app{i + 1}"))

    def kill_app_process(self, i: int) -> None:
        """SIGKILL app node i's process (its FastAGI connections die with it)."""
        proc = self.app_procs[i]
        assert proc is not None and proc.poll() is None, f"app node {i + 1} is not running"
        _kill(proc)
        self.app_procs[i] = None

    async def start_dialer(self, node: str, name: str, config: dict[str, object],
                           **settings: Any) -> subprocess.Popen[bytes]:
        """App node ``name``'s dialer, talking to IVR node ``node``'s AMI."""
        from tests.city_node import spawn

        node_settings = self.node_settings[node].replace(
            database_url=self.database_url, node_name=name, **settings)
        proc = await asyncio.to_thread(spawn, "dialer", node_settings, json.dumps(config),
                                       log=self.log_path(f"dialer-{name}"))
        self.dialers.append(proc)
        return proc

    async def node_channels(self) -> dict[str, int]:
        """Channels up on each IVR node now (CoreShowChannels), every node asked at once.
        Asked one after another, a channel freed on the first node after its count could be
        taken on the second before its count: a loaded CI run once sampled 5 on a trunk
        of 4."""
        async def count(ami: Any) -> int:
            reply = await ami.send_action({"Action": "CoreShowChannels"})
            events = reply if isinstance(reply, list) else [reply]
            return sum(1 for ev in events if ev.get("Event") == "CoreShowChannel")

        names = list(self.node_ami)
        counts = await asyncio.gather(*(count(self.node_ami[name]) for name in names))
        return dict(zip(names, counts, strict=True))

    def phone(self, number: str, dialled: str = "0120000000") -> HeardPhone:
        return HeardPhone(self, number, dialled)

    async def stop(self) -> None:
        for proc in [*self.app_procs, *self.dialers]:
            if proc is not None and proc.poll() is None:
                _kill(proc)
        await super().stop()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


class HeardPhone(VirtualPhone):
    """A caller whose prompts are read from the IVR nodes' AMI (the flow runs elsewhere)."""

    lines: ProcessCity

    async def call(self, within: float = 15.0, withheld: bool = False) -> Any:
        self.since = time.monotonic()
        await self.dial(within)
        await self.wait_prompt("", within)

    def heard(self) -> list[tuple[float, str, str, str]]:
        return [h for h in self.lines.heard.get(self.number[-9:], ()) if h[0] >= self.since]

    @property
    def played(self) -> list[str]:
        return [name for *_, name in self.heard()]

    async def wait_prompt(self, fragment: str, within: float = 15.0, after: int = 0) -> int:
        def found() -> int | None:
            names = self.played
            return next((i + 1 for i in range(after, len(names)) if fragment in names[i]), None)

        return await self.lines.wait_for(found, within)

    async def wait_end(self, within: float = 20.0) -> None:
        await self.lines.wait_for(lambda: self.id in self.lines.carrier_ended, within)


@pytest.fixture(scope="module")
async def city(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ClusterLines]:
    _guard()
    lines = ClusterLines(tmp_path_factory.mktemp("city"))
    try:
        await lines.start()
        yield lines
    finally:
        await lines.stop()
