"""docker-compose.yml: the production shape, checked by Docker when its compose plugin is
here, and always for what the file points at (build folders, rendered config, secrets)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from shutil import which

import yaml

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "RENRAKU_DB_PASSWORD": "x", "RENRAKU_AMI_SECRET": "y"}


def test_compose_file_is_consistent() -> None:
    spec = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert set(spec["services"]) == {"db", "app", "asterisk"}
    for name in ("app", "asterisk"):
        build = REPO / spec["services"][name]["build"]
        assert (build / "Dockerfile").is_file(), f"{name}: no Dockerfile in {build}"
    app_env = spec["services"]["app"]["environment"]
    assert app_env["RENRAKU_DATABASE_URL"].startswith("postgresql+asyncpg://")
    # Secrets are required from the environment, never written in the file.
    assert "${RENRAKU_AMI_SECRET:?" in (REPO / "docker-compose.yml").read_text()
    mount = next(v for v in spec["services"]["asterisk"]["volumes"] if "renraku-asterisk" in v)
    assert mount.startswith("./var/asterisk/ivr/etc:")  # what `renraku asterisk render` writes


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
