"""What the call flows use: a prompt key or a text → a name for ``STREAM FILE``.

Implements the ``Voice`` protocol of ``ivr/absence_flow.py`` and ``ivr/broadcast_flow.py``.
The flow sets ``CHANNEL(language)`` and Asterisk looks the name up under
``<sounds_dir>/<lang>/``. In a city (``sounds_url`` set) every sound is named by its URL
on this app node instead, which the IVR node fetches and caches (prompts.media).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from models import Prompt
from models.enums import PromptSource
from prompts import dynamic, media, store
from prompts.catalog import catalog
from renraku.settings import LANGUAGES, Settings


class PromptVoice:
    def __init__(self, settings: Settings, sessions: store.Factory | None = None) -> None:
        from prompts.phrases import warm_up

        warm_up()  # made once at server start: Babel's locale data off the first call's path
        self.settings = settings
        self._sessions = sessions
        self._engine: AsyncEngine | None = None
        self._versions: media.ActiveVersions | None = None

    async def phrase(self, key: str, lang: str, **fmt: Any) -> str:
        """A static key → its pre-rendered (or recorded) file; with fields → filled in, TTS.

        A static prompt not built yet is spoken by TTS on the spot rather than left silent.
        """
        entry = catalog()[key]
        if entry.static:
            if media.enabled(self.settings):
                if (version := await self._active_versions().get(key, lang)) is not None:
                    return media.version_url(self.settings, lang, key, version)
            elif store.active_path(self.settings, lang, key).is_file():
                return store.playable(key)
            return await self._say(lang, entry.text(lang))
        return await self._say(lang, entry.fill(lang, **fmt))

    async def text(self, lang: str, text: str) -> str:
        """Free text (a broadcast message, a survey question) spoken in ``lang``."""
        if not text.strip():
            return self._named(lang, await dynamic.silence(self.settings, lang))
        return await self._say(lang, text)

    async def _say(self, lang: str, text: str) -> str:
        return self._named(lang, await dynamic.say_text(self.settings, lang, text))

    def _named(self, lang: str, name: str) -> str:
        return media.name_url(self.settings, lang, name) if media.enabled(self.settings) else name

    def _active_versions(self) -> media.ActiveVersions:
        if self._versions is None:
            self._versions = media.ActiveVersions(self._factory())
        return self._versions

    async def recording(self, key: str, lang: str) -> str | None:
        """The active recording of ``key`` in ``lang`` (e.g. a broadcast's message), or None."""
        if not store.KEY_RE.match(key):
            return None
        city = media.enabled(self.settings)  # the file may be on another app node's disk
        if not city and not store.active_path(self.settings, lang, key).is_file():
            return None
        async with self._factory()() as s:
            current = await store.active(s, key, lang)
        if current is None or current.source != PromptSource.RECORDED:
            return None
        if city:  # the URL names the language: no links for other languages' channels
            return media.version_url(self.settings, lang, key, current.version)
        await self._fill_in(key, lang)
        return store.playable(key)

    async def _fill_in(self, key: str, lang: str) -> None:
        """Let channels of languages without their own version of ``key`` find this one.

        The broadcast flow falls back to the Japanese recording for a Chinese family, but
        Asterisk looks ``renraku/<key>`` up under the channel's language: languages with no
        active version get a hard link to this file (refreshed when it changes). Their own
        recording, once made, simply replaces the link.
        """
        async with self._factory()() as s:
            own = set(await s.scalars(
                select(Prompt.language).where(Prompt.key == key, Prompt.active)))
        src = store.active_path(self.settings, lang, key)
        for other in LANGUAGES:
            if other not in own:
                _link(src, store.active_path(self.settings, other, key))

    def _factory(self) -> store.Factory:
        if self._sessions is None:
            from models.db import create_engine, session_factory

            self._engine = create_engine(self.settings.db_url)
            self._sessions = session_factory(self._engine)
        return self._sessions

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()


def _link(src: Path, target: Path) -> None:
    """``target`` becomes ``src`` (a hard link, atomically replaced) unless it already is."""
    if target.exists() and os.path.samefile(src, target):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:  # no hard links on this file system
        shutil.copyfile(src, tmp)
    os.replace(tmp, target)
