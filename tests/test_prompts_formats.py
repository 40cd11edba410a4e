"""Recordings in the formats staff actually have (MP3 from a phone app, M4A from an iPhone,
CD-quality stereo WAV) become phone WAVs at an even loudness; impostors are refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import Prompt
from prompts import store
from prompts.audio import peak_dbfs, wav_info
from tests.prompts_fixtures import PromptWorld

KEY = "absence.goodbye"


def _make(path: Path, seconds: float, volume: float = 0.5, *codec: str) -> Path:
    """A two-tone signal (speech-like enough for loudnorm) encoded by ffmpeg."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"sine=frequency=300:duration={seconds}:sample_rate=44100", "-f", "lavfi", "-i",
         f"sine=frequency=1200:duration={seconds}:sample_rate=44100", "-filter_complex",
         f"amix=inputs=2,volume={volume}", "-ac", "2", *codec, str(path)],
        check=True,
    )
    return path


def _video(path: Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=blue:s=64x64:d=1", "-an", str(path)], check=True)


async def _count(w: PromptWorld) -> int:
    async with w.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Prompt)) or 0)


@pytest.mark.parametrize(("name", "codec"), [
    ("memo.mp3", ("-c:a", "libmp3lame", "-b:a", "64k")),
    ("memo.m4a", ("-c:a", "aac", "-b:a", "64k")),
    ("memo.wav", ("-c:a", "pcm_s24le")),
])
async def test_common_formats_become_phone_wavs(
    prompt_world: PromptWorld, name: str, codec: tuple[str, ...]
) -> None:
    w = prompt_world
    src = _make(w.settings.data_dir / name, 2.5, 0.5, *codec)
    prompt = await store.add_recording(w.sessions, w.settings, KEY, "ja", src, staff_id=None)
    assert prompt.active and prompt.source == "recorded" and prompt.version == 1
    assert 2300 < prompt.duration_ms < 2800
    played = store.active_path(w.settings, "ja", KEY)
    info = wav_info(played)
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
    assert played.read_bytes() == (w.settings.sounds_dir / prompt.audio_path).read_bytes()


async def test_quiet_and_loud_recordings_end_up_equally_loud(prompt_world: PromptWorld) -> None:
    w = prompt_world
    quiet = _make(w.settings.data_dir / "quiet.wav", 3, 0.08)  # sine is -18 dBFS: ≈ -40
    loud = _make(w.settings.data_dir / "loud.wav", 3, 1.0)
    assert abs(peak_dbfs(quiet) - peak_dbfs(loud)) > 20
    await store.add_recording(w.sessions, w.settings, KEY, "ja", quiet)
    level_quiet = peak_dbfs(store.active_path(w.settings, "ja", KEY))
    await store.add_recording(w.sessions, w.settings, KEY, "ja", loud)
    level_loud = peak_dbfs(store.active_path(w.settings, "ja", KEY))
    assert abs(level_quiet - level_loud) < 3, (level_quiet, level_loud)
    assert level_loud <= -1.0  # true-peak limit: no clipping on the line


@pytest.mark.parametrize("kind", ["text_as_mp3", "video_only", "long_mp3"])
async def test_impostors_and_long_mp3_are_refused(prompt_world: PromptWorld, kind: str) -> None:
    w = prompt_world
    path = w.settings.data_dir / f"{kind}.mp3"
    if kind == "text_as_mp3":
        path.write_text("ID3 but really a shopping list\n" * 20)
        expected = "admin.recording_not_audio"
    elif kind == "video_only":
        path = w.settings.data_dir / "clip.mp4"
        _video(path)
        expected = "admin.recording_not_audio"
    else:
        _make(path, 125, 0.5, "-c:a", "libmp3lame", "-b:a", "16k", "-ac", "1", "-ar", "8000")
        expected = "admin.recording_too_long"
    with pytest.raises(store.RecordingError) as caught:
        await store.add_recording(w.sessions, w.settings, KEY, "ja", path)
    assert caught.value.message_key == expected
    assert await _count(w) == 0
    assert not store.active_path(w.settings, "ja", KEY).exists()
    leftovers = list((w.settings.sounds_dir / "ja" / "renraku" / "versions").glob("*"))
    assert leftovers == []


def _lufs(path: Path) -> float:
    out = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", str(path), "-af",
                          "ebur128", "-f", "null", "-"], capture_output=True, text=True).stderr
    summary = out.split("Integrated loudness:")[-1]
    return float(summary.split("I:")[1].split("LUFS")[0])


def _speech(text: str, path: Path, gain_db: float) -> Path:
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "44100", "-c", "2", str(path), "gain", str(gain_db)],
                   check=True)
    return path


async def test_a_recording_is_as_loud_as_the_tts_prompts_around_it(
    prompt_world: PromptWorld,
) -> None:
    from prompts import render

    w = prompt_world
    await render.build(w.settings, w.sessions, languages=["en"], keys=["absence.welcome"],
                       templates=False, progress=None)
    tts_level = _lufs(store.active_path(w.settings, "en", "absence.welcome"))
    text = "Thank you for calling. This is the school's absence line. Please listen carefully."
    for gain in (-25.0, 0.0):  # a whispered phone memo and a loud one
        src = _speech(text, w.settings.data_dir / f"memo{gain}.wav", gain)
        await store.add_recording(w.sessions, w.settings, KEY, "en", src)
        level = _lufs(store.active_path(w.settings, "en", KEY))
        assert abs(level - tts_level) < 2.5, (gain, level, tts_level)


def _padded(path: Path) -> Path:
    """2 s of silence, a word, a 0.8 s pause, a word, 2 s of silence (a phone recording)."""
    parts = []
    for i, (seconds, vol) in enumerate([(2, 0), (1.5, 0.3), (0.8, 0), (1.5, 0.3), (2, 0)]):
        part = path.with_name(f"part{i}.wav")
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(part), "synth",
                        str(seconds), "sine", "440", "vol", str(vol)], check=True)
        parts.append(str(part))
    subprocess.run(["sox", *parts, str(path)], check=True)
    return path


async def test_silence_around_a_recording_is_trimmed_but_pauses_inside_stay(
    prompt_world: PromptWorld,
) -> None:
    w = prompt_world
    src = _padded(w.settings.data_dir / "padded.wav")
    prompt = await store.add_recording(w.sessions, w.settings, KEY, "ja", src)
    # 1.5 + 0.8 + 1.5 s of content, plus short edges (0.2 s before, 0.3 s after).
    assert 3900 <= prompt.duration_ms <= 4600, prompt.duration_ms
