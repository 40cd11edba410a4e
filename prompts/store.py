"""Prompt versions in the database and on disk: add, activate, roll back, import recordings.

Every version of a prompt keeps its own file, ``<sounds>/<lang>/renraku/versions/<key>.v<N>.wav``
(versions are never deleted), and its audio in the database: in a city, the app node that
serves a version to the IVR nodes (prompts.media) need not be the one that made it. The
active version is also copied to ``<sounds>/<lang>/renraku/<key>.wav``, the name the call
flows play, so switching versions is one atomic file replace and Asterisk never sees a
half-written file.

These functions are what the admin phone line (FastAGI) and the web upload page call.
"""

from __future__ import annotations

import array
import asyncio
import errno
import filecmp
import os
import re
import shutil
import tempfile
import wave
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Prompt
from models.db import transaction
from models.enums import PromptSource
from prompts.audio import AudioError, peak_dbfs, probe_sync, run_sync, wav_info
from prompts.catalog import catalog
from renraku.settings import LANGUAGES, Settings

MAX_RECORDING_S = 120
MIN_RECORDING_MS = 300
SILENCE_DBFS = -45.0  # a peak below this is a recording of nothing (or of line noise)
# EBU R128: recordings as loud as each other and as the TTS prompts around them (peak-
# normalised TTS speech measures about -21 LUFS), so a call does not jump in volume.
LOUDNORM = "loudnorm=I=-21:TP=-2:LRA=11"
# Silence before the first and after the last word (the admin line's wait for the beep,
# the reach for #) is cut to a short pause; pauses inside the recording stay.
EDGE_KEEP_S = (0.2, 0.3)
EDGE_BELOW_PEAK_DB = 40.0  # "silence": 10 ms windows this far under the recording's peak
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")

# Message keys are catalog keys too, so the admin phone line can say them.
MESSAGES = {
    "admin.recording_empty": "The file is empty: nothing was recorded.",
    "admin.recording_not_audio": "The file is not audio that can be read (WAV, MP3 or M4A).",
    "admin.recording_too_short": "The recording is too short or silent.",
    "admin.recording_too_long": f"The recording is longer than {MAX_RECORDING_S} seconds.",
    "admin.not_recordable": "This prompt has parts that change with every call; it is "
    "always spoken by TTS and cannot be recorded.",
    "admin.no_previous": "There is no earlier version to go back to.",
    "admin.unknown_number": "There is no such prompt.",
    "admin.disk_full": "The server has no space left for recordings; nothing was changed.",
}
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class PromptError(Exception):
    """A refused prompt operation; ``message_key`` is a catalog key the phone can play."""

    def __init__(self, message_key: str, detail: str = "") -> None:
        self.message_key = message_key
        self.message = MESSAGES.get(message_key, message_key) + (f" ({detail})" if detail else "")
        super().__init__(self.message)


class RecordingError(PromptError):
    """A recording or upload that cannot be used; nothing was changed."""


Factory = async_sessionmaker[AsyncSession]


def _now() -> datetime:
    return datetime.now(UTC)


def check_key(key: str, lang: str) -> None:
    """Keys become file names: only safe characters; catalog templates are TTS-only."""
    if lang not in LANGUAGES:
        raise PromptError("admin.unknown_number", f"unknown language {lang!r}")
    if not KEY_RE.match(key):
        raise PromptError("admin.unknown_number", f"bad prompt key {key!r}")
    cat = catalog()
    if key in cat and not cat[key].static:
        raise PromptError("admin.not_recordable", key)


def sounds_lang_dir(settings: Settings, lang: str) -> Path:
    return settings.sounds_dir / lang / "renraku"


def active_path(settings: Settings, lang: str, key: str) -> Path:
    return sounds_lang_dir(settings, lang) / f"{key}.wav"


def version_relpath(lang: str, key: str, version: int) -> str:
    """``Prompt.audio_path``: relative to ``settings.sounds_dir``."""
    return f"{lang}/renraku/versions/{key}.v{version}.wav"


def playable(key: str) -> str:
    """The name for STREAM FILE (Asterisk adds the language folder and the extension)."""
    return f"renraku/{key}"


def _atomic_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.stem}.", suffix=".tmp")
    os.close(fd)
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, dst)


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def publish(settings: Settings, prompt: Prompt) -> bool:
    """Make ``prompt``'s file the one callers hear; False when it already was."""
    src = settings.sounds_dir / prompt.audio_path
    dst = active_path(settings, prompt.language, prompt.key)
    if dst.is_file() and filecmp.cmp(src, dst, shallow=False):
        return False
    _atomic_copy(src, dst)
    return True


async def active(session: AsyncSession, key: str, lang: str) -> Prompt | None:
    return await session.scalar(
        select(Prompt).where(Prompt.key == key, Prompt.language == lang, Prompt.active)
    )


async def history(session: AsyncSession, key: str, lang: str) -> list[Prompt]:
    rows = await session.scalars(
        select(Prompt).where(Prompt.key == key, Prompt.language == lang)
        .order_by(Prompt.version)
    )
    return list(rows)


async def add_version(
    session: AsyncSession,
    settings: Settings,
    key: str,
    lang: str,
    wav: Path,
    *,
    source: PromptSource,
    duration_ms: int,
    text: str = "",
    text_hash: str = "",
    engine: str = "",
    staff_id: int | None = None,
    now: datetime | None = None,
) -> Prompt | None:
    """Insert ``wav`` (already phone format; moved) as the new active version.

    Inside the caller's transaction; publish the file after it commits. A TTS render
    never replaces an active recording: then nothing is added and None is returned.
    """
    current = await active(session, key, lang)
    if source == PromptSource.TTS and current is not None and (
        current.source == PromptSource.RECORDED
    ):
        _discard(wav)
        return None
    last = await session.scalar(
        select(func.max(Prompt.version)).where(Prompt.key == key, Prompt.language == lang)
    )
    version = (last or 0) + 1
    rel = version_relpath(lang, key, version)
    dst = settings.sounds_dir / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    # Deactivate first: the partial unique index allows one active row per key+language.
    await session.execute(
        update(Prompt).where(Prompt.key == key, Prompt.language == lang, Prompt.active)
        .values(active=False)
    )
    audio = await asyncio.to_thread(wav.read_bytes)
    prompt = Prompt(key=key, language=lang, version=version, source=str(source), text=text,
                    text_hash=text_hash, engine=engine, audio_path=rel,
                    duration_ms=duration_ms, active=True, created_by=staff_id,
                    created_at=now or _now(), audio=audio)
    session.add(prompt)
    await session.flush()
    os.replace(wav, dst)
    return prompt


def trim_edges(path: Path) -> None:
    """Cut leading/trailing silence of a 16-bit mono WAV in place, keeping short margins.

    Done here rather than with ffmpeg's silenceremove, whose detection (5.1) dropped whole
    recordings that start without silence.
    """
    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        samples = array.array("h", w.readframes(w.getnframes()))
    window = max(params.framerate // 100, 1)
    peaks = [max(map(abs, samples[i:i + window]), default=0)
             for i in range(0, len(samples), window)]
    limit = max(peaks, default=0) * 10 ** (-EDGE_BELOW_PEAK_DB / 20)
    loud = [i for i, p in enumerate(peaks) if p > limit]
    if not loud:
        return
    keep_before, keep_after = (round(s * params.framerate) for s in EDGE_KEEP_S)
    start = max(loud[0] * window - keep_before, 0)
    end = min((loud[-1] + 1) * window + keep_after, len(samples))
    if start == 0 and end == len(samples):
        return
    with wave.open(str(path), "wb") as w:
        w.setparams(params)
        w.writeframes(samples[start:end].tobytes())


def validate_and_convert(src_path: Path | str, dst_path: Path | str) -> int:
    """A recording or upload (WAV/MP3/M4A…) → loudness-normalised 8 kHz mono WAV; its ms.

    Raises RecordingError (empty, not audio, too short/silent, too long) and then leaves
    ``dst_path`` untouched. Blocking: call it in a thread from async code.
    """
    src, dst = Path(src_path), Path(dst_path)
    if not src.is_file() or src.stat().st_size == 0:
        raise RecordingError("admin.recording_empty")
    has_audio, seconds = probe_sync(src)
    if not has_audio:
        raise RecordingError("admin.recording_not_audio")
    if seconds is not None and seconds > MAX_RECORDING_S:
        raise RecordingError("admin.recording_too_long", f"{seconds:.0f} s")
    with tempfile.TemporaryDirectory(prefix="renraku-rec-") as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        try:
            run_sync("ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-vn",
                     "-ac", "1", "-ar", "8000", "-c:a", "pcm_s16le", str(raw))
        except AudioError as exc:
            raise RecordingError("admin.recording_not_audio") from exc
        info = wav_info(raw)
        if info.frames == 0:
            raise RecordingError("admin.recording_empty")
        if info.duration_ms > MAX_RECORDING_S * 1000:  # the container's duration can lie
            raise RecordingError("admin.recording_too_long", f"{info.duration_ms // 1000} s")
        if info.duration_ms < MIN_RECORDING_MS or peak_dbfs(raw) < SILENCE_DBFS:
            raise RecordingError("admin.recording_too_short")
        trim_edges(raw)
        # Checked before normalising: loudnorm would turn line noise into a loud hiss.
        run_sync("ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(raw), "-af", LOUDNORM,
                 "-ar", "8000", "-ac", "1", "-c:a", "pcm_s16le", str(out))
        duration = wav_info(out).duration_ms
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(out, dst)
    return duration


async def add_recording(
    factory: Factory,
    settings: Settings,
    key: str,
    lang: str,
    wav_path: Path | str,
    staff_id: int | None = None,
    *,
    now: datetime | None = None,
) -> Prompt:
    """A recording (from Asterisk's Record() or an upload) becomes the active version."""
    check_key(key, lang)
    try:
        return await _add_recording(factory, settings, key, lang, wav_path, staff_id, now)
    except OSError as exc:
        if exc.errno in NO_SPACE:  # a full disk is the admin's to fix, not a crash
            raise RecordingError("admin.disk_full", str(settings.sounds_dir)) from exc
        raise


async def _add_recording(factory: Factory, settings: Settings, key: str, lang: str,
                         wav_path: Path | str, staff_id: int | None,
                         now: datetime | None) -> Prompt:
    incoming = sounds_lang_dir(settings, lang) / "versions"
    incoming.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=incoming, prefix=".incoming.", suffix=".wav")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        duration = await asyncio.to_thread(validate_and_convert, wav_path, tmp)
        entry = catalog().entries.get(key)
        text = entry.text(lang) if entry and lang in entry.texts else ""
        for attempt in range(3):  # a concurrent writer may take the same version number
            try:
                async with transaction(factory) as s:
                    prompt = await add_version(
                        s, settings, key, lang, tmp, source=PromptSource.RECORDED,
                        duration_ms=duration, text=text, staff_id=staff_id, now=now,
                    )
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        assert prompt is not None
        publish(settings, prompt)
        return prompt
    finally:
        _discard(tmp)


import_recording = add_recording  # the web upload page's name for the same thing


async def activate(factory: Factory, settings: Settings, key: str, lang: str,
                   version: int) -> Prompt:
    """Make an existing version the active one (e.g. listen back, then choose)."""
    async with transaction(factory) as s:
        target = await s.scalar(select(Prompt).where(
            Prompt.key == key, Prompt.language == lang, Prompt.version == version))
        if target is None:
            raise PromptError("admin.no_previous", f"{lang}/{key} has no version {version}")
        if not target.active:
            await s.execute(
                update(Prompt).where(Prompt.key == key, Prompt.language == lang, Prompt.active)
                .values(active=False)
            )
            target.active = True
            await s.flush()
    publish(settings, target)
    return target


async def rollback(factory: Factory, settings: Settings, key: str, lang: str) -> Prompt:
    """The version before the active one becomes active again (the newer one is kept)."""
    async with factory() as s:
        current = await active(s, key, lang)
        earlier = await s.scalar(
            select(func.max(Prompt.version)).where(
                Prompt.key == key, Prompt.language == lang,
                Prompt.version < (current.version if current else 0),
            )
        )
    if current is None or earlier is None:
        raise PromptError("admin.no_previous", f"{lang}/{key}")
    return await activate(factory, settings, key, lang, earlier)
