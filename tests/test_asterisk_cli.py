"""``renraku asterisk start|status|cli|stop`` as a person runs it, on the real Asterisk."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ivr import asterisk_runtime as rt
from renraku.settings import load_settings
from tests.asterisk_harness import free_port

DEFAULT_ROOT = Path.home() / ".cache" / "renraku" / "asterisk-root"


def _env(data_dir: Path) -> dict[str, str]:
    import socket

    env = {
        **os.environ,
        "RENRAKU_DATA_DIR": str(data_dir),
        "RENRAKU_SIP_PORT": str(free_port(socket.SOCK_DGRAM)),
        "RENRAKU_AMI_PORT": str(free_port()),
        "RENRAKU_FASTAGI_PORT": str(free_port()),
        "RENRAKU_RTP_START": "19500",
        "RENRAKU_RTP_END": "19519",
        "RENRAKU_ASTERISK_ROOT": os.environ.get("RENRAKU_ASTERISK_ROOT", str(DEFAULT_ROOT)),
    }
    env.pop("RENRAKU_CONFIG", None)
    return env


def renraku(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "renraku.cli", "asterisk", *args],
        env=env, text=True, capture_output=True, timeout=120, check=False,
    )


def _bind_targets(root: Path | None, folder: Path) -> list[str]:
    if root is None:
        return []
    target = str(root / str(folder.resolve()).lstrip("/"))
    return [m for m in rt.mounts() if m == target]


def test_start_status_cli_stop(tmp_path: Path) -> None:
    env = _env(tmp_path / "data")
    settings = load_settings(None, env=env)
    # A prompt where the prompt store keeps it: Asterisk must see the same path.
    prompt = settings.sounds_dir / "ja" / "renraku" / "cli-test.wav"
    prompt.parent.mkdir(parents=True, exist_ok=True)
    prompt.write_bytes(b"RIFF")
    inst = rt.ivr_instance(settings)
    try:
        started = renraku(env, "start")
        assert started.returncode == 0, started.stdout + started.stderr
        assert "Asterisk running (pid" in started.stdout
        pid = inst.pid()
        assert pid is not None
        # Asterisk runs detached from the command that started it.
        os.kill(pid, 0)

        status = renraku(env, "status")
        assert (status.returncode, status.stdout.strip()) == (0, f"running (pid {pid})")
        shown = renraku(env, "cli", "dialplan", "show", "renraku-inbound")
        assert shown.returncode == 0 and "'renraku-inbound'" in shown.stdout, shown.stdout
        # A second start finds the running one instead of starting another.
        assert inst.start() == pid
        if inst.root is not None:
            # The data folder is bind-mounted at its own path inside the chroot.
            assert _bind_targets(inst.root, settings.data_dir)
            inside = inst.root / str(prompt.resolve()).lstrip("/")
            assert inside.read_bytes() == b"RIFF"

        stopped = renraku(env, "stop")
        assert stopped.returncode == 0 and "Asterisk stopped" in stopped.stdout
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)
        status = renraku(env, "status")
        assert (status.returncode, status.stdout.strip()) == (3, "not running")
        # Nothing of this data folder stays mounted in the shared root.
        assert _bind_targets(inst.root, settings.data_dir) == []
        # With Asterisk down, `cli` fails with a message (the command prints it), no hang.
        with pytest.raises(rt.AsteriskError, match=r"failed|timed out"):
            inst.rx("core show version")
    finally:
        inst.stop(timeout_s=5)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_start_timeout_reports_the_log_tail_and_stops(tmp_path: Path) -> None:
    settings = load_settings(None, env=_env(tmp_path / "data"))
    inst = rt.ivr_instance(settings)
    try:
        with pytest.raises(rt.AsteriskError) as err:
            inst.start(ready=lambda: False, timeout_s=4, tie_to_parent=True)
        message = str(err.value)
        assert "did not boot in 4 s" in message
        assert "Asterisk" in message.split("\n", 1)[1]  # the log tail came along
        assert inst.pid() is None
        assert _bind_targets(inst.root, settings.data_dir) == []
    finally:
        inst.stop(timeout_s=5)


def test_provision_reuses_the_root(tmp_path: Path) -> None:
    """`make setup` runs provision every time: with a root in place it must not redo it."""
    env = _env(tmp_path / "data")
    out = renraku(env, "provision")
    assert out.returncode == 0, out.stdout + out.stderr
    if rt.system_asterisk() is None:
        root = Path(env["RENRAKU_ASTERISK_ROOT"])
        assert out.stdout.strip() == f"Asterisk root ready: {root}"
        assert (root / rt.STAMP).read_text().startswith("Asterisk 2")
    else:
        assert out.stdout.startswith("using the system Asterisk")
