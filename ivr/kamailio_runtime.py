"""Kamailio, the cluster's SIP face to the carrier: configuration and one process.

The configuration is rendered from ``kamailio-config/`` (Debian's Kamailio 5.6, its
dispatcher module) into ``<data>/kamailio/<name>/``: calls from the carrier are spread
over the IVR Asterisk nodes with OPTIONS probing, campaign calls from the nodes leave to
the carrier. ``kamcmd`` talks to the running process through its control socket.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2

from ivr.asterisk_runtime import REPO, AsteriskError, die_with_parent, run_dir
from renraku.settings import Settings

TEMPLATES = REPO / "kamailio-config"
INVITE_TIMEOUT_MS = 1500  # a node silent this long is skipped for the next one


class KamailioError(AsteriskError):
    pass


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit():
        raise KamailioError(f"{address!r} is not host:port")
    return host, int(port)


def modules_dir() -> str:
    # Rendered where no Kamailio is installed (the app image): Debian's folder.
    found = [*sorted(glob.glob("/usr/lib/*/kamailio/modules")),
             "/usr/lib/x86_64-linux-gnu/kamailio/modules"]
    return next((d for d in found if Path(d, "dispatcher.so").exists()), found[0])


@dataclass
class Kamailio:
    home: Path

    @property
    def cfg(self) -> Path:
        return self.home / "kamailio.cfg"

    @property
    def ctl(self) -> Path:
        return run_dir(self.home) / "kamailio.ctl"

    @property
    def log_file(self) -> Path:
        return self.home / "kamailio.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "kamailio.pid"

    def pid(self) -> int | None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
            return pid
        return None

    def start(self, timeout_s: float = 15, tie_to_parent: bool = False) -> int:
        """Check the configuration, start Kamailio in the foreground of its own session."""
        if (pid := self.pid()) is not None:
            return pid
        binary = shutil.which("kamailio") or "/usr/sbin/kamailio"
        check = subprocess.run([binary, "-c", "-f", str(self.cfg)], capture_output=True,
                               text=True)
        if check.returncode != 0:
            raise KamailioError(f"kamailio.cfg does not load:\n{check.stderr[-2000:]}")
        self.ctl.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.ctl.unlink()
        log = open(self.log_file, "ab")  # the child keeps it
        proc = subprocess.Popen(
            [binary, "-f", str(self.cfg), "-DD", "-E", "-m", "64", "-M", "8"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=die_with_parent if tie_to_parent else None,
        )
        log.close()
        self.pid_file.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise KamailioError(f"Kamailio exited:\n{self.log_tail()}")
            if self.ctl.exists() and self.rpc("core.version", check=False):
                return proc.pid
            time.sleep(0.1)
        self.stop()
        raise KamailioError(f"Kamailio did not start within {timeout_s} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 10) -> None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and self._alive(pid):
                time.sleep(0.1)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, 0)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    @staticmethod
    def _alive(pid: int) -> bool:
        with contextlib.suppress(ChildProcessError, OSError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def rpc(self, *command: str, check: bool = True) -> str | None:
        out = subprocess.run(["kamcmd", "-s", f"unix:{self.ctl}", *command],
                             capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            if check:
                raise KamailioError(f"kamcmd {' '.join(command)}: {out.stderr.strip()}")
            return None
        return out.stdout

    def nodes(self) -> dict[str, bool]:
        """Each IVR node's SIP URI → whether the dispatcher sends it calls now."""
        text = self.rpc("dispatcher.list") or ""
        found = re.findall(r"URI:\s*(\S+)\s+FLAGS:\s*(\S+)", text)
        return {uri: flags.startswith("A") for uri, flags in found}

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def kamailio_instance(settings: Settings, name: str = "kamailio") -> Kamailio:
    """Render Kamailio's configuration for these settings (idempotent) and return it."""
    listen_host, listen_port = host_port(settings.kamailio_listen)
    carrier_host, _ = host_port(settings.kamailio_carrier)
    nodes = [host_port(n) for n in settings.kamailio_nodes.split(",") if n.strip()]
    if not nodes:
        raise KamailioError("kamailio_nodes lists no IVR Asterisk node")
    home = settings.data_dir.resolve() / "kamailio" / name
    home.mkdir(parents=True, exist_ok=True)
    kam = Kamailio(home)
    dispatcher = home / "dispatcher.list"
    dispatcher.write_text("".join(f"1 sip:{h}:{p} 0 0\n" for h, p in nodes))
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    kam.cfg.write_text(env.from_string((TEMPLATES / "kamailio.cfg").read_text()).render(
        listen_host=listen_host, listen_port=listen_port, moddir=modules_dir(),
        ctl_socket=kam.ctl, dispatcher_list=dispatcher, probe_interval=settings.kamailio_probe_s,
        carrier=settings.kamailio_carrier, carrier_host=carrier_host, children=2,
        invite_timeout_ms=INVITE_TIMEOUT_MS,
    ))
    return kam
