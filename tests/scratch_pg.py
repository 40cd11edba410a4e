"""A PostgreSQL server of the test's own, to stop and start at will (never the shared one).

``initdb`` into a temporary folder, then the ``postgres`` server itself runs as a child of
the test process (as the ``postgres`` user when the tests run as root, which PostgreSQL
refuses to run as). The kernel sends it SIGQUIT (immediate shutdown) when the test process
dies, even by SIGKILL; atexit and the usual signals stop it and remove its folder.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.asterisk_harness import free_port

_RUNNING: list[ScratchPostgres] = []


def pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


def _cleanup() -> None:
    for server in list(_RUNNING):
        with contextlib.suppress(Exception):
            server.close()


_previous: dict[int, object] = {}


def _on_signal(signum: int, frame: object) -> None:
    _cleanup()
    previous = _previous.get(signum)
    if callable(previous):  # e.g. the Asterisk harness's: it stops its instances too
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _guard() -> None:
    if _previous:
        return
    atexit.register(_cleanup)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        with contextlib.suppress(ValueError):
            _previous[sig] = signal.getsignal(sig)
            signal.signal(sig, _on_signal)


class ScratchPostgres:
    def __init__(self) -> None:
        self.bin = pg_bin()
        # Not under pytest's folder: the postgres user must be able to reach it.
        self.home = Path(tempfile.mkdtemp(prefix="renraku-scratch-pg-"))
        self.data = self.home / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        if self.user is not None:
            os.chown(self.home, self.user.pw_uid, self.user.pw_gid)
        self._run(["initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                   "--no-sync", "-E", "UTF8", "--locale=C"])
        _guard()
        _RUNNING.append(self)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/renraku"

    def _as_postgres(self) -> None:
        if self.user is not None:
            os.setgid(self.user.pw_gid)
            os.setuid(self.user.pw_uid)
        # After setuid (a credential change clears it): die with the test process.
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGQUIT)  # PR_SET_PDEATHSIG

    def _run(self, argv: list[str]) -> None:
        subprocess.run([str(self.bin / argv[0]), *argv[1:]], check=True, capture_output=True,
                       preexec_fn=self._as_postgres, cwd=self.home)

    def start(self, timeout_s: float = 30) -> None:
        log = open(self.home / "server.log", "ab")
        self.proc = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.home), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "full_page_writes=off"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._as_postgres, cwd=self.home)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ready = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p",
                                    str(self.port)], capture_output=True)
            if ready.returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("scratch PostgreSQL did not start:\n" + self.log_tail())

    def stop(self, immediate: bool = False) -> None:
        """Fast shutdown (SIGINT: sessions are cut, like a crash to the client) or immediate."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def create_database(self, name: str = "renraku") -> None:
        subprocess.run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                        "-U", "postgres", name], check=True, capture_output=True)

    def log_tail(self, lines: int = 30) -> str:
        path = self.home / "server.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) \
            if path.exists() else ""

    def close(self) -> None:
        self.stop(immediate=True)
        shutil.rmtree(self.home, ignore_errors=True)
        with contextlib.suppress(ValueError):
            _RUNNING.remove(self)
