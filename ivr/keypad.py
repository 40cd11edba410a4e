"""A menu's sounds and the caller's keys as one AGI command: Asterisk's ``Read`` application.

Why not STREAM FILE per sound, then WAIT FOR DIGIT: between two AGI commands res_agi reads
the channel's frames and drops them (``run_agi``), so a key pressed after one sound ends and
before the app's next command arrives is lost. At the morning peak the app's event loop
lags by up to seconds, and that gap was the main cause of calls ending in "too many
failures" while the caller had pressed every key. ``Read`` plays the whole ``&`` list and
waits for the key inside Asterisk: the only gaps left are between screens, after the key
was taken.

What ``Read`` gives and how a menu uses it (Asterisk 22's app_read, checked against real
calls in ``tests/test_keypad_asterisk.py``):
- every file is looked up in the channel's language; a sound of another language (the
  language menu's options) is named by its language's folder, ``<lang>/<name>``, which
  Asterisk finds under ``sounds/`` after trying the channel language's folder;
- a menu reads one key with no terminator (``t()``), so ``#`` and ``*`` are keys like the
  others;
- a number reads up to ``max_digits``; ``#`` ends it, and alone it is the result (option
  ``e``: "no time"). ``*`` cannot end it too: with two terminators, ``e`` gives both
  (``#*``) whichever was pressed (tried), so ``*`` ("back") is read as a key and ends at the
  timeout;
- nothing pressed within the timeout leaves the variable empty; ``Read`` has one timeout
  for the first key and between keys;
- a caller hanging up during ``Read`` does not fail the command (``200 result=0``, the
  variable empty): only ``READSTATUS`` says ``HANGUP``. Taken for silence, a menu asked again
  at once, three times over, then carried on as if the caller were there; so an empty read
  looks at the status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

KEYS_VARIABLE = "RENRAKU_KEYS"
STATUS_VARIABLE = "READSTATUS"
HUNG_UP = "HANGUP"  # READSTATUS when the caller hung up during Read
NUMBER_END = "#"


def in_language(name: str, lang: str, channel_lang: str) -> str:
    """``name`` as Asterisk finds it in ``lang`` on a channel speaking ``channel_lang``."""
    if lang == channel_lang or not lang or "://" in name or name.startswith("/"):
        return name  # a URL or a path names its language already
    return f"{lang}/{name}"


def read_args(sounds: Sequence[tuple[str, str]], channel_lang: str, max_digits: int,
              timeout_ms: int) -> str:
    """``Read``'s arguments for (language, sound) pairs and up to ``max_digits`` keys."""
    files = "&".join(in_language(name, lang, channel_lang) for lang, name in sounds)
    if any(c in files for c in ',"\n'):
        raise ValueError(f"a sound name Read cannot take: {files!r}")
    options = "t()" if max_digits == 1 else f"t({NUMBER_END})e"
    return f"{KEYS_VARIABLE},{files},{int(max_digits)},{options},1,{timeout_ms / 1000:g}"


def read_sounds(args: str) -> list[str]:
    """The sounds a ``Read`` with these arguments plays (what the caller hears), in order."""
    parts = args.split(",")
    return [name for name in parts[1].split("&") if name] if len(parts) > 1 else []


class KeyChannel(Protocol):
    """What a transport offers ``read_keys`` (both AGI transports have it)."""

    Hangup: type[BaseException]

    async def exec(self, app: str, args: str = "") -> Any: ...
    async def get_variable(self, name: str) -> str | None: ...


async def read_keys(channel: KeyChannel, sounds: Sequence[tuple[str, str]],
                    channel_lang: str, max_digits: int, timeout_ms: int) -> str:
    """Play (language, sound) pairs and read keys: one Read, then its variable (and, when
    it is empty, its status: a hang-up raises the channel's Hangup)."""
    await channel.exec("Read", read_args(sounds, channel_lang, max_digits, timeout_ms))
    keys = await channel.get_variable(KEYS_VARIABLE) or ""
    if not keys and await channel.get_variable(STATUS_VARIABLE) == HUNG_UP:
        raise channel.Hangup("hung up during Read")
    return keys
