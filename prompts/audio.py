"""Audio plumbing: subprocesses off the event loop, conversion to what Asterisk plays.

Asterisk plays 8 kHz mono 16-bit signed PCM WAV natively (no transcoding per call), so
every file under ``sounds/`` is converted to exactly that, here.
"""

from __future__ import annotations

import array
import asyncio
import json
import math
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

RATE = 8000
PEAK_DBFS = -3.0  # light peak normalisation of TTS output: even level between engines


class AudioError(RuntimeError):
    pass


async def run(*cmd: str, limit_s: float = 120.0) -> bytes:
    """Run a command without blocking the event loop; its stdout, or AudioError."""
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AudioError(f"{cmd[0]} took longer than {limit_s:.0f} s") from None
    if proc.returncode != 0:
        tail = err.decode(errors="replace")[-400:]
        raise AudioError(f"{cmd[0]} failed ({proc.returncode}): {tail}")
    return out


def run_sync(*cmd: str, timeout: float = 120.0) -> bytes:
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise AudioError(f"{cmd[0]} took longer than {timeout:.0f} s") from None
    if done.returncode != 0:
        raise AudioError(f"{cmd[0]} failed ({done.returncode}): "
                         f"{done.stderr.decode(errors='replace')[-400:]}")
    return done.stdout


def _sox_args(src: Path, dst: Path) -> list[str]:
    # Remix to mono, peak-normalise, then resample: the output options make it 8k/16-bit.
    return ["sox", str(src), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
            str(dst), "gain", "-n", str(PEAK_DBFS)]


def _decode_args(src: Path, dst: Path) -> list[str]:
    return ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-vn", "-ac", "1",
            "-c:a", "pcm_s16le", str(dst)]


async def to_phone_wav(src: Path, dst: Path) -> None:
    """Any TTS output (WAV, or MP3 from an online engine) → 8 kHz mono 16-bit WAV."""
    if src.suffix.lower() != ".wav":  # sox's MP3 support is optional; ffmpeg always decodes
        decoded = src.with_suffix(".decoded.wav")
        await run(*_decode_args(src, decoded))
        src = decoded
    await run(*_sox_args(src, dst))


@dataclass(frozen=True)
class WavInfo:
    rate: int
    channels: int
    sample_width: int  # bytes
    frames: int

    @property
    def duration_ms(self) -> int:
        return round(self.frames * 1000 / self.rate) if self.rate else 0


def wav_info(path: Path) -> WavInfo:
    with wave.open(str(path), "rb") as w:
        return WavInfo(w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes())


def peak_dbfs(path: Path) -> float:
    """Peak level of a 16-bit WAV in dBFS (-inf for digital silence)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise AudioError("peak_dbfs needs 16-bit audio")
        samples = array.array("h", w.readframes(w.getnframes()))
    peak = max((abs(s) for s in samples), default=0)
    return 20 * math.log10(peak / 32768) if peak else float("-inf")


def probe_sync(path: Path) -> tuple[bool, float | None]:
    """(has an audio stream, duration in s or None) by ffprobe; (False, None) if unreadable."""
    try:
        out = run_sync("ffprobe", "-v", "error", "-show_entries",
                       "format=duration:stream=codec_type", "-of", "json", str(path), timeout=30)
    except AudioError:
        return False, None
    data = json.loads(out or b"{}")
    has_audio = any(s.get("codec_type") == "audio" for s in data.get("streams", []))
    raw = data.get("format", {}).get("duration")
    try:
        return has_audio, float(raw) if raw not in (None, "N/A") else None
    except ValueError:
        return has_audio, None
