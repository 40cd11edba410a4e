"""A city on one machine (ivr.city): Kamailio in front of two IVR Asterisk nodes, and two
app nodes that are FastAGI servers of this process.

The flows and the database are the test's, as in tests/asterisk_harness.py; "killing" an
app node aborts its connections at once, which is what Asterisk sees of a process killed
with SIGKILL. The IVR nodes share one data folder (one machine): their local sounds are
the same files (the app nodes' sounds reach them by URL when a test sets sounds_url).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ivr import asterisk_runtime as rt
from ivr import call_metrics
from ivr.ami import AMIClient
from ivr.city import APP_HOSTS, NODE_HOSTS, PROBE_S, City, CityPlan
from ivr.fastagi import AGIChannel, FastAGIServer
from ivr.kamailio_runtime import Kamailio
from renraku.settings import Settings, ensure_secret
from tests.asterisk_harness import (
    _STARTED,
    PhoneLines,
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

    async def start(self) -> None:
        app_ports = tuple([await app.start(host, free_port())
                           for app, host in zip(self.apps, APP_HOSTS, strict=True)])
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
        for node in self.nodes.values():
            await asyncio.to_thread(node.stop)
            with contextlib.suppress(ValueError):
                _STARTED.remove(node)
        await super().stop()


@pytest.fixture(scope="module")
async def city(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ClusterLines]:
    _guard()
    lines = ClusterLines(tmp_path_factory.mktemp("city"))
    try:
        await lines.start()
        yield lines
    finally:
        await lines.stop()
