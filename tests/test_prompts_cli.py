"""`renraku prompts` end to end through the console command, one language (fast: espeak-ng),
and the call flows' Voice protocols matched by PromptVoice."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from prompts.audio import wav_info
from prompts.catalog import catalog
from prompts.voice import PromptVoice
from renraku import cli
from tests.prompts_fixtures import OFFLINE


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.delenv("RENRAKU_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./renraku.toml of the checkout
    monkeypatch.setenv("RENRAKU_DATA_DIR", str(data))
    monkeypatch.setenv("RENRAKU_DATABASE_URL", f"sqlite+aiosqlite:///{data / 'renraku.db'}")
    for name, chain in OFFLINE.items():
        monkeypatch.setenv(f"RENRAKU_{name.upper()}", chain)
    return data


def test_build_check_import_rollback_through_the_command(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["db", "upgrade"]) == 0
    capsys.readouterr()
    # Nothing built yet: check names the gaps and fails.
    assert cli.main(["prompts", "check", "--lang", "es"]) == 1
    assert "no audio for absence.welcome" in capsys.readouterr().out

    assert cli.main(["prompts", "build", "--lang", "es", "--days", "1"]) == 0
    out, err = capsys.readouterr()
    static = len(catalog().static())
    assert f"{static} rendered (espeak:es)" in out
    assert f"] {static}/" not in out and "/" in err and "[" in err  # progress bar on stderr
    assert err.rstrip().splitlines()[-1].startswith("[" + "#" * 30 + "]")

    assert cli.main(["prompts", "check", "--lang", "es"]) == 0
    assert f"es: {static}/{static} prompts playable" in capsys.readouterr().out
    assert cli.main(["prompts", "check", "--lang", "en"]) == 1  # other languages: still gaps
    capsys.readouterr()

    welcome = cli_env / "sounds" / "es" / "renraku" / "absence.welcome.wav"  # Asterisk's layout
    tts_bytes = welcome.read_bytes()
    info = wav_info(welcome)
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)

    # A second build has nothing to do.
    assert cli.main(["prompts", "build", "--lang", "es", "--days", "1"]) == 0
    assert "0 rendered" in capsys.readouterr().out

    # Import: a bad file is refused with a message and a non-zero exit; a good one is active.
    junk = cli_env / "notes.txt"
    junk.write_text("not audio at all\n")
    assert cli.main(["prompts", "import", "absence.welcome", "es", str(junk)]) == 1
    assert "not audio" in capsys.readouterr().err
    assert welcome.read_bytes() == tts_bytes
    good = cli_env / "welcome.wav"
    _tone(good, seconds=1.5)
    assert cli.main(["prompts", "import", "absence.welcome", "es", str(good)]) == 0
    assert "version 2 active (recorded" in capsys.readouterr().out
    assert welcome.read_bytes() != tts_bytes
    # The recording survives a forced rebuild; check counts it.
    assert cli.main(["prompts", "build", "--lang", "es", "--key", "absence.welcome",
                     "--force"]) == 0
    assert "1 recordings kept" in capsys.readouterr().out
    assert cli.main(["prompts", "check", "--lang", "es"]) == 0
    assert "(1 recorded)" in capsys.readouterr().out

    assert cli.main(["prompts", "rollback", "absence.welcome", "es"]) == 0
    assert "version 1 (tts) active" in capsys.readouterr().out
    assert welcome.read_bytes() == tts_bytes
    assert cli.main(["prompts", "rollback", "absence.welcome", "es"]) == 1
    assert "no earlier version" in capsys.readouterr().err


def _tone(path: Path, seconds: float) -> None:
    import subprocess

    subprocess.run(["sox", "-n", "-r", "16000", "-c", "2", str(path), "synth", str(seconds),
                    "sine", "440", "vol", "0.5"], check=True)


def test_list_is_numbered_and_marks_the_templates(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["prompts", "list", "--lang", "ja", "--lang", "es"]) == 0
    out = capsys.readouterr().out
    numbers = [e.number for e in catalog()]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    for entry in catalog():
        mark = " " if entry.static else "*"
        assert f"{entry.number:>4}{mark} {entry.key}\n" in out
        assert f"ja: {entry.texts['ja']}" in out and f"es: {entry.texts['es']}" in out


@pytest.mark.parametrize("module", ["ivr.absence_flow", "ivr.broadcast_flow"])
def test_prompt_voice_has_what_the_call_flows_call(module: str) -> None:
    import importlib

    protocol = importlib.import_module(module).Voice
    for name, member in vars(protocol).items():
        if name.startswith("_") or not callable(member):
            continue
        ours = getattr(PromptVoice, name)
        assert inspect.iscoroutinefunction(ours), name
        theirs, mine = inspect.signature(member), inspect.signature(ours)
        assert list(theirs.parameters) == list(mine.parameters), name
