"""docker-compose.yml: the production shape, checked by Docker when its compose plugin is
here, and always for what the file points at (build folders, rendered config, secrets)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from shutil import which
from typing import Any

import yaml

from ivr import asterisk_runtime as rt
from renraku.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "RENRAKU_DB_PASSWORD": "x", "RENRAKU_AMI_SECRET": "y",
       "RENRAKU_SECRET_KEY": "z", "RENRAKU_CARRIER": "192.0.2.1:5060"}


SERVICES = {"db", "migrate", "render-ivr1", "render-ivr2", "render-kamailio", "ivr1", "ivr2",
            "kamailio", "app1", "app2", "nginx"}


def compose() -> dict[str, Any]:
    """The file as Docker reads it: anchors and merge keys resolved, ${VAR} left as text."""
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in service.get("environment", {}).items()}


def test_compose_file_is_consistent() -> None:
    spec = compose()
    assert set(spec) == SERVICES
    for name, service in spec.items():
        if "build" in service:
            build = REPO / service["build"]
            assert (build / "Dockerfile").is_file(), f"{name}: no Dockerfile in {build}"
    text = (REPO / "docker-compose.yml").read_text()
    # Secrets are required from the environment, never written in the file.
    for secret in ("RENRAKU_AMI_SECRET", "RENRAKU_SECRET_KEY", "RENRAKU_DB_PASSWORD"):
        assert f"${{{secret}:?" in text
    assert (REPO / "deploy" / "nginx.conf").is_file()


def _rendered(service: dict[str, Any], node: str, data: Path) -> dict[str, str]:
    """Render a node as its render service would, into ``data``; its addresses."""
    settings = load_settings(None, env={**env_of(service), "RENRAKU_DATA_DIR": str(data)})
    etc = rt.ivr_instance(settings, name=node, render_only=True).etc
    manager = (etc / "manager.conf").read_text()
    return {
        "ami": "{}:{}".format(re.search(r"(?m)^bindaddr = (.+)$", manager)[1],
                              re.search(r"(?m)^port = (\d+)$", manager)[1]),
        "sip": re.search(r"(?m)^bind = (.+)$", (etc / "pjsip.conf").read_text())[1],
        "peers": re.search(r"(?m)^FASTAGI_PEERS = (.+)$",
                           (etc / "extensions.conf").read_text())[1],
        "trunk": re.search(r"(?m)^contact = sip:(.+)$", (etc / "pjsip.conf").read_text())[1],
        "cmd": " ".join(service["command"]),
    }


def test_every_address_a_service_names_leads_to_a_service(tmp_path: Path) -> None:
    """No Docker here: follow each setting to the service that must answer there."""
    spec = compose()
    assert all(s.get("network_mode") == "host" for n, s in spec.items() if n != "db")
    nodes = {n: _rendered(spec[f"render-{n}"], n, tmp_path / n) for n in ("ivr1", "ivr2")}
    apps = {n: env_of(spec[n]) for n in ("app1", "app2")}
    fastagi = {f"{e['RENRAKU_FASTAGI_HOST']}:{e['RENRAKU_FASTAGI_PORT']}" for e in apps.values()}
    kam_env = env_of(spec["render-kamailio"])
    kam_port = kam_env["RENRAKU_KAMAILIO_LISTEN"].rsplit(":", 1)[1]
    for name, node in nodes.items():
        assert f"--node {name}" in node["cmd"]
        assert spec[name]["environment"]["RENRAKU_NODE"] == name
        # FastAGI: every app node, at an address one can connect to (not a bind-all).
        peers = {p.removeprefix("agi://") for p in node["peers"].split("&")}
        assert peers == fastagi and not any(p.startswith("0.0.0.0") for p in peers)
        assert node["trunk"] == f"127.0.0.1:{kam_port}"  # the node's trunk is Kamailio
    # Each app node's AMI is one node's AMI, and both nodes have their app.
    assert sorted(f"{e['RENRAKU_AMI_HOST']}:{e['RENRAKU_AMI_PORT']}" for e in apps.values()) \
        == sorted(n["ami"] for n in nodes.values())
    # Kamailio spreads calls over exactly the nodes' SIP ports.
    node_ports = sorted(n["sip"].rsplit(":", 1)[1] for n in nodes.values())
    assert sorted(a.rsplit(":", 1)[1] for a in kam_env["RENRAKU_KAMAILIO_NODES"].split(",")) \
        == node_ports
    assert kam_port not in node_ports
    # The database URL names the port db publishes on loopback.
    db_url = apps["app1"]["RENRAKU_DATABASE_URL"]
    assert db_url.startswith("postgresql+asyncpg://") and "@127.0.0.1:5432/" in db_url
    assert "127.0.0.1:5432:5432" in spec["db"]["ports"]
    # nginx sends the portal to both app nodes' web ports.
    upstreams = set(re.findall(r"server 127\.0\.0\.1:(\d+)",
                               (REPO / "deploy" / "nginx.conf").read_text()))
    assert upstreams == {e["RENRAKU_WEB_PORT"] for e in apps.values()}
    # Asterisk and Kamailio run what the render services wrote, in the shared volume.
    assert "/var/lib/renraku/asterisk/${RENRAKU_NODE}/etc/asterisk.conf" in \
        (REPO / "asterisk-config" / "Dockerfile").read_text()
    assert "/var/lib/renraku/kamailio/kamailio/kamailio.cfg" in \
        (REPO / "kamailio-config" / "Dockerfile").read_text()
    for name in ("ivr1", "ivr2", "kamailio", "app1", "app2"):
        assert "renraku-data:/var/lib/renraku" in spec[name]["volumes"], name


def test_docker_compose_config_validates() -> None:
    """``docker compose config`` (plugin) or ``docker-compose config`` (Debian's package)."""
    plugin = which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True, check=False).returncode == 0
    cmd = ["docker", "compose"] if plugin else [which("docker-compose") or "docker-compose"]
    out = subprocess.run([*cmd, "config", "--quiet"], cwd=REPO, env=ENV, capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stderr
    missing = subprocess.run([*cmd, "config", "--quiet"], cwd=REPO, capture_output=True,
                             text=True, check=False, env={k: v for k, v in ENV.items()
                                                          if k != "RENRAKU_AMI_SECRET"})
    assert missing.returncode != 0 and "RENRAKU_AMI_SECRET" in missing.stderr
