"""A city on one machine: Kamailio, two IVR Asterisk nodes and a carrier simulator, each
on its own loopback address as separate machines would be (``renraku cluster up`` and the
test suite's cluster harness both start it from here):

    carrier simulator 127.0.0.1 ──SIP──► Kamailio 127.0.0.10 ──► IVR node ivr1 127.0.0.11
                                                              └─► IVR node ivr2 127.0.0.12
    each IVR node ──FastAGI──► app node A 127.0.0.13, else app node B 127.0.0.14

The app nodes are the caller's: ``renraku cluster up`` runs two ``renraku run
--no-asterisk`` processes, the tests two FastAGI servers of their own process. Every
process started here is tied to its parent (it dies with it, even on SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ivr import asterisk_runtime as rt
from ivr.kamailio_runtime import Kamailio, kamailio_instance
from renraku.settings import Settings

KAMAILIO_HOST = "127.0.0.10"
NODE_HOSTS = {"ivr1": "127.0.0.11", "ivr2": "127.0.0.12"}
APP_HOSTS = ("127.0.0.13", "127.0.0.14")
PROBE_S = 1
CARRIER_TEMPLATES = rt.CONFIG_TEMPLATES / "carrier-simulator"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free for both TCP and UDP (SIP and RTP want UDP, AMI and FastAGI TCP)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, other) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def carrier_instance(data_dir: Path, root: Path | None, sip_port: int, ami_port: int,
                     ivr_sip_port: int, secret: str, rtp: tuple[int, int],
                     ivr_host: str = "127.0.0.1") -> rt.Instance:
    """The carrier simulator (an Asterisk of its own, templates in CARRIER_TEMPLATES): it
    places calls from any number (AMI Originate into ``PJSIP/<number>@ivr``) to
    ``ivr_host:ivr_sip_port`` (an IVR node, or Kamailio in front of a city) and answers
    campaign calls as scripted households."""
    data = data_dir.resolve()
    home = data / "asterisk" / "carrier"
    context = {
        "node": "carrier", "etc": home / "etc", "moddir": rt._modules_dir(root),
        "lib": home / "lib", "data": data,
        "spool": home / "spool", "run": rt.run_dir(home), "log": home / "log",
        "cache": rt.cache_dir(home),
        "sip_port": sip_port, "ivr_host": ivr_host, "ivr_sip_port": ivr_sip_port,
        "ami_port": ami_port,
        "ami_user": "carrier", "ami_secret": secret, "rtp_start": rtp[0], "rtp_end": rtp[1],
    }
    rt.render(rt.CONFIG_TEMPLATES, home / "etc", {
        **context, "sip_host": "127.0.0.1", "trunk_peer": "", "trunk_host": "127.0.0.1",
        "trunk_username": "", "trunk_password": "", "softphone_password": "x",
        "ami_host": "127.0.0.1", "ami_permit": ["127.0.0.0/8"], "ari_port": 0,
        "fastagi_peers": "agi://127.0.0.1:1", "classic_agi": "",
        "voicemail_dir": data / "voicemail",
    })
    rt.render(CARRIER_TEMPLATES, home / "etc", context)
    rt.link_shared_data(data)
    for lang in ("", "ja", "en"):
        sounds = data / "sounds" / lang
        sounds.mkdir(parents=True, exist_ok=True)
        # A short "hello" reads as a person to AMD; a 4 s greeting as an answering machine.
        for name, seconds in (("hello", "0.5"), ("greeting", "4")):
            if not (sounds / f"{name}.wav").exists():
                subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16",
                                str(sounds / f"{name}.wav"), "synth", seconds, "sine", "440",
                                "vol", "0.6"], check=True)
    binds = ((data, True),) if root else ()
    return rt.Instance(name="carrier", home=home, root=root, binds=binds)


@dataclass
class CityPlan:
    """Every address and port of a city on this machine, chosen before anything starts."""

    data: Path  # the IVR nodes' data folder (one machine: their sounds are shared files)
    fastagi_ports: tuple[int, ...]  # where each app node listens, in APP_HOSTS order
    carrier_sip: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    carrier_ami: int = field(default_factory=free_port)
    kamailio_port: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    node_sip: dict[str, int] = field(
        default_factory=lambda: {n: free_port(socket.SOCK_DGRAM) for n in NODE_HOSTS})
    node_ami: dict[str, int] = field(default_factory=lambda: {n: free_port() for n in NODE_HOSTS})
    node_ari: dict[str, int] = field(default_factory=lambda: {n: free_port() for n in NODE_HOSTS})

    @property
    def fastagi_peers(self) -> str:
        return ",".join(f"{h}:{p}" for h, p in zip(APP_HOSTS, self.fastagi_ports, strict=True))

    @property
    def kamailio_listen(self) -> str:
        return f"{KAMAILIO_HOST}:{self.kamailio_port}"

    def node_settings(self, base: Settings, name: str, rtp: tuple[int, int]) -> Settings:
        host = NODE_HOSTS[name]
        return base.replace(
            data_dir=self.data, sip_host=host, sip_port=self.node_sip[name], ami_host=host,
            ami_port=self.node_ami[name], ari_port=self.node_ari[name],
            trunk_peer=self.kamailio_listen,
            fastagi_peers=self.fastagi_peers, rtp_start=rtp[0], rtp_end=rtp[1])

    def node_uri(self, name: str) -> str:
        return f"sip:{NODE_HOSTS[name]}:{self.node_sip[name]}"

    def kamailio_settings(self, base: Settings) -> Settings:
        return base.replace(
            data_dir=self.data, kamailio_listen=self.kamailio_listen,
            kamailio_carrier=f"127.0.0.1:{self.carrier_sip}", kamailio_probe_s=PROBE_S,
            kamailio_nodes=",".join(f"{h}:{self.node_sip[n]}" for n, h in NODE_HOSTS.items()))


class CityError(rt.AsteriskError):
    pass


@dataclass
class City:
    """The telephony of a city: Kamailio, the IVR nodes and the carrier simulator."""

    plan: CityPlan
    nodes: dict[str, rt.Instance] = field(default_factory=dict)
    node_settings: dict[str, Settings] = field(default_factory=dict)
    kamailio: Kamailio | None = None
    carrier: rt.Instance | None = None
    carrier_secret: str = ""

    def start_node(self, base: Settings, name: str, rtp: tuple[int, int]) -> rt.Instance:
        settings = self.plan.node_settings(base, name, rtp)
        node = rt.ivr_instance(settings, name=name)
        self.nodes[name], self.node_settings[name] = node, settings
        host = NODE_HOSTS[name]
        node.start(lambda: rt.port_open(host, settings.ami_port), tie_to_parent=True)
        return node

    def start_kamailio(self, base: Settings) -> Kamailio:
        self.kamailio = kamailio_instance(self.plan.kamailio_settings(base))
        self.kamailio.start(tie_to_parent=True)
        return self.kamailio

    def start_carrier(self, root: Path | None, secret: str, rtp: tuple[int, int]) -> rt.Instance:
        self.carrier_secret = secret
        self.carrier = carrier_instance(
            self.plan.data.parent / "carrier", root, self.plan.carrier_sip, self.plan.carrier_ami,
            self.plan.kamailio_port, secret, rtp, ivr_host=KAMAILIO_HOST)
        self.carrier.start(lambda: rt.port_open("127.0.0.1", self.plan.carrier_ami),
                           tie_to_parent=True)
        return self.carrier

    def dispatcher(self) -> dict[str, bool]:
        """Each IVR node's name → whether Kamailio sends it calls now."""
        assert self.kamailio is not None
        state = self.kamailio.nodes()
        return {n: state.get(self.plan.node_uri(n), False) for n in NODE_HOSTS}

    def wait_nodes(self, wanted: dict[str, bool], within: float = 15) -> None:
        """Until Kamailio's dispatcher sees each named node up (True) or down (False)."""
        deadline = time.monotonic() + within
        while True:
            state = self.dispatcher()
            if all(state[n] == up for n, up in wanted.items()):
                return
            if time.monotonic() > deadline:
                raise CityError(f"dispatcher: {state}, wanted {wanted}")
            time.sleep(0.2)

    def parts(self) -> Iterator[tuple[str, rt.Instance | Kamailio]]:
        if self.carrier is not None:
            yield "carrier simulator", self.carrier
        if self.kamailio is not None:
            yield "Kamailio", self.kamailio
        yield from self.nodes.items()

    def stop(self) -> None:
        for part in (self.carrier, self.kamailio):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()
        with contextlib.suppress(Exception):
            rt.stop_all(self.nodes.values())  # they share one data folder


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    """SIGTERM (a clean stop), then SIGKILL after ``timeout_s``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An exited process its parent has not reaped yet (a zombie) still answers kill(0):
    # `renraku cluster down` would wait out its timeout for an `up` that has ended.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False  # it ended meanwhile
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
