"""A text rendered in one language is found by Asterisk from a call in any language."""

from __future__ import annotations

import os
from pathlib import Path

from prompts import dynamic
from renraku.settings import LANGUAGES
from tests.prompts_fixtures import PromptWorld, offline_settings


def asterisk_finds(sounds: Path, channel_lang: str, name: str) -> Path | None:
    """Asterisk's lookup order for STREAM FILE: the channel's language, none, then en."""
    for folder in (sounds / channel_lang, sounds, sounds / "en"):
        if (folder / f"{name}.wav").is_file():
            return folder / f"{name}.wav"
    return None


async def test_japanese_message_plays_in_a_chinese_or_spanish_call(tmp_path: Path) -> None:
    settings = offline_settings(tmp_path)
    name = await dynamic.say_text(settings, "ja", "明日は運動会です。")
    files = [asterisk_finds(settings.sounds_dir, lang, name) for lang in LANGUAGES]
    assert all(files), files
    inodes = {os.stat(f).st_ino for f in files if f}
    assert len(inodes) == 1  # hard links: one render, no copies
    assert await dynamic.say_text(settings, "ja", "明日は運動会です。") == name
    silent = await dynamic.silence(settings, "ja")
    assert all(asterisk_finds(settings.sounds_dir, lang, silent) for lang in LANGUAGES)


async def test_prune_removes_a_shared_render_everywhere_and_counts_it_once(
    tmp_path: Path,
) -> None:
    settings = offline_settings(tmp_path)
    name = await dynamic.say_text(settings, "es", "La excursión es mañana.")
    path = settings.sounds_dir / "es" / f"{name}.wav"
    old = path.stat().st_mtime - 100 * 86400
    os.utime(path, (old, old))
    assert dynamic.prune(settings, 90) == 1
    assert not any(asterisk_finds(settings.sounds_dir, lang, name) for lang in LANGUAGES)


def _tone(path: Path, hz: int) -> Path:
    import subprocess

    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", "1.5",
                    "sine", str(hz), "vol", "0.5"], check=True)
    return path


async def test_japanese_recording_plays_in_other_languages_calls_until_they_have_their_own(
    prompt_world: PromptWorld,
) -> None:
    from prompts import store
    from prompts.voice import PromptVoice

    w = prompt_world
    key = "broadcast.campaign-7"
    voice = PromptVoice(w.settings, w.sessions)
    await store.add_recording(w.sessions, w.settings, key, "ja", _tone(tmp(w, "ja1.wav"), 440))
    # The broadcast flow: the family's language first, then the Japanese recording.
    assert await voice.recording(key, "zh") is None
    name = await voice.recording(key, "ja")
    assert name == f"renraku/{key}"
    ja_file = store.active_path(w.settings, "ja", key)
    for lang in LANGUAGES:
        found = asterisk_finds(w.settings.sounds_dir, lang, name)
        assert found is not None and same(found, ja_file), lang
    # Spanish gets its own recording: Spanish calls hear it, Japanese is untouched.
    await store.add_recording(w.sessions, w.settings, key, "es", _tone(tmp(w, "es.wav"), 660))
    assert await voice.recording(key, "es") == name
    es_file = store.active_path(w.settings, "es", key)
    assert not same(es_file, ja_file)
    # A new Japanese version reaches the languages that borrow it, not Spanish.
    await store.add_recording(w.sessions, w.settings, key, "ja", _tone(tmp(w, "ja2.wav"), 550))
    await voice.recording(key, "ja")
    ja_file = store.active_path(w.settings, "ja", key)
    assert same(store.active_path(w.settings, "zh", key), ja_file)
    assert not same(store.active_path(w.settings, "es", key), ja_file)
    async with w.sessions() as s:  # borrowed files are not versions of their own
        assert await store.active(s, key, "zh") is None


def tmp(w: PromptWorld, name: str) -> Path:
    return w.settings.data_dir / name


def same(a: Path, b: Path) -> bool:
    return a.samefile(b)
