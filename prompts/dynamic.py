"""Phrases rendered on demand — names, dates, broadcast messages — cached on disk.

A render is cached by (engine, voice, language, text) under
``<sounds>/<lang>/renraku/dyn/<hash>.wav`` and played as ``renraku/dyn/<hash>``: the same
text is synthesised once, ever (one in-flight render per file in this process; files
appear atomically for other processes). Names are rendered when a child or guardian is
registered (:func:`prerender_names`), so a call never waits for TTS.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prompts import tts
from prompts.audio import run, to_phone_wav
from prompts.catalog import catalog
from renraku.settings import LANGUAGES, Settings

DYN = "dyn"
_inflight: dict[Path, asyncio.Future[Path]] = {}


def normalise(text: str) -> str:
    return " ".join(text.split())


def cache_name(engine: str, voice: str, lang: str, text: str) -> str:
    return hashlib.sha256(f"{engine}\0{voice}\0{lang}\0{text}".encode()).hexdigest()[:32]


def dyn_dir(settings: Settings, lang: str) -> Path:
    return settings.sounds_dir / lang / "renraku" / DYN


def playable_dyn(path: Path) -> str:
    return f"renraku/{DYN}/{path.stem}"


def cached(settings: Settings, lang: str, text: str) -> Path | None:
    """The render of ``text`` already on disk, by any engine of the language's chain."""
    text = normalise(text)
    for candidate in tts.chain(settings, lang):
        path = dyn_dir(settings, lang) / (
            cache_name(candidate.name, candidate.voice(lang), lang, text) + ".wav")
        if path.is_file():
            return path
    return None


async def render_cached(settings: Settings, lang: str, text: str) -> Path:
    """The cached phone WAV of ``text`` spoken in ``lang``; synthesised if not there yet."""
    text = normalise(text)
    if not text:
        raise ValueError("nothing to say")
    # Any engine's render already on disk will do: a call never waits for a better voice,
    # and nothing probes the network when everything is cached.
    found = cached(settings, lang, text)
    if found is not None:
        _touch(found)
        return found
    engine = await tts.pick(settings, lang)
    name = cache_name(engine.name, engine.voice(lang), lang, text)
    path = dyn_dir(settings, lang) / f"{name}.wav"
    if path.is_file():
        return path
    pending = _inflight.get(path)
    if pending is not None:  # the same text asked for again while it renders: wait for it
        return await asyncio.shield(pending)
    future: asyncio.Future[Path] = asyncio.get_running_loop().create_future()
    _inflight[path] = future
    try:
        result = await _synthesize_into(settings, lang, text, engine, path)
        future.set_result(result)
        return result
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: no "never retrieved" warning when nobody waited
        raise
    finally:
        _inflight.pop(path, None)


def _touch(path: Path) -> None:
    """Mark a cache hit (at most daily) so ``prune`` keeps what is still being played."""
    try:
        if time.time() - path.stat().st_mtime > 86400:
            os.utime(path)
    except OSError:
        pass


def prune(settings: Settings, older_than_days: int = 90) -> int:
    """Delete dynamic renders not played for ``older_than_days``; they re-render on demand."""
    limit = time.time() - older_than_days * 86400
    removed: set[str] = set()  # by name: a render shared into every language counts once
    for lang in LANGUAGES:
        folder = dyn_dir(settings, lang)
        for path in folder.glob("*.wav") if folder.is_dir() else ():
            if path.name != "silence.wav" and path.stat().st_mtime < limit:
                path.unlink(missing_ok=True)
                removed.add(path.name)
    return len(removed)


async def _synthesize_into(
    settings: Settings, lang: str, text: str, engine: tts.TTSEngine, path: Path
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Work beside the cache so the finished file is renamed into place atomically.
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".tts-") as tmp:
        speech = await tts.synthesize(settings, lang, text, Path(tmp), start=engine)
        if speech.engine != engine.name:  # fell back: file it under the engine that spoke
            name = cache_name(speech.engine, speech.voice, lang, text)
            path = path.with_name(f"{name}.wav")
        out = Path(tmp) / "phone.wav"
        await to_phone_wav(speech.path, out)
        os.replace(out, path)
    return path


async def say_text(settings: Settings, lang: str, text: str) -> str:
    """``text`` spoken in ``lang`` as an Asterisk playable name, e.g. ``renraku/dyn/ab12…``."""
    return playable_dyn(share(settings, await render_cached(settings, lang, text)))


def share(settings: Settings, path: Path) -> Path:
    """Make a render findable from a channel of any language; returns ``path``.

    Asterisk looks a name up under the channel's language (then en, then no language), but
    a text is often heard in another language's call: a Japanese-only broadcast message in
    a Chinese family's call. Hard links in every language's dyn folder cost no space.
    """
    for lang in LANGUAGES:
        target = dyn_dir(settings, lang) / path.name
        if target == path or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except FileExistsError:
            pass
        except OSError:  # no hard links here: an atomic copy
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".share.", suffix=".wav")
            os.close(fd)
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
    return path


async def say_phrase(settings: Settings, lang: str, key: str, **fields: Any) -> str:
    """A catalog template filled in (``absence.child_option``, name=…, digit=…), spoken."""
    return await say_text(settings, lang, catalog()[key].fill(lang, **fields))


async def silence(settings: Settings, lang: str) -> str:
    """A short silence, for an empty text (a flow plays something rather than failing)."""
    path = dyn_dir(settings, lang) / "silence.wav"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".silence.", suffix=".wav")
        os.close(fd)
        await run("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
                  tmp, "trim", "0", "0.3")
        os.replace(tmp, path)
    return playable_dyn(share(settings, path))


# -- names ----------------------------------------------------------------------------------

MAX_MENU_DIGIT = 9


async def _name_context(session: AsyncSession, person: Any) -> tuple[list[str], int]:
    """Languages the person's name will be heard in, and how many children share a menu."""
    from models import Child, Guardian, Guardianship, School

    if isinstance(person, Guardian):
        return [person.language if person.language in LANGUAGES else "ja"], 0
    if not isinstance(person, Child):
        return list(LANGUAGES), 1
    school = await session.get(School, person.school_id)
    langs = list(school.languages) if school and school.languages else list(LANGUAGES)
    guardian_ids = list(await session.scalars(
        select(Guardianship.guardian_id).where(Guardianship.child_id == person.id)))
    siblings = 1
    if guardian_ids:
        guardians = list(await session.scalars(
            select(Guardian).where(Guardian.id.in_(guardian_ids))))
        langs += [g.language for g in guardians if g.language in LANGUAGES]
        siblings = len(set(await session.scalars(
            select(Guardianship.child_id).where(Guardianship.guardian_id.in_(guardian_ids)))))
    return list(dict.fromkeys(lang for lang in langs if lang in LANGUAGES)), max(siblings, 1)


async def prerender_names(
    settings: Settings,
    session_or_factory: Any,
    person: Any,
    languages: Iterable[str] | None = None,
) -> list[str]:
    """Render a child's (or guardian's) spoken name and the menu phrases that carry it.

    For a child: the name alone, ``absence.about_child`` and ``absence.child_option`` for
    each menu key a sibling list can give it, in every language its school offers or a
    guardian uses. Returns the playable names. Call it at registration (or a name change).
    """
    if isinstance(session_or_factory, AsyncSession):
        langs, siblings = await _name_context(session_or_factory, person)
    else:
        async with session_or_factory() as session:
            langs, siblings = await _name_context(session, person)
    if languages is not None:
        langs = list(languages)
    name = getattr(person, "spoken_name", None) or person.reading or person.name
    jobs = []
    for lang in langs:
        jobs.append(say_text(settings, lang, name))
        if siblings:  # a child: the phrases of the absence line's child menu and read-back
            jobs.append(say_phrase(settings, lang, "absence.about_child", name=name))
            for digit in range(1, min(siblings, MAX_MENU_DIGIT) + 1):
                jobs.append(say_phrase(settings, lang, "absence.child_option", name=name,
                                       digit=digit))
    return list(await asyncio.gather(*jobs))


async def prerender_school(settings: Settings, school: Any) -> list[str]:
    """The absence line's welcome naming the school, in each language the school offers
    (after the school is created or its name or reading changes; calls render it too)."""
    return list(await asyncio.gather(*(
        say_phrase(settings, lang, "absence.welcome_school", school=school.spoken_name)
        for lang in school.languages)))
