"""`renraku prompts voices`: the Open JTalk voice is fetched once, checked, and kept outside git.

The download itself is faked (a local sdist): the tests never need the network.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from prompts import htsvoice
from prompts.htsvoice import VoiceFetchError, ensure_openjtalk_voice
from prompts.tts import openjtalk_voice_path
from renraku.settings import Settings


def _fake_pip(monkeypatch: pytest.MonkeyPatch, voice: bytes | None) -> list[list[str]]:
    """`pip download` replaced by writing a pyopenjtalk sdist holding ``voice``."""
    calls: list[list[str]] = []

    def run(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        with tarfile.open(dest / "pyopenjtalk-0.4.1.tar.gz", "w:gz") as tar:
            members = {"LICENSE_mei_normal.htsvoice": b"CC BY 3.0\n"}
            if voice is not None:
                members["mei_normal.htsvoice"] = voice
            for name, data in members.items():
                info = tarfile.TarInfo(f"pyopenjtalk-0.4.1/pyopenjtalk/htsvoice/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(htsvoice.subprocess, "run", run)
    return calls


def test_voice_is_fetched_once_into_the_configured_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    voice = b"fake htsvoice"
    monkeypatch.setattr(htsvoice, "MEI_SHA256", hashlib.sha256(voice).hexdigest())
    calls = _fake_pip(monkeypatch, voice)
    settings = Settings(openjtalk_voice=str(tmp_path / "voices" / "mei_normal.htsvoice"))
    path = ensure_openjtalk_voice(settings, log=lambda _m: None)
    assert path == openjtalk_voice_path(settings) and path.read_bytes() == voice
    assert (path.parent / "LICENSE_mei_normal.htsvoice").is_file()
    assert "--no-deps" in calls[0] and htsvoice.PYOPENJTALK in calls[0]
    assert ensure_openjtalk_voice(settings, log=lambda _m: None) == path
    assert len(calls) == 1  # idempotent: already there, nothing downloaded
    assert not list(path.parent.glob("*.part"))


def test_a_voice_with_another_checksum_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_pip(monkeypatch, b"tampered")
    settings = Settings(openjtalk_voice=str(tmp_path / "v" / "mei_normal.htsvoice"))
    with pytest.raises(VoiceFetchError, match="sha256"):
        ensure_openjtalk_voice(settings, log=lambda _m: None)
    assert not openjtalk_voice_path(settings).exists()


def test_an_sdist_without_the_voice_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_pip(monkeypatch, None)
    settings = Settings(openjtalk_voice=str(tmp_path / "v" / "mei_normal.htsvoice"))
    with pytest.raises(VoiceFetchError, match=r"holds no mei_normal\.htsvoice"):
        ensure_openjtalk_voice(settings, log=lambda _m: None)


def test_default_voice_lives_in_the_cache_outside_git() -> None:
    path = openjtalk_voice_path(Settings())
    assert path == Path.home() / ".cache" / "renraku" / "voices" / "mei_normal.htsvoice"
    assert Path(__file__).resolve().parent.parent not in path.parents
