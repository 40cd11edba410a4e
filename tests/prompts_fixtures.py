"""Fixtures for the prompts tests: offline-only settings, a migrated SQLite DB per world."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from models.db import create_engine, session_factory
from models.migrate import upgrade
from prompts.htsvoice import ensure_openjtalk_voice
from prompts.store import Factory
from renraku.settings import Settings

# Offline engines only: no test may need the internet (gTTS is tested with a fake probe).
OFFLINE = {"tts_ja": "openjtalk", "tts_en": "espeak", "tts_zh": "espeak", "tts_es": "espeak"}


def offline_settings(data_dir: Path, **changes: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite+aiosqlite:///{data_dir / 'renraku.db'}", **OFFLINE, **changes}
    return Settings(data_dir=data_dir, **values)  # type: ignore[arg-type]


@dataclass
class PromptWorld:
    settings: Settings
    sessions: Factory


async def open_world(data_dir: Path) -> tuple[PromptWorld, object]:
    settings = offline_settings(data_dir)
    await upgrade(settings.db_url)
    engine = create_engine(settings.db_url)
    return PromptWorld(settings, session_factory(engine)), engine


@pytest.fixture(scope="session")
def openjtalk_voice() -> Path:
    """`make test` fetches it first (`renraku prompts voices`); fetched here otherwise."""
    return ensure_openjtalk_voice(Settings(), log=lambda _msg: None)


@pytest.fixture
async def prompt_world(tmp_path: Path, openjtalk_voice: Path) -> AsyncIterator[PromptWorld]:
    """An empty, migrated world of its own (for tests that change prompts)."""
    world, engine = await open_world(tmp_path / "data")
    yield world
    await engine.dispose()  # type: ignore[attr-defined]


async def wait_name_rendered(settings: Settings, text: str, lang: str = "ja",
                             within: float = 60) -> None:
    """Until ``text`` (a name) is in the TTS cache, as the background render leaves it."""
    import asyncio

    from prompts import dynamic

    for _ in range(int(within / 0.2)):
        if dynamic.cached(settings, lang, text) is not None:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{text!r} ({lang}) was not rendered within {within} s")
