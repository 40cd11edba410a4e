"""``renraku prompts build`` and ``check``: render what is missing or stale, report coverage.

A static catalog prompt is (re-)rendered when it has no active version, when the active
TTS version was made from another text (``text_hash``), or with ``force``. An active
recording is never replaced by TTS. Rendering runs one synthesis per CPU at a time; the
database writes are short transactions of their own.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlalchemy import select

from models import Prompt
from models.db import transaction
from models.enums import PromptSource
from prompts import dynamic, store, tts
from prompts.audio import to_phone_wav, wav_info
from prompts.catalog import Catalog, Entry, catalog, text_hash
from renraku.settings import LANGUAGES, Settings


class Progress:
    """``[#####     ] 40/100 ja/absence.welcome`` on stderr, redrawn in place."""

    def __init__(self, total: int, stream: IO[str] | None = sys.stderr, width: int = 30) -> None:
        self.total, self.done, self.stream, self.width = total, 0, stream, width

    def step(self, label: str) -> None:
        self.done += 1
        if self.stream is None:
            return
        filled = self.width * self.done // max(self.total, 1)
        bar = "#" * filled + " " * (self.width - filled)
        line = f"[{bar}] {self.done}/{self.total} {label[:60]}"
        if self.stream.isatty():
            self.stream.write(f"\r{line:<100}" + ("\n" if self.done >= self.total else ""))
        elif self.done == self.total or self.done % max(self.total // 10, 1) == 0:
            self.stream.write(line + "\n")  # a log file: one line per tenth
        self.stream.flush()


@dataclass
class BuildReport:
    rendered: list[str] = field(default_factory=list)  # "lang/key"
    recorded_kept: list[str] = field(default_factory=list)
    up_to_date: int = 0
    restored: int = 0  # active files put back from their version file
    prerendered: int = 0  # template expansions in the dynamic cache
    failed: list[str] = field(default_factory=list)
    engines: dict[str, str] = field(default_factory=dict)  # "lang/key" → engine:voice
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


async def _actives(factory: store.Factory) -> dict[tuple[str, str], Prompt]:
    async with factory() as s:
        rows = await s.scalars(select(Prompt).where(Prompt.active))
        return {(p.language, p.key): p for p in rows}


def _restore(settings: Settings, prompt: Prompt) -> bool:
    if not (settings.sounds_dir / prompt.audio_path).is_file():
        return False
    return store.publish(settings, prompt)


async def render_one(
    settings: Settings, factory: store.Factory, entry: Entry, lang: str,
    db_lock: asyncio.Lock | None = None,
) -> Prompt | None:
    """Synthesise one static prompt into a new active TTS version (None: a recording won)."""
    text = entry.text(lang)
    workdir = store.sounds_lang_dir(settings, lang) / "versions"
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".build-") as tmp:
        speech = await tts.synthesize(settings, lang, text, Path(tmp))
        wav = Path(tmp) / "phone.wav"
        await to_phone_wav(speech.path, wav)
        duration = wav_info(wav).duration_ms
        async with db_lock or asyncio.Lock(), transaction(factory) as s:
            prompt = await store.add_version(
                s, settings, entry.key, lang, wav, source=PromptSource.TTS,
                duration_ms=duration, text=text, text_hash=text_hash(text),
                engine=speech.engine_id,
            )
    if prompt is not None:
        store.publish(settings, prompt)
    return prompt


def _expansions(entry: Entry) -> list[dict[str, object]]:
    names = sorted(entry.prerender)
    return [dict(zip(names, values, strict=True))
            for values in itertools.product(*(entry.prerender[n] for n in names))]


async def build(
    settings: Settings,
    factory: store.Factory,
    *,
    languages: Iterable[str] = LANGUAGES,
    keys: Iterable[str] | None = None,
    force: bool = False,
    templates: bool = True,
    progress: IO[str] | None = sys.stderr,
    cat: Catalog | None = None,
    names: bool = False,
    days_ahead: int = 0,
) -> BuildReport:
    """Render what is missing or stale; optionally also cache every registered child's
    name phrases (``names``) and the date phrases of the next ``days_ahead`` days."""
    started = time.monotonic()
    cat = cat or catalog()
    langs = list(languages)
    wanted = set(keys) if keys is not None else None
    entries = [e for e in cat if wanted is None or e.key in wanted]
    actives = await _actives(factory)
    report = BuildReport()
    todo: list[tuple[Entry, str]] = []
    for entry in (e for e in entries if e.static):
        for lang in langs:
            if lang not in entry.texts:
                report.failed.append(f"{lang}/{entry.key}: no text in the catalog")
                continue
            current = actives.get((lang, entry.key))
            if current is not None and current.source == PromptSource.RECORDED:
                report.recorded_kept.append(f"{lang}/{entry.key}")
                report.restored += _restore(settings, current)
            elif current is not None and not force and (
                current.text_hash == text_hash(entry.text(lang))
                and (settings.sounds_dir / current.audio_path).is_file()
            ):
                report.up_to_date += 1
                report.restored += _restore(settings, current)
            else:
                todo.append((entry, lang))
    expansions = [(e, lang, fields) for e in entries if templates and e.prerender
                  for lang in langs if lang in e.texts for fields in _expansions(e)]
    bar = Progress(len(todo) + len(expansions), progress)
    db_lock = asyncio.Lock()  # one writer at a time: SQLite would make the others wait anyway

    async def one(entry: Entry, lang: str) -> None:
        label = f"{lang}/{entry.key}"
        try:
            prompt = await render_one(settings, factory, entry, lang, db_lock)
            if prompt is None:
                report.recorded_kept.append(label)
            else:
                report.rendered.append(label)
                report.engines[label] = prompt.engine
        except Exception as exc:
            report.failed.append(f"{label}: {exc}")
        bar.step(label)

    async def expand(entry: Entry, lang: str, fields: dict[str, object]) -> None:
        label = f"{lang}/{entry.key} " + ",".join(f"{k}={v}" for k, v in fields.items())
        try:
            await dynamic.say_phrase(settings, lang, entry.key, **fields)
            report.prerendered += 1
        except Exception as exc:
            report.failed.append(f"{label}: {exc}")
        bar.step(label)

    async def extras() -> None:
        try:
            if names:
                report.prerendered += await prerender_all_names(settings, factory)
            if days_ahead:
                report.prerendered += await prerender_dates(settings, langs, days_ahead)
        except Exception as exc:
            report.failed.append(f"names/dates: {exc}")

    await asyncio.gather(*(one(e, lang) for e, lang in todo),
                         *(expand(e, lang, f) for e, lang, f in expansions), extras())
    report.rendered.sort()
    report.seconds = time.monotonic() - started
    return report


def _nonempty(path: Path) -> bool:
    return path.is_file() and os.path.getsize(path) > 0


async def prerender_all_names(settings: Settings, factory: store.Factory) -> int:
    """Every active child's name phrases (e.g. after demo data or an import of families)
    and every school's welcome naming it."""
    from models import Child, School

    async with factory() as s:
        children = list(await s.scalars(select(Child).where(Child.active)))
        done = 0
        for child in children:
            done += len(await dynamic.prerender_names(settings, s, child))
        for school in await s.scalars(select(School)):
            done += len(await dynamic.prerender_school(settings, school))
    return done


async def prerender_dates(settings: Settings, languages: Iterable[str], days: int) -> int:
    """The day phrases a report can be for, from today on (callers hear them at once)."""
    from datetime import timedelta

    from prompts.phrases import spoken_date
    from renraku.clock import clock_from_settings, local_now

    today = local_now(clock_from_settings(settings.testing, settings.fake_now),
                      settings.default_timezone).date()
    jobs = [dynamic.say_phrase(settings, lang, key, date=spoken_date(today + timedelta(n), lang))
            for n in range(days) for lang in languages
            for key in ("absence.on_date", "absence.report_for_date")]
    return len(await asyncio.gather(*jobs))


@dataclass
class LangCoverage:
    lang: str
    total: int = 0
    ok: int = 0
    recorded: int = 0
    missing_file: list[str] = field(default_factory=list)
    missing_text: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # TTS made from an older text

    @property
    def complete(self) -> bool:
        return not self.missing_file and not self.missing_text


@dataclass
class Coverage:
    languages: list[LangCoverage]
    problems: list[str]  # catalog problems (keys without a language, field mismatches)

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.complete for c in self.languages)


async def check(settings: Settings, factory: store.Factory,
                languages: Iterable[str] = LANGUAGES, cat: Catalog | None = None) -> Coverage:
    """Per language: every static prompt has text and an active, playable file."""
    cat = cat or catalog()
    actives = await _actives(factory)
    result = []
    for lang in languages:
        cov = LangCoverage(lang)
        for entry in cat:
            if lang not in entry.texts:
                cov.missing_text.append(entry.key)
                continue
            if not entry.static:
                continue
            cov.total += 1
            current = actives.get((lang, entry.key))
            playable = store.active_path(settings, lang, entry.key)
            if current is None or not _nonempty(playable):
                cov.missing_file.append(entry.key)
                continue
            cov.ok += 1
            if current.source == PromptSource.RECORDED:
                cov.recorded += 1
            elif current.text_hash != text_hash(entry.text(lang)):
                cov.stale.append(entry.key)
        result.append(cov)
    return Coverage(result, list(cat.problems))
