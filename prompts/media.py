"""Sounds for a city's IVR nodes, by URL: Asterisk's HTTP media cache pulls them.

In a city the IVR Asterisk nodes and the app nodes are different machines and share no
disk. With ``sounds_url`` set (where the IVR nodes reach this app node's portal, e.g.
``http://10.0.0.13:8080/sounds``), the call flows name every sound by URL instead of
by file name; the node fetches it once through res_http_media_cache and plays it from
its cache afterwards. So:

- a prompt version (rendered or recorded, on any app node: its audio is in the
  database) is ``<sounds_url>/<lang>/renraku/versions/<key>.v<N>.wav``; a new version is
  a new URL, so a node never plays a stale copy, and a node started later needs nothing
  copied before its first call: it fetches what it plays;
- a text rendered during a call (names, dates, broadcast messages) is
  ``<sounds_url>/<lang>/renraku/dyn/<hash>.wav``, served by the app node that rendered it,
  which is the one running the call.

Both are immutable, so they are served with a year's ``max-age``: the node asks once.
Without ``sounds_url`` (one machine) the flows keep naming files in the shared folder.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from models import Prompt
from prompts import store
from prompts.dynamic import DYN
from renraku.settings import LANGUAGES, Settings

ROUTE = "/sounds"
VERSION_RE = re.compile(r"^versions/(?P<key>[a-z0-9][a-z0-9_.-]{0,99})\.v(?P<version>[0-9]{1,9})"
                        r"\.wav$")
DYN_RE = re.compile(rf"^{DYN}/(?:[0-9a-f]{{32}}|silence)\.wav$")
CACHE_CONTROL = "public, max-age=31536000, immutable"
# Asterisk 22 copies the cached file's path (44 characters) into a buffer sized for the
# URL (ivr.asterisk_runtime.cache_dir): a URL shorter than that path would not play.
MIN_URL_LEN = 48
ACTIVE_TTL_S = 2.0  # how long a new version may take to reach the calls of another app node


def enabled(settings: Settings) -> bool:
    return bool(settings.sounds_url)


def url(settings: Settings, lang: str, rel: str) -> str:
    """The URL of ``<sounds_dir>/<lang>/renraku/<rel>`` on this app node."""
    found = f"{settings.sounds_url.rstrip('/')}/{lang}/renraku/{rel}"
    if len(found) < MIN_URL_LEN:  # a short host and name: a query pads it (ignored)
        found += "?" + "0" * (MIN_URL_LEN - len(found) - 1)
    return found


def version_url(settings: Settings, lang: str, key: str, version: int) -> str:
    return url(settings, lang, f"versions/{key}.v{version}.wav")


def name_url(settings: Settings, lang: str, name: str) -> str:
    """A playable name of a render (``renraku/dyn/<hash>``) → its URL on this app node."""
    prefix = f"renraku/{DYN}/"
    if not name.startswith(prefix):
        raise ValueError(f"{name!r} is not a render")
    return url(settings, lang, f"{DYN}/{name[len(prefix):]}.wav")


class ActiveVersions:
    """Which version of each prompt is active, read from the database at most every
    ``ACTIVE_TTL_S`` seconds: one query for all of them, not one per phrase played."""

    def __init__(self, sessions: store.Factory,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sessions = sessions
        self._clock = clock
        self._versions: dict[tuple[str, str], int] = {}
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def get(self, key: str, lang: str) -> int | None:
        if self._read_at is None or self._clock() - self._read_at > ACTIVE_TTL_S:
            async with self._lock:
                if self._read_at is None or self._clock() - self._read_at > ACTIVE_TTL_S:
                    async with self._sessions() as s:
                        rows = await s.execute(select(Prompt.key, Prompt.language,
                                                      Prompt.version).where(Prompt.active))
                        self._versions = {(k, lang_): v for k, lang_, v in rows}
                    self._read_at = self._clock()
        return self._versions.get((key, lang))


async def local_file(settings: Settings, sessions: store.Factory, lang: str,
                     rel: str) -> Path | None:
    """The file this app node serves for ``<lang>/renraku/<rel>``, or None.

    A prompt version made on another app node is written here from the database on its
    first request. Only version and render names are served: nothing else of the data
    folder is reachable through them.
    """
    if lang not in LANGUAGES:
        return None
    path = store.sounds_lang_dir(settings, lang) / rel
    if DYN_RE.match(rel):
        return path if path.is_file() else None
    found = VERSION_RE.match(rel)
    if found is None:
        return None
    if path.is_file():
        return path
    async with sessions() as s:
        audio = await s.scalar(select(Prompt.audio).where(
            Prompt.key == found["key"], Prompt.language == lang,
            Prompt.version == int(found["version"])))
    if not audio:
        return None
    await asyncio.to_thread(_write, path, audio)
    return path


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


async def sync_node(sessions: store.Factory, sounds_dir: Path) -> tuple[int, int]:
    """Write every active prompt version into an IVR node's own sounds folder, as
    ``<lang>/renraku/<key>.wav``; returns (written, already there).

    The flows name sounds by URL, but the dialplan's voicemail fallback plays
    ``renraku/voicemail.*`` itself when no app node answers: those must be on the node's
    disk before it takes calls. ``renraku asterisk sync-sounds --node`` runs this at the
    node's start (``renraku cluster up`` too) and after recording them again.
    """
    written = same = 0
    async with sessions() as s:
        rows = (await s.execute(select(Prompt.key, Prompt.language, Prompt.audio)
                                .where(Prompt.active, Prompt.audio.is_not(None)))).all()
    for key, lang, audio in rows:
        target = sounds_dir / lang / "renraku" / f"{key}.wav"
        if await asyncio.to_thread(_same, target, audio):
            same += 1
            continue
        await asyncio.to_thread(_write, target, audio)
        written += 1
    return written, same


def _same(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False
