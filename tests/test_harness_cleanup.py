"""A pytest run that uses the phone lines and is killed leaves no Asterisk behind.

A real inner pytest session (the project's harness plugin, its own temp folder) starts the
IVR and carrier Asterisks through the ``phone_lines`` fixture, writes their pids, and is
then killed: by SIGTERM (CI timeouts, Ctrl-C's cousin: the harness's signal handler stops
Asterisk and undoes its bind mounts) or by SIGKILL (nothing of ours runs: the kernel's
parent-death signal takes Asterisk down).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ivr import asterisk_runtime as rt

REPO = Path(__file__).resolve().parent.parent
INNER = '''
import json, os, time

def test_hold_the_lines(phone_lines):
    pids = [phone_lines.ivr.pid(), phone_lines.carrier.pid()]
    tmp = os.environ["PIDS_FILE"] + ".tmp"
    with open(tmp, "w") as fh:
        json.dump({"pids": pids, "data": [str(phone_lines.ivr.home.parent.parent),
                                          str(phone_lines.carrier.home.parent.parent)]}, fh)
    os.rename(tmp, os.environ["PIDS_FILE"])
    time.sleep(300)
'''


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return True
    return state == "Z"  # dead; only its zombie waits for its reaper


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_killed_session_leaves_no_asterisk(tmp_path: Path, sig: signal.Signals) -> None:
    import json

    test_file = tmp_path / "test_inner_hold.py"
    test_file.write_text(INNER)
    pids_file = tmp_path / "pids.json"
    env = {**os.environ, "PIDS_FILE": str(pids_file)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
         "-c", str(REPO / "pyproject.toml"), "--rootdir", str(REPO),
         "-p", "tests.asterisk_harness", "--basetemp", str(tmp_path / "inner"), str(test_file)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    info: dict[str, list] = {}
    try:
        deadline = time.monotonic() + 90
        while not pids_file.exists():
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                pytest.fail(f"inner pytest ended early:\n{out[-3000:]}")
            assert time.monotonic() < deadline, "inner session never got its phone lines"
            time.sleep(0.2)
        info = json.loads(pids_file.read_text())
        pids = info["pids"]
        assert all(pids) and not any(_gone(p) for p in pids)

        proc.send_signal(sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in pids if not _gone(p)] == [], "Asterisk survived its test session"
        stale = [m for m in rt.mounts() if any(m.endswith(d) for d in info["data"])]
        if sig == signal.SIGTERM:
            assert stale == [], "the signal handler left bind mounts behind"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        # After SIGKILL nothing could unmount the data folders; do it for the shared root.
        for target in rt.mounts():
            if any(target.endswith(d) for d in info.get("data", [])):
                subprocess.run(["umount", "-l", target], check=False)
