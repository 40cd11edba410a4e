"""A scripted in-memory channel and voice for the absence flow (no Asterisk)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

from renraku.settings import Settings

TONE_S = "1.2"  # long enough that a key pressed when a prompt starts lands inside it


class FakeHangup(Exception):
    pass


class ScriptedChannel:
    """Plays nothing; answers prompts from a script.

    ``script`` is a list of (sound-name prefix, keys): when a streamed sound starts with the
    prefix, the first key interrupts it and the rest come from WAIT FOR DIGIT, one by one
    (or, for a menu's Read, all of them at once).
    ``hang_up_at`` raises the hang-up exception when a sound with that prefix would play.
    Unscripted prompts time out.
    """

    def __init__(self, caller: str, script: list[tuple[str, str]] | None = None,
                 hang_up_at: str | None = None) -> None:
        self.variables: dict[str, str] = {"CALLERID(num)": caller, "UNIQUEID": "1700000000.1"}
        self.script = list(script or [])
        self.hang_up_at = hang_up_at
        self.played: list[tuple[str, str]] = []  # (channel language, sound)
        self.queued: list[str] = []
        self.hung_up = False

    @property
    def caller(self) -> str:
        return self.variables.get("CALLERID(num)", "")

    @property
    def uniqueid(self) -> str:
        return self.variables.get("UNIQUEID", "")

    withheld = False
    language = ""  # the channel's, from the AGI environment: not known to the flow here
    kept_language = ""

    async def get_variable(self, name: str) -> str | None:
        return self.variables.get(name)

    async def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value

    async def stream_file(self, name: str, escape_digits: str = "") -> str:
        return self._play(self.variables.get("CHANNEL(language)", ""), name, escape_digits)

    def _play(self, lang: str, name: str, escape_digits: str) -> str:
        if self.hung_up:
            raise FakeHangup()
        if self.hang_up_at and name.startswith(self.hang_up_at):
            self.hung_up = True
            raise FakeHangup()
        self.played.append((lang, name))
        if self.script and name.startswith(self.script[0][0]):
            keys = self.script.pop(0)[1]
            if keys:
                self.queued = list(keys[1:])
                return keys[0] if keys[0] in escape_digits else ""
        return ""

    async def wait_for_digit(self, timeout_ms: int) -> str:
        if self.hung_up:
            raise FakeHangup()
        return self.queued.pop(0) if self.queued else ""

    async def read_keys(self, sounds: list[tuple[str, str]], channel_lang: str,
                        max_digits: int, timeout_ms: int) -> str:
        """Asterisk's Read as ivr.keypad uses it: the first scripted key interrupts the
        sounds; a number ends at # or * (alone, they are the result)."""
        keys = ""
        for lang, name in sounds:
            if keys := self._play(lang, name, "0123456789*#"):
                break
        keys, self.queued = keys + "".join(self.queued), []
        if max_digits == 1:
            return keys[:1]
        for i, key in enumerate(keys[:max_digits]):
            if key in "#*":
                return keys[:i] or key
        return keys[:max_digits]

    async def hangup(self) -> None:
        self.hung_up = True

    def sounds(self) -> list[str]:
        return [name for _, name in self.played]


class FakeVoice:
    async def phrase(self, key: str, lang: str, **fmt: Any) -> str:
        return f"{key}:{lang}" + "".join(f":{k}={v}" for k, v in sorted(fmt.items()))

    async def text(self, lang: str, text: str) -> str:
        return f"tts:{lang}:{text}"


def _tone(path: Path) -> None:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Own name per process: classic AGI calls render the same prompt side by side
        tmp = path.with_suffix(f".{os.getpid()}.tmp.wav")
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(tmp), "synth",
                        TONE_S, "sine", "600", "vol", "0.3"], check=True)
        tmp.replace(path)  # atomic: a concurrent call never streams half a file


class ToneVoice:
    """For real calls: every prompt a short tone, written only in the language's own
    folder (``sounds/<lang>/renraku/``), so a prompt that plays proves Asterisk used the
    channel language's file; names stay readable (``renraku/dyn/<key>-<hash>``)."""

    def __init__(self, settings: Settings) -> None:
        self.sounds = settings.sounds_dir.resolve()

    async def phrase(self, key: str, lang: str, **fmt: Any) -> str:
        if not fmt:
            _tone(self.sounds / lang / "renraku" / f"{key}.wav")
            return f"renraku/{key}"
        digest = hashlib.sha1(repr(sorted(fmt.items())).encode()).hexdigest()[:10]
        name = f"renraku/dyn/{key}-{digest}"
        _tone(self.sounds / lang / f"{name}.wav")
        return name

    async def text(self, lang: str, text: str) -> str:
        return await self.phrase("text", lang, text=text)
