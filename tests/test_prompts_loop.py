"""TTS never blocks the event loop (the FastAGI calls of the whole process share it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from prompts import tts
from tests.prompts_fixtures import offline_settings


async def test_chinese_pinyin_conversion_runs_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    real = tts.to_pinyin

    def watched(text: str) -> str:
        try:
            asyncio.get_running_loop()
            seen.append(True)  # called on the loop's thread
        except RuntimeError:
            seen.append(False)
        return real(text)

    monkeypatch.setattr(tts, "to_pinyin", watched)
    speech = await tts.synthesize(offline_settings(tmp_path), "zh", "明天学校放假。", tmp_path)
    assert speech.engine == "espeak" and speech.path.stat().st_size > 0
    assert seen == [False]
