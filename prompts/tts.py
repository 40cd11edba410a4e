"""TTS engines behind one interface, chosen per language by settings, with offline fallback.

``settings.tts_<lang>`` lists engines in order (e.g. ``"gtts,openjtalk"``); the offline
engine for the language always ends the chain, so a machine without internet still speaks.
Japanese is never given to espeak-ng: it reads kanji as "Chinese letter".

Engines write a file in any format and rate; :mod:`prompts.audio` converts it for Asterisk.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from prompts.audio import run
from prompts.jsplit import split_for_openjtalk
from prompts.romaji import romanise
from renraku.settings import Settings

log = logging.getLogger(__name__)

OPENJTALK_DIC = Path("/var/lib/mecab/dic/open-jtalk/naist-jdic")
VOICE_CACHE = Path.home() / ".cache" / "renraku" / "voices"
OFFLINE = {"ja": "openjtalk", "en": "espeak", "zh": "espeak", "es": "espeak"}
SYNTH_TIMEOUT_S = 60.0


class TTSError(RuntimeError):
    pass


class TTSEngine(Protocol):
    name: str
    offline: bool

    def available(self) -> bool:
        """Can it speak now? Must answer quickly (cached for network checks)."""
        ...

    def supports(self, lang: str) -> bool: ...

    def voice(self, lang: str) -> str:
        """Which voice it uses for ``lang``: part of cache keys and of the DB's engine column."""
        ...

    async def synthesize(self, text: str, lang: str, workdir: Path) -> Path:
        """Speak ``text``; the audio file written in ``workdir`` (any format/rate)."""
        ...


def openjtalk_voice_path(settings: Settings) -> Path:
    return Path(settings.openjtalk_voice) if settings.openjtalk_voice else (
        VOICE_CACHE / "mei_normal.htsvoice"
    )


class OpenJTalk:
    """Japanese offline: Debian's open_jtalk, the NAIST dictionary and the MMDAgent 'mei' voice."""

    name = "openjtalk"
    offline = True

    def __init__(self, settings: Settings) -> None:
        self.voice_file = openjtalk_voice_path(settings)
        self.dic = Path(settings.extra.get("openjtalk_dic", OPENJTALK_DIC))

    def available(self) -> bool:
        return bool(shutil.which("open_jtalk")) and self.dic.is_dir() and self.voice_file.is_file()

    def supports(self, lang: str) -> bool:
        return lang == "ja"

    def voice(self, lang: str) -> str:
        return self.voice_file.stem

    async def synthesize(self, text: str, lang: str, workdir: Path) -> Path:
        out = workdir / "openjtalk.wav"
        # open_jtalk drops input past ~1 KiB and reads one line: long text goes in pieces.
        pieces = split_for_openjtalk(text) or [text]
        parts = [workdir / f"openjtalk.{i}.wav" for i in range(len(pieces))]
        for i, (piece, part) in enumerate(zip(pieces, parts, strict=True)):
            src = workdir / f"text.{i}.txt"
            src.write_text(piece + "\n", encoding="utf-8")
            await run("open_jtalk", "-x", str(self.dic), "-m", str(self.voice_file),
                      "-ow", str(part), str(src), limit_s=SYNTH_TIMEOUT_S)
        if len(parts) == 1:
            parts[0].replace(out)
        else:  # same rate and format from every run: sox simply concatenates them
            await run("sox", *map(str, parts), str(out))
        return out


_ZH_PAUSES = str.maketrans({"。": ". ", "！": ". ", "？": "? ", "，": ", ", "、": ", ",
                            "；": ", ", "：": ", ", "（": ", ", "）": ", ", "「": " ", "」": " ",
                            "“": " ", "”": " "})


def to_pinyin(text: str) -> str:
    """Hanzi → tone-numbered pinyin (``中文`` → ``zhong1 wen2``); digits and Latin kept.

    espeak-ng's Mandarin dictionary as packaged lacks many common characters (it spells
    them out in English), while its pinyin voice reads every syllable with the right tone.
    """
    from pypinyin import Style, lazy_pinyin

    syllables = lazy_pinyin(text.translate(_ZH_PAUSES), style=Style.TONE3,
                            neutral_tone_with_five=True)
    return " ".join(s.strip() for s in syllables if s.strip())


_KANJI = re.compile(r"[\u3005\u30f6\u4e00-\u9fff][\u3005\u3041-\u30ff\u4e00-\u9fff]*")


async def japanese_reading(text: str, dic: Path, voice_file: Path) -> str:
    """Katakana pronunciation of Japanese text by Open JTalk's own analysis (MeCab + NAIST)."""
    with tempfile.TemporaryDirectory(prefix="renraku-yomi-") as tmp:
        src, trace = Path(tmp) / "in.txt", Path(tmp) / "trace.txt"
        src.write_text(text + "\n", encoding="utf-8")
        await run("open_jtalk", "-x", str(dic), "-m", str(voice_file), "-ow", os.devnull,
                  "-ot", str(trace), str(src), limit_s=SYNTH_TIMEOUT_S)
        analysis = trace.read_text(encoding="utf-8").split("[Text analysis result]")[-1]
    prons = [line.split(",")[9] for line in analysis.split("[Output label]")[0].splitlines()
             if line.count(",") >= 9]
    return "".join(prons).replace("’", "")


class Espeak:
    """en/zh/es offline. Kana (a Japanese name's reading) is romanised first; Chinese is
    spoken from pinyin; kanji with no reading given (a name) are read the Japanese way,
    through Open JTalk's analysis, for English and Spanish."""

    name = "espeak"
    offline = True
    VOICES: ClassVar[dict[str, str]] = {"en": "en-us", "zh": "cmn-latn-pinyin", "es": "es"}
    SPEED_WPM = 155  # a little slower than the default 175: clearer over a phone line

    def __init__(self, settings: Settings) -> None:
        self.jtalk = OpenJTalk(settings)

    def available(self) -> bool:
        return bool(shutil.which("espeak-ng"))

    async def _kanji_to_kana(self, text: str) -> str:
        if not _KANJI.search(text) or not self.jtalk.available():
            return text
        parts, last = [], 0
        for m in _KANJI.finditer(text):
            reading = await japanese_reading(m.group(), self.jtalk.dic, self.jtalk.voice_file)
            parts += [text[last:m.start()], " " + reading + " "]
            last = m.end()
        return "".join([*parts, text[last:]])

    def supports(self, lang: str) -> bool:
        return lang in self.VOICES  # never "ja"

    def voice(self, lang: str) -> str:
        return self.VOICES[lang]

    async def synthesize(self, text: str, lang: str, workdir: Path) -> Path:
        if not self.supports(lang):
            raise TTSError(f"espeak-ng does not speak {lang!r}")
        src, out = workdir / "text.txt", workdir / "espeak.wav"
        if lang != "zh":  # Chinese reads hanzi its own way (pinyin below)
            text = await self._kanji_to_kana(text)
        text = romanise(text)
        if lang == "zh":  # pypinyin loads its dictionaries on first use: not on the loop
            text = await asyncio.to_thread(to_pinyin, text)
        src.write_text(text, encoding="utf-8")
        await run("espeak-ng", "-v", self.VOICES[lang], "-s", str(self.SPEED_WPM),
                  "-w", str(out), "-f", str(src), limit_s=SYNTH_TIMEOUT_S)
        return out


# Whether the online service answers, probed once per process (a phone call must never
# wait on a dead network twice).
_reachable: dict[str, bool] = {}
_probe_lock = threading.Lock()
PROBE_TIMEOUT_S = 1.5


def probe(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """TCP connect within ``timeout``, DNS included (a daemon thread bounds a slow resolver)."""
    result: list[bool] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(timeout + 0.2)
    return bool(result and result[0])


def reset_reachability() -> None:
    _reachable.clear()


class GTTS:
    """Google Translate's TTS through gTTS, when the service is reachable."""

    name = "gtts"
    offline = False
    LANGS: ClassVar[dict[str, str]] = {"ja": "ja", "en": "en", "zh": "zh-CN", "es": "es"}

    def __init__(self, settings: Settings) -> None:
        self.tld = str(settings.extra.get("gtts_tld", "com"))

    @property
    def host(self) -> str:
        return f"translate.google.{self.tld}"

    def available(self) -> bool:
        with _probe_lock:
            if self.host not in _reachable:
                _reachable[self.host] = probe(self.host)
                if not _reachable[self.host]:
                    log.info("gTTS: %s not reachable; offline engines for this process", self.host)
            return _reachable[self.host]

    def mark_unreachable(self) -> None:
        _reachable[self.host] = False

    def supports(self, lang: str) -> bool:
        return lang in self.LANGS

    def voice(self, lang: str) -> str:
        return f"{self.LANGS[lang]}@{self.tld}"

    async def synthesize(self, text: str, lang: str, workdir: Path) -> Path:
        from gtts import gTTS

        out = workdir / "gtts.mp3"
        tts = gTTS(text, lang=self.LANGS[lang], tld=self.tld, lang_check=False, timeout=10)
        await asyncio.to_thread(tts.save, str(out))
        return out


ENGINES: dict[str, Callable[[Settings], TTSEngine]] = {
    "gtts": GTTS,
    "openjtalk": OpenJTalk,
    "espeak": Espeak,
}


def chain(settings: Settings, lang: str) -> list[TTSEngine]:
    """The engines to try for ``lang``, in order; the offline one always last."""
    names = [n for n in settings.tts_chain(lang) if n != OFFLINE[lang]] + [OFFLINE[lang]]
    engines: list[TTSEngine] = []
    for name in dict.fromkeys(names):
        factory = ENGINES.get(name)
        if factory is None:
            log.warning("unknown TTS engine %r in tts_%s; ignored", name, lang)
            continue
        engine = factory(settings)
        if engine.supports(lang):  # e.g. espeak for Japanese is dropped here
            engines.append(engine)
    return engines


async def _available(engine: TTSEngine) -> bool:
    # A network probe may take a moment: never on the event loop's thread.
    return engine.available() if engine.offline else await asyncio.to_thread(engine.available)


async def pick(settings: Settings, lang: str) -> TTSEngine:
    """The first engine of the chain that can speak now."""
    for engine in chain(settings, lang):
        if await _available(engine):
            return engine
    raise TTSError(_nothing_for(settings, lang))


def _nothing_for(settings: Settings, lang: str) -> str:
    if lang == "ja":
        return (f"no Japanese TTS: Open JTalk needs the voice at {openjtalk_voice_path(settings)}"
                f" (run `renraku prompts voices`), open_jtalk and {OPENJTALK_DIC}")
    return f"no TTS engine available for {lang!r} (is espeak-ng installed?)"


@dataclass(frozen=True)
class Speech:
    path: Path  # the engine's own output file
    engine: str
    voice: str

    @property
    def engine_id(self) -> str:
        return f"{self.engine}:{self.voice}"


_limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _limit() -> asyncio.Semaphore:
    """At most one synthesis per CPU at a time (per event loop): renders queue, not thrash."""
    loop = asyncio.get_running_loop()
    if loop not in _limits:
        _limits[loop] = asyncio.Semaphore(os.cpu_count() or 2)
    return _limits[loop]


async def synthesize(
    settings: Settings, lang: str, text: str, workdir: Path, start: TTSEngine | None = None
) -> Speech:
    """Speak with the first available engine, falling back along the chain on failure."""
    async with _limit():
        return await _synthesize(settings, lang, text, workdir, start)


async def _synthesize(
    settings: Settings, lang: str, text: str, workdir: Path, start: TTSEngine | None
) -> Speech:
    engines = chain(settings, lang)
    if start is not None:
        names = [e.name for e in engines]
        engines = engines[names.index(start.name):] if start.name in names else engines
    errors: list[str] = []
    for engine in engines:
        if not await _available(engine):
            continue
        try:
            path = await engine.synthesize(text, lang, workdir)
            return Speech(path, engine.name, engine.voice(lang))
        except Exception as exc:
            # Any failure of one engine (network, HTTP, a crashed binary) → try the next.
            errors.append(f"{engine.name}: {exc}")
            log.warning("TTS %s failed for %s (%s); trying the next engine", engine.name,
                        lang, exc)
            if isinstance(engine, GTTS):
                engine.mark_unreachable()
    raise TTSError("; ".join(errors) or _nothing_for(settings, lang))
