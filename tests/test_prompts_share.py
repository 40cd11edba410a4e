"""A text rendered in one language is found by Asterisk from a call in any language."""

from __future__ import annotations

import os
from pathlib import Path

from prompts import dynamic
from renraku.settings import LANGUAGES
from tests.prompts_fixtures import offline_settings


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
