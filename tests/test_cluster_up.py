"""`renraku cluster up` as someone trying it runs it: a city comes up, takes a call from
the carrier simulator through Kamailio, and `renraku cluster down` leaves no process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ivr import asterisk_runtime as rt
from ivr.city import alive
from tests.db_fixtures import Databases

pytestmark = pytest.mark.asterisk


def renraku(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "renraku.cli", *args], env=env, text=True,
                          capture_output=True, timeout=120, check=False)


def wait_for_line(proc: subprocess.Popen[str], marker: str, within: float) -> list[str]:
    """``up``'s output up to the line containing ``marker``."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + within
    for line in proc.stdout:
        seen.append(line.rstrip())
        if marker in line:
            return seen
        if time.monotonic() > deadline:
            break
    raise AssertionError("renraku cluster up did not come up:\n" + "\n".join(seen[-30:]))


def logged_call(city: Path) -> tuple[str, str] | None:
    """A call's unique id as app node app1/app2 logged it, and the IVR node's line."""
    for app in ("app1", "app2"):
        text = (city / f"{app}.log").read_text(errors="replace")
        for uniqueid in re.findall(r"ivr\.fastagi \[(ivr\d-[\d.]+)\]: call from ", text):
            node = city / "ivr" / "asterisk" / uniqueid.split("-")[0] / "log" / "messages.log"
            lines = [ln for ln in node.read_text(errors="replace").splitlines()
                     if f"renraku call {uniqueid}: absence at agi://" in ln]
            if lines:
                return uniqueid, lines[0]
    return None


@pytest.fixture
async def pg_url(databases: Databases) -> str:
    """A migrated, empty PostgreSQL database of this test process (not the shared one)."""
    return (await databases.get("postgresql")).url


def test_cluster_up_takes_a_call_and_down_leaves_no_process(pg_url: str,
                                                            tmp_path: Path) -> None:
    env = {**os.environ, "RENRAKU_DATA_DIR": str(tmp_path),
           "PYTHONPATH": str(rt.REPO), "PYTHONUNBUFFERED": "1"}
    up = subprocess.Popen(
        [sys.executable, "-m", "renraku.cli", "cluster", "up", "--db", pg_url], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=rt.die_with_parent)  # and with it the city, if this test dies
    city = tmp_path / "city"
    try:
        said = wait_for_line(up, "Ctrl-C or", 240)
        assert any("The city is up:" in line for line in said)
        assert any(re.search(r"IVR node ivr2 +sip:127\.0\.0\.12:\d+", ln) for ln in said)
        assert any(re.search(r"app node app1 +portal http://127\.0\.0\.13:\d+/", ln)
                   for ln in said)
        status = renraku("cluster", "status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert re.search(r"Kamailio → ivr1 +up", status.stdout), status.stdout
        assert re.search(r"Kamailio → ivr2 +up", status.stdout), status.stdout
        state = json.loads((city / "cluster.json").read_text())
        assert set(state["parts"]) == {"carrier simulator", "Kamailio", "ivr1", "ivr2",
                                       "app1", "app2"}

        placed = renraku("cluster", "call", "09012345678", env=env)
        assert placed.returncode == 0, placed.stderr
        found = None
        for _ in range(150):  # the carrier → Kamailio → an IVR node → an app node
            if found := logged_call(city):
                break
            time.sleep(0.2)
        assert found, "the call reached no app node"
        uniqueid, node_line = found  # one id in both logs (renraku.call_logging)
        assert uniqueid.startswith(("ivr1-", "ivr2-"))
        assert re.search(r"agi://127\.0\.0\.1[34]:\d+", node_line)  # an app node's address

        down = renraku("cluster", "down", env=env)
        assert down.returncode == 0 and "the city is down" in down.stdout, down.stdout
        assert "killed" not in down.stdout  # every part stopped by `up` itself
        assert up.wait(30) == 0
        rest = up.stdout.read() if up.stdout else ""
        assert "stopped" in rest
        assert [name for name, pid in state["parts"].items() if alive(pid)] == []
        assert not (city / "cluster.json").exists()
        assert str(tmp_path) not in Path("/proc/mounts").read_text()  # chroot binds undone
        again = renraku("cluster", "status", env=env)
        assert again.returncode == 3 and "not up" in again.stdout
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
