"""What the call flows use: a prompt key or a text → a name for ``STREAM FILE``.

Implements the ``Voice`` protocol of ``ivr/absence_flow.py`` and ``ivr/broadcast_flow.py``.
The flow sets ``CHANNEL(language)`` and Asterisk looks the name up under
``<sounds_dir>/<lang>/``.
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
from prompts import dynamic, store
from prompts.catalog import catalog
from renraku.settings import LANGUAGES, Settings


class PromptVoice:
    def __init__(self, settings: Settings, sessions: store.Factory | None = None) -> None:
        from prompts.phrases import warm_up

        warm_up()  # made once at server start: Babel's locale data off the first call's path
        self.settings = settings
        self._sessions = sessions
        self._engine: AsyncEngine | None = None

    async def phrase(self, key: str, lang: str, **fmt: Any) -> str:
        """A static key → its pre-rendered (or recorded) file; with fields → filled in, TTS.

        A static prompt not built yet is spoken by TTS on the spot rather than left silent.
        """
        entry = catalog()[key]
        if entry.static:
            if store.active_path(self.settings, lang, key).is_file():
                return store.playable(key)
            return await dynamic.say_text(self.settings, lang, entry.text(lang))
        return await dynamic.say_text(self.settings, lang, entry.fill(lang, **fmt))

    async def text(self, lang: str, text: str) -> str:
        """Free text (a broadcast message, a survey question) spoken in ``lang``."""
        if not text.strip():
            return await dynamic.silence(self.settings, lang)
        return await dynamic.say_text(self.settings, lang, text)

    async def recording(self, key: str, lang: str) -> str | None:
        """The active recording of ``key`` in ``lang`` (e.g. a broadcast's message), or None."""
        if not store.KEY_RE.match(key) or not store.active_path(
            self.settings, lang, key
        ).is_file():
            return None
        async with self._factory()() as s:
            current = await store.active(s, key, lang)
        if current is None or current.source != PromptSource.RECORDED:
            return None
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
