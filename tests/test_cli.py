"""The ``renraku`` command as a person runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXPECTED = {"config", "db", "demo-data", "school", "staff"}


def renraku(*args: str, data_dir: Path, stdin: str = "",
            **env_vars: str) -> subprocess.CompletedProcess[str]:
    """``renraku ARGS`` in a subprocess; ``env_vars`` become ``RENRAKU_<NAME>``."""
    env = {**os.environ, "RENRAKU_DATA_DIR": str(data_dir)}
    env.pop("RENRAKU_DATABASE_URL", None)
    env.update({f"RENRAKU_{k.upper()}": v for k, v in env_vars.items()})
    return subprocess.run(
        [sys.executable, "-m", "renraku.cli", *args], env=env, text=True, capture_output=True,
        timeout=120, check=False, input=stdin,
    )


def test_help_lists_subcommands(tmp_path: Path) -> None:
    out = renraku("--help", data_dir=tmp_path)
    assert out.returncode == 0
    for name in EXPECTED:
        assert name in out.stdout
    sub = renraku("db", "--help", data_dir=tmp_path)
    assert sub.returncode == 0 and "upgrade" in sub.stdout


def test_upgrade_and_demo_data_twice(tmp_path: Path) -> None:
    for _ in range(2):
        assert renraku("db", "upgrade", data_dir=tmp_path).returncode == 0
    first = renraku("demo-data", data_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "2 schools, 40 children" in first.stdout
    assert renraku("db", "upgrade", data_dir=tmp_path).returncode == 0
    second = renraku("demo-data", data_dir=tmp_path)
    assert second.returncode == 0 and "already present" in second.stdout
    assert (tmp_path / "renraku.db").exists()


def test_bad_settings_file_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("nonsense = 1\n")
    out = renraku("-c", str(cfg), "config", data_dir=tmp_path)
    assert out.returncode == 2 and "unknown setting 'nonsense'" in out.stderr


def test_config_masks_secrets(tmp_path: Path) -> None:
    env_secret = "do-not-print-me"
    os.environ["RENRAKU_AMI_SECRET"] = env_secret
    try:
        out = renraku("config", data_dir=tmp_path)
    finally:
        del os.environ["RENRAKU_AMI_SECRET"]
    assert out.returncode == 0 and env_secret not in out.stdout and "********" in out.stdout
