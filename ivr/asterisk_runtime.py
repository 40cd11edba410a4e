"""Provisioning, configuring, starting and stopping an Asterisk instance.

A system Asterisk ≥ 20 is used when one is installed. Debian 12 and 13 ship none, so
otherwise Debian's ``sid`` Asterisk 22 is installed with debootstrap into a cached root
outside git and run with ``chroot``. The chroot shares the host's network, so loopback
ports work across it. Folders the instance needs are bind-mounted into the root at their
own absolute paths, so a path means the same thing to Asterisk and to Renraku:
the data folder (read-write: prompts in ``sounds/``, recordings, the instance's own
config, logs and control socket under ``asterisk/<name>/``) and, read-only, this
repository and the Python that runs the classic AGI scripts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from renraku.rules.addresses import networks
from renraku.settings import Settings, ensure_secret

REPO = Path(__file__).resolve().parent.parent
CONFIG_TEMPLATES = REPO / "asterisk-config"
DIALPLANS = REPO / "dialplans"
# The TTS engines are here for the classic AGI scripts, which run inside the root and
# render names and dates on the spot just as the FastAGI flows do outside it.
PACKAGES = (
    "asterisk,asterisk-modules,asterisk-config,sox,"
    "espeak-ng,open-jtalk,open-jtalk-mecab-naist-jdic"
)
MIN_SYSTEM_VERSION = 20
DEBIAN_MODULES = "/usr/lib/x86_64-linux-gnu/asterisk/modules"
STAMP = ".renraku-provisioned"


class AsteriskError(RuntimeError):
    pass


def system_asterisk() -> Path | None:
    """A system Asterisk of version ≥ 20 on PATH, or None."""
    found = shutil.which("asterisk")
    if found is None and Path("/usr/sbin/asterisk").exists():
        found = "/usr/sbin/asterisk"
    if not found:
        return None
    try:
        out = subprocess.run([found, "-V"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"Asterisk (\d+)", out)
    return Path(found) if match and int(match.group(1)) >= MIN_SYSTEM_VERSION else None


def debian_mirror() -> str:
    """The Debian mirror this machine's apt already uses (nothing hard-coded here)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for src in sources:
        if not src.is_file():
            continue
        text = src.read_text(errors="replace")
        for match in re.finditer(r"(?m)^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s*)?)(\S+)", text):
            uri = match.group(1)
            if "debian" in uri and "security" not in uri:
                return uri
    raise AsteriskError("no Debian mirror found in /etc/apt sources")


def provision(root: Path, say: Callable[[str], None] = print) -> Path:
    """Install Debian sid's Asterisk into ``root`` once; later calls reuse it.

    A root made with fewer packages than PACKAGES gets the missing ones with apt inside it.
    """
    stamp = root / STAMP
    if stamp.exists():
        wanted = PACKAGES.split(",")
        missing = [p for p in wanted if p not in stamp.read_text().split()]
        if missing:
            say(f"Adding {' '.join(missing)} to the Asterisk root…")
            # The mirror may be a dated snapshot whose Release file is past its Valid-Until.
            apt = ["apt-get", "-o", "Acquire::Check-Valid-Until=false", "-qq"]
            for cmd in ([*apt, "update"],
                        [*apt, "install", "-y", "--no-install-recommends", *missing]):
                out = subprocess.run(["chroot", str(root), *cmd], capture_output=True, text=True,
                                     env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
                if out.returncode != 0:
                    raise AsteriskError(f"{' '.join(cmd)} in the root failed:\n{out.stderr}")
            stamp.write_text(stamp.read_text().splitlines()[0] + "\n" + " ".join(wanted) + "\n")
        say(f"Asterisk root ready: {root}")
        return root
    if shutil.which("debootstrap") is None:
        raise AsteriskError("debootstrap is not installed (apt-get install debootstrap)")
    tmp = root.with_name(root.name + ".tmp")
    unmount_under(tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    mirror = debian_mirror()
    say(f"Installing Asterisk from Debian sid into {root} (about a minute)…")
    cmd = ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", "sid", str(tmp), mirror]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    steps = 0
    tail: list[str] = []
    for line in proc.stdout:
        tail = [*tail[-20:], line.rstrip()]
        if line.startswith("I: "):
            steps += 1
            if steps % 25 == 0 or "successfully" in line:
                say(f"  [{steps:4d}] {line[3:].strip()}")
    if proc.wait() != 0:
        raise AsteriskError("debootstrap failed:\n" + "\n".join(tail))
    version = subprocess.run(
        ["chroot", str(tmp), "/usr/sbin/asterisk", "-V"], capture_output=True, text=True, check=True
    ).stdout.strip()
    (tmp / STAMP).write_text(version + "\n" + " ".join(PACKAGES.split(",")) + "\n")
    if root.exists():
        unmount_under(root)
        shutil.rmtree(root)
    tmp.rename(root)
    say(f"Asterisk root ready: {root} ({version})")
    return root


def mounts() -> list[str]:
    out = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        out.append(target)
    return out


def unmount_under(path: Path) -> None:
    """Undo every bind mount below ``path`` (deepest first) before it is removed."""
    prefix = str(path.resolve()) + "/"
    for target in sorted((m for m in mounts() if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False)


def run_dir(home: Path) -> Path:
    """Asterisk's run folder, which holds its control socket ``asterisk.ctl``.

    A Unix socket address holds at most 107 bytes. Under a deep data folder (pytest's
    temporary paths are) Asterisk cannot create the socket, says nothing, and every
    ``asterisk -rx`` then fails; such instances get a short folder in /tmp named after
    their home instead (inside the chroot when there is one).
    """
    path = home / "run"
    if len(str(path / "asterisk.ctl").encode()) <= 100:
        return path
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:16]
    return Path("/tmp") / f"renraku-asterisk-{digest}"


def cache_dir(home: Path) -> Path:
    """Where res_http_media_cache keeps the sounds it fetched (Asterisk's astcachedir).

    Always a short path: Asterisk 22 copies a cached file's local path into a buffer sized
    for the URL that was asked for (main/file.c, openstream_internal), so a cache folder
    longer than the URLs truncates the path and the sound "does not exist in any format".
    The app's sound URLs are longer than this (see prompts.media).
    """
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:12]
    return Path("/tmp") / f"rk-media-{digest}"


def _modules_dir(root: Path | None) -> str:
    base = root or Path("/")
    for candidate in (
        "usr/lib/x86_64-linux-gnu/asterisk/modules",
        "usr/lib/aarch64-linux-gnu/asterisk/modules",
        "usr/lib/asterisk/modules",
        "usr/lib64/asterisk/modules",
    ):
        if (base / candidate).is_dir():
            return "/" + candidate
    raise AsteriskError(f"no Asterisk modules folder under {base}")


def _render_modules_dir() -> str:
    """For a configuration rendered for an Asterisk elsewhere: this machine's, else Debian's."""
    try:
        return _modules_dir(None)
    except AsteriskError:
        return DEBIAN_MODULES


@dataclass
class Instance:
    """One Asterisk process: its config folder lives in ``home`` (inside a data folder)."""

    name: str
    home: Path  # host path; the same path inside the chroot
    root: Path | None  # chroot, or None for the system Asterisk
    binds: tuple[tuple[Path, bool], ...] = ()  # (folder, writable) mounted at the same path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def etc(self) -> Path:
        return self.home / "etc"

    @property
    def log_file(self) -> Path:
        return self.home / "log" / "messages.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / "renraku-asterisk.pid"

    def host_path(self, path: Path) -> Path:
        """Where a path of Asterisk's (inside the chroot, if any) is on this host."""
        return self.root / str(path).lstrip("/") if self.root else path

    def _argv(self, *args: str) -> list[str]:
        base = ["/usr/sbin/asterisk", "-C", str(self.etc / "asterisk.conf"), *args]
        return ["chroot", str(self.root), *base] if self.root else base

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def mount(self) -> None:
        if self.root is None:
            return
        mounted = set(mounts())
        for folder, writable in self.binds:
            target = self.root / str(folder.resolve()).lstrip("/")
            if str(target) in mounted:
                continue
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", "--bind", str(folder.resolve()), str(target)], check=True)
            if not writable:
                # Read-only, so a careless `rm -rf` of the cached root cannot reach the source.
                subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)

    def unmount(self) -> None:
        if self.root is None:
            return
        mounted = set(mounts())
        for folder, writable in reversed(self.binds):
            target = self.root / str(folder.resolve()).lstrip("/")
            # The read-only code folders are shared by every instance in this root: keep them.
            if writable and str(target) in mounted:
                subprocess.run(["umount", "-l", str(target)], check=False)

    def start(
        self, ready: Callable[[], bool] | None = None, timeout_s: float = 60,
        tie_to_parent: bool = False,
    ) -> int:
        """Start Asterisk in the foreground as a child in its own session; wait until booted.

        ``tie_to_parent``: the kernel kills Asterisk when the calling thread's process dies,
        even by SIGKILL (test sessions; call it from the main thread).
        """
        if (pid := self.pid()) is not None:
            return pid
        for sub in ("run", "log", "spool/recording", "lib/agi-bin"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        self.host_path(run_dir(self.home)).mkdir(parents=True, exist_ok=True)
        self.host_path(cache_dir(self.home)).mkdir(parents=True, exist_ok=True)
        self.mount()
        console = open(self.home / "log" / "console.log", "ab")
        proc = subprocess.Popen(
            self._argv("-f", "-n", "-q"),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **self.extra_env},
            preexec_fn=die_with_parent if tie_to_parent else None,
        )
        console.close()
        self.pid_file.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AsteriskError(f"Asterisk {self.name} exited at start:\n{self.log_tail()}")
            booted = self.rx("core waitfullybooted", timeout_s=5, check=False)
            if (
                booted is not None
                and "fully booted" in booted.lower()
                and (ready is None or ready())
            ):
                return proc.pid
            time.sleep(0.2)
        self.stop()
        raise AsteriskError(
            f"Asterisk {self.name} did not boot in {timeout_s:.0f} s:\n{self.log_tail()}"
        )

    def rx(self, command: str, timeout_s: float = 15, check: bool = True) -> str | None:
        """Run a CLI command in the running instance (``asterisk -rx``)."""
        try:
            out = subprocess.run(
                self._argv("-rx", command), capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            if check:
                raise AsteriskError(f"`{command}` timed out") from None
            return None
        if out.returncode != 0 or "Unable to connect" in out.stdout:
            if check:
                raise AsteriskError(f"`{command}` failed: {out.stdout}{out.stderr}".strip())
            return None
        return out.stdout

    def stop(self, timeout_s: float = 15) -> None:
        pid = self.pid()
        if pid is not None:
            self.rx("core stop now", timeout_s=5, check=False)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and self.pid() is not None:
                _reap(pid)
                time.sleep(0.1)
            if self.pid() is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                time.sleep(0.2)
                _reap(pid)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        if run_dir(self.home) != self.home / "run":
            shutil.rmtree(self.host_path(run_dir(self.home)), ignore_errors=True)
        self.unmount()

    def log_tail(self, lines: int = 30) -> str:
        chunks = []
        for path in (self.home / "log" / "console.log", self.log_file):
            if path.exists():
                chunks += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(chunks)

    def errors(self) -> list[str]:
        """ERROR lines Asterisk logged since start (the acceptance: no config errors)."""
        if not self.log_file.exists():
            return []
        return [
            ln for ln in self.log_file.read_text(errors="replace").splitlines() if " ERROR[" in ln
        ]


def stop_all(instances: Iterable[Instance], timeout_s: float = 15) -> None:
    """Stop instances that share a data folder (a city's IVR nodes): each is told to stop
    before the first of them unmounts that folder from the chroot, after which ``asterisk
    -rx`` no longer reaches the others' control sockets (they would wait out ``timeout_s``
    for a SIGKILL)."""
    instances = list(instances)
    for inst in instances:
        if inst.pid() is not None:
            inst.rx("core stop now", timeout_s=5, check=False)
    for inst in instances:
        inst.stop(timeout_s)


def die_with_parent() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def render(
    templates: Path, target: Path, context: dict[str, object], extra_files: Iterable[Path] = ()
) -> None:
    """Render every ``*.conf`` template into ``target`` (0600: it holds secrets)."""
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    target.mkdir(parents=True, exist_ok=True)
    for tpl in sorted(templates.glob("*.conf")):
        out = target / tpl.name
        out.write_text(env.from_string(tpl.read_text()).render(**context))
        out.chmod(0o600)
    if extra_files:
        (target / "dialplans").mkdir(exist_ok=True)
        for src in extra_files:
            shutil.copyfile(src, target / "dialplans" / src.name)


def link_shared_data(data: Path) -> None:
    """astdatadir is a data folder (for its sounds/); the rest of Asterisk's shared data,
    its XML documentation above all (stasis will not start without it), stays put."""
    data.mkdir(parents=True, exist_ok=True)
    for shared in ("documentation", "rest-api", "static-http"):
        link = data / shared
        if not link.is_symlink() and not link.exists():
            link.symlink_to(f"/usr/share/asterisk/{shared}")


def python_binds(settings: Settings) -> tuple[tuple[Path, bool], ...]:
    """What the classic AGI scripts need inside the chroot: the code, its Python and the
    Open JTalk voice (downloaded outside the root by `renraku prompts voices`)."""
    from prompts.tts import openjtalk_voice_path

    folders = {REPO, Path(sys.prefix), Path(sys.base_prefix)}
    voices = openjtalk_voice_path(settings).parent
    voices.mkdir(parents=True, exist_ok=True)
    folders.add(voices)
    return tuple((f, False) for f in sorted(folders))


def sid_root_or_system(asterisk_root: Path) -> Path | None:
    """None when a system Asterisk will do, else the provisioned chroot."""
    if system_asterisk() is not None:
        return None
    if not (asterisk_root / STAMP).exists():
        raise AsteriskError(
            f"no Asterisk: neither a system Asterisk ≥ {MIN_SYSTEM_VERSION} nor a root at "
            f"{asterisk_root} (run `renraku asterisk provision`)"
        )
    return asterisk_root


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout):
        return True
    return False


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def classic_agi_settings(settings: Settings, path: Path) -> Path:
    """A settings file for the classic AGI scripts, which start without our environment."""
    keep = {
        "data_dir": settings.data_dir.resolve(),
        "database_url": settings.db_url,
        "default_timezone": settings.default_timezone,
        "testing": settings.testing,
        "fake_now": settings.fake_now,
        "public_url": settings.base_url,
        **{f"tts_{lang}": getattr(settings, f"tts_{lang}") for lang in ("ja", "en", "zh", "es")},
    }
    path.write_text("".join(f"{k} = {_toml_value(v)}\n" for k, v in keep.items()))
    path.chmod(0o600)
    return path


def ivr_instance(settings: Settings, name: str = "ivr", render_only: bool = False) -> Instance:
    """The IVR Asterisk of these settings, configuration rendered and ready to start.

    ``render_only`` writes the configuration for an Asterisk elsewhere (the container of
    docker-compose.yml), assuming Debian's module folder when none is installed here.
    """
    root = None if render_only else sid_root_or_system(settings.asterisk_root)
    data = settings.data_dir.resolve()
    home = data / "asterisk" / name
    (home / "lib").mkdir(parents=True, exist_ok=True)
    classic = classic_agi_settings(settings, home / "lib" / "classic-agi.toml")
    trunk_host = settings.trunk_peer.rsplit(":", 1)[0]
    context = {
        "node": name,
        "etc": home / "etc",
        "moddir": _render_modules_dir() if render_only else _modules_dir(root),
        "lib": home / "lib",
        "data": data,
        "spool": home / "spool",
        "run": run_dir(home),
        "cache": cache_dir(home),
        "log": home / "log",
        "sip_host": settings.sip_host,
        "sip_port": settings.sip_port,
        "rtp_start": settings.rtp_start,
        "rtp_end": settings.rtp_end,
        "trunk_peer": settings.trunk_peer,
        "trunk_host": trunk_host,
        "trunk_username": settings.trunk_username,
        "trunk_password": settings.trunk_password,
        "softphone_password": ensure_secret(settings, "softphone_password"),
        "ami_host": settings.ami_host,
        "ami_port": settings.ami_port,
        "ami_user": settings.ami_user,
        "ami_secret": ensure_secret(settings, "ami_secret"),
        "fastagi_peers": "&".join(settings.fastagi_urls_for(name)),
        "ami_permit": [str(net) for net in networks(settings.ami_permit)],
        "ari_port": settings.ari_port,
        "classic_agi": f"{sys.executable},{REPO / 'agi_scripts' / 'absence.py'},{classic}",
        "voicemail_dir": settings.voicemail_dir.resolve(),
    }
    settings.voicemail_dir.mkdir(parents=True, exist_ok=True)
    render(CONFIG_TEMPLATES, home / "etc", context, sorted(DIALPLANS.glob("*.conf")))
    link_shared_data(data)
    beep = data / "sounds" / "beep.wav"
    if not beep.exists() and shutil.which("sox"):
        # Record() plays "beep" before recording; ours is a plain 1 kHz tone, per language.
        for lang in ("", "ja", "en", "zh", "es"):
            target = data / "sounds" / lang / "beep.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [
                    "sox",
                    "-n",
                    "-r",
                    "8000",
                    "-c",
                    "1",
                    "-b",
                    "16",
                    str(target),
                    "synth",
                    "0.25",
                    "sine",
                    "1000",
                    "vol",
                    "0.5",
                ],
                check=True,
            )
    binds = ((data, True), *python_binds(settings)) if root else ()
    return Instance(name=name, home=home, root=root, binds=binds)
