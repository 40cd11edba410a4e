"""The cluster's parts as an operator starts them: `renraku asterisk render --node`,
`renraku kamailio render|start|status|stop` with real Kamailio."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.asterisk_harness import free_port


def renraku(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "renraku.cli", *args],
                          env={**os.environ, **env}, text=True, capture_output=True,
                          timeout=60, check=False)


def test_each_node_renders_from_the_same_templates_with_its_own_identity(tmp_path: Path) -> None:
    env = {"RENRAKU_DATA_DIR": str(tmp_path), "RENRAKU_SIP_HOST": "127.0.0.12",
           "RENRAKU_FASTAGI_PEERS": "127.0.0.13:4573, 127.0.0.14:4573"}
    # Each node tries its own app node first (node i: peer i mod M), then all the others.
    first = {"ivr1": "agi://127.0.0.13:4573&agi://127.0.0.14:4573",
             "ivr2": "agi://127.0.0.14:4573&agi://127.0.0.13:4573"}
    for node in ("ivr1", "ivr2"):
        out = renraku("asterisk", "render", "--node", node, env=env)
        assert out.returncode == 0, out.stderr
        etc = tmp_path / "asterisk" / node / "etc"
        assert f"{etc}" in out.stdout
        assert re.search(rf"(?m)^systemname = {node}$", (etc / "asterisk.conf").read_text())
        ext = (etc / "extensions.conf").read_text()
        # Asterisk reaches the app nodes at their addresses, never a bind-all address.
        assert f"FASTAGI_PEERS = {first[node]}" in ext
        assert "bind = 127.0.0.12:" in (etc / "pjsip.conf").read_text()


def test_kamailio_starts_probes_the_nodes_and_stops(tmp_path: Path) -> None:
    env = {"RENRAKU_DATA_DIR": str(tmp_path), "RENRAKU_KAMAILIO_PROBE_S": "1",
           "RENRAKU_KAMAILIO_LISTEN": f"127.0.0.10:{free_port()}",
           "RENRAKU_KAMAILIO_NODES": f"127.0.0.11:{free_port()},127.0.0.12:{free_port()}"}
    try:
        start = renraku("kamailio", "start", env=env)
        assert start.returncode == 0, start.stderr
        assert "Kamailio running" in start.stdout
        # Nothing answers OPTIONS at either node: both are soon marked down.
        for _ in range(50):
            status = renraku("kamailio", "status", env=env)
            if status.stdout.count("DOWN") == 2:
                break
        assert status.returncode == 0 and status.stdout.count("DOWN") == 2, status.stdout
    finally:
        stop = renraku("kamailio", "stop", env=env)
    assert stop.returncode == 0
    assert renraku("kamailio", "status", env=env).returncode == 3


def test_a_bad_node_list_is_a_clear_error(tmp_path: Path) -> None:
    out = renraku("kamailio", "render", env={"RENRAKU_DATA_DIR": str(tmp_path),
                                             "RENRAKU_KAMAILIO_NODES": "nodes-without-port"})
    assert out.returncode == 1
    assert "'nodes-without-port' is not host:port" in out.stderr
