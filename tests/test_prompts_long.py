"""Long Japanese messages (a school's broadcast) are spoken to the end by Open JTalk.

open_jtalk silently drops input past ~1 KiB and reads only one line; a three-paragraph
message must not stop mid-sentence.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prompts import tts
from prompts.audio import to_phone_wav, wav_info
from prompts.jsplit import MAX_BYTES, split_for_openjtalk
from tests.prompts_fixtures import offline_settings

SENTENCE = "明日の運動会は、雨のため土曜日に延期します。"


def _joined(pieces: list[str]) -> str:
    return "".join(pieces).replace(" ", "")


def test_short_text_is_one_piece() -> None:
    assert split_for_openjtalk(SENTENCE) == [SENTENCE]
    assert split_for_openjtalk("  ") == []


def test_long_text_splits_at_sentence_ends_under_the_limit() -> None:
    text = SENTENCE * 40  # ~2.6 KiB
    pieces = split_for_openjtalk(text)
    assert len(pieces) > 2
    assert all(len(p.encode()) <= MAX_BYTES for p in pieces)
    assert all(p.endswith("。") for p in pieces)  # whole sentences, pauses where they belong
    assert _joined(pieces) == text


def test_a_sentence_longer_than_the_limit_splits_at_commas_then_anywhere() -> None:
    clause_text = "、".join(["保護者の皆さまにお知らせがあります"] * 40) + "。"
    pieces = split_for_openjtalk(clause_text)
    assert all(len(p.encode()) <= MAX_BYTES for p in pieces)
    assert all(p.endswith(("、", "。")) for p in pieces)
    assert _joined(pieces) == clause_text
    no_breaks = "あ" * 1000
    pieces = split_for_openjtalk(no_breaks)
    assert all(len(p.encode()) <= MAX_BYTES for p in pieces) and "".join(pieces) == no_breaks


def test_no_piece_has_a_newline_and_lines_are_all_kept() -> None:
    text = "一行目のお知らせです。\n二行目のお知らせです\n三行目です。"
    pieces = split_for_openjtalk(text)
    assert all("\n" not in p for p in pieces)
    assert "三行目" in "".join(pieces) and "二行目" in "".join(pieces)


async def test_a_long_message_is_spoken_to_the_end(
    tmp_path: Path, openjtalk_voice: Path
) -> None:
    settings = offline_settings(tmp_path)
    engine = await tts.pick(settings, "ja")
    assert engine.name == "openjtalk"

    async def seconds(text: str, name: str) -> float:
        work = tmp_path / name
        work.mkdir()
        speech = await tts.synthesize(settings, "ja", text, work)
        assert speech.engine == "openjtalk"
        await to_phone_wav(speech.path, work / "phone.wav")
        info = wav_info(work / "phone.wav")
        assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
        return info.duration_ms / 1000

    one = await seconds(SENTENCE, "one")
    # 24 sentences ≈ 1.6 KiB: open_jtalk alone would have stopped after about 14.
    many = await seconds(SENTENCE * 24, "many")
    assert many > 0.85 * 24 * one, (one, many)


@pytest.mark.parametrize("lang", ["ja"])
def test_espeak_still_never_speaks_japanese(tmp_path: Path, lang: str) -> None:
    names = [e.name for e in tts.chain(offline_settings(tmp_path, tts_ja="espeak"), lang)]
    assert names == ["openjtalk"]
