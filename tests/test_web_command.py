"""`renraku web --workers N`: N portal processes share one port and stop together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.asterisk_harness import free_port
from tests.test_run_command import wait_http


def listening_sockets(port: int) -> int:
    """LISTEN sockets on the port: with SO_REUSEPORT each worker has its own."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for r in rows
               if r.split()[1].endswith(f":{port:04X}") and r.split()[3] == "0A")


def children(pid: int) -> list[int]:
    return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_workers_share_the_port_and_stop_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "RENRAKU_DATA_DIR": str(tmp_path / "var"),
           "RENRAKU_WEB_PORT": str(port)}
    cli = [sys.executable, "-m", "renraku.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen([*cli, "web", "--workers", "2"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_http(f"http://127.0.0.1:{port}/login", 60) == 200
        deadline = time.monotonic() + 30
        while listening_sockets(port) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert listening_sockets(port) == 2
        workers = [c for c in children(proc.pid)
                   if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]
        assert len(workers) == 2
        for _ in range(6):  # every request is served, whichever worker takes it
            assert wait_http(f"http://127.0.0.1:{port}/login", 5) == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "2 workers" in out
    assert listening_sockets(port) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(
            f"/proc/{pid}/stat").read_text().split()[2]
