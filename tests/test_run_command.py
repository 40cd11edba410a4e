"""`renraku run` (what `make run` ends with): everything starts, answers, and stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ivr import asterisk_runtime as rt
from tests.asterisk_harness import free_port
from tests.test_sip_ban import register

pytestmark = pytest.mark.asterisk


def wait_http(url: str, within: float) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status
        except OSError:
            time.sleep(0.3)
    return 0


def test_run_starts_everything_and_stops_on_sigterm(tmp_path: Path) -> None:
    ports = {"WEB_PORT": free_port(), "AMI_PORT": free_port(), "FASTAGI_PORT": free_port(),
             "SIP_PORT": free_port(socket.SOCK_DGRAM)}
    env = {**os.environ, "RENRAKU_DATA_DIR": str(tmp_path / "var"), "RENRAKU_RTP_START": "32000",
           "RENRAKU_RTP_END": "32040", **{f"RENRAKU_{k}": str(v) for k, v in ports.items()}}
    cli = [sys.executable, "-m", "renraku.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    # A voicemail Asterisk recorded while nothing ran: `renraku run` imports it.
    spool = tmp_path / "var" / "voicemail"
    spool.mkdir(parents=True)
    (spool / "vm-1796000000-1796000000.1-xx-0312345678.wav").write_bytes(b"")
    (spool / "vm-1796000000-1796000000.1-xx-0312345678.done").write_text("0312345678")
    proc = subprocess.Popen([*cli, "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_http(f"http://127.0.0.1:{ports['WEB_PORT']}/login", 60) == 200
        assert rt.port_open("127.0.0.1", ports["AMI_PORT"])
        assert rt.port_open("127.0.0.1", ports["FASTAGI_PORT"])
        pid_file = tmp_path / "var" / "asterisk" / "ivr" / "run" / "renraku-asterisk.pid"
        asterisk_pid = int(pid_file.read_text())
        os.kill(asterisk_pid, 0)
        database = sqlite3.connect(tmp_path / "var" / "renraku.db")
        deadline = time.monotonic() + 30
        while database.execute("SELECT count(*) FROM voicemails").fetchone() != (1,):
            assert time.monotonic() < deadline, "the voicemail was not imported"
            time.sleep(0.3)
        database.close()
        # Password guessing on the softphone account is banned by the running guard.
        guesser = "127.0.0.11"
        for _ in range(5):
            assert register(ports["SIP_PORT"], guesser, "guess")[0] == 401
        deadline = time.monotonic() + 15
        while register(ports["SIP_PORT"], guesser, "guess") != (403, 403):
            assert time.monotonic() < deadline, "the guesser was not banned"
            time.sleep(0.3)
        bans = subprocess.run([*cli, "sip", "bans"], env=env, capture_output=True, text=True)
        assert "SIP bans in force: 1" in bans.stdout and guesser in bans.stdout, bans.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "Renraku is running" in out and "softphone" in out
    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.kill(asterisk_pid, 0)
            time.sleep(0.1)
