"""pyst2's classic (stdin/stdout) AGI behind the same async channel the FastAGI server gives.

Why an adapter instead of a second flow: the absence line must behave identically whether
Asterisk reaches it over FastAGI or runs ``agi_scripts/absence.py`` as a process, so the
one flow in :mod:`ivr.absence_flow` runs on both, and only this thin layer differs.

It lives in ``ivr/`` (not in ``agi_scripts/``) so it is an importable, unit-tested module;
the script itself stays a few lines that Asterisk executes by path.

The blocking pyst2 calls are made directly inside the ``async`` methods on purpose: a
classic AGI process serves exactly one call, so there is nothing else for the event loop to
run while Asterisk plays a prompt, and a thread would only complicate SIGHUP handling.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any, TypeVar

from asterisk.agi import AGI, AGIAppError, AGIHangup, AGIUnknownError

from ivr import keypad
from ivr.fastagi import CallerFacts
from renraku import eventloop

log = logging.getLogger(__name__)

T = TypeVar("T")


def _hangup_base() -> type[Exception]:
    # One hang-up type for both transports when the FastAGI server defines one, so code
    # catching ``ivr.fastagi.Hangup`` also catches a classic-AGI hang-up.
    try:
        from ivr.fastagi import Hangup as FastAgiHangup
    except ImportError:  # pragma: no cover - only before the FastAGI server exists
        return Exception
    return FastAgiHangup


class ClassicHangup(_hangup_base()):  # type: ignore[misc]
    """The caller hung up (SIGHUP, ``result=-1`` or ``511`` dead channel)."""


class ClassicAgiChannel(CallerFacts):
    """Async channel methods on top of a pyst2 :class:`asterisk.agi.AGI`."""

    Hangup = ClassicHangup

    def __init__(self, agi: AGI) -> None:
        self.agi = agi
        self.headers: dict[str, str] = dict(agi.env)

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except AGIHangup as exc:
            raise ClassicHangup(str(exc)) from exc
        except AGIAppError as exc:
            # pyst2 reports "result=-1" (the application failed, almost always because the
            # channel went away) as AGIAppError; for this flow that is a hang-up.
            raise ClassicHangup(str(exc)) from exc
        except AGIUnknownError as exc:
            if exc.args and exc.args[0] == 511:  # "command not permitted on a dead channel"
                raise ClassicHangup("dead channel") from exc
            raise
        except (BrokenPipeError, EOFError) as exc:
            raise ClassicHangup(str(exc)) from exc

    async def get_variable(self, name: str) -> str | None:
        return self._call(self.agi.get_variable, name) or None

    async def set_variable(self, name: str, value: str) -> None:
        self._call(self.agi.set_variable, name, value)

    async def stream_file(self, name: str, escape_digits: str = "") -> str:
        return self._call(self.agi.stream_file, name, escape_digits)

    async def get_data(self, name: str, timeout_ms: int = 5000, max_digits: int = 1) -> str:
        return self._call(self.agi.get_data, name, timeout_ms, max_digits)

    async def wait_for_digit(self, timeout_ms: int) -> str:
        return self._call(self.agi.wait_for_digit, timeout_ms)

    async def exec(self, app: str, args: str = "") -> str:
        return self._call(self.agi.appexec, app, args)

    async def read_keys(self, sounds: Sequence[tuple[str, str]], channel_lang: str,
                        max_digits: int, timeout_ms: int) -> str:
        """Play (language, sound) pairs and read keys in one command (see ivr.keypad)."""
        return await keypad.read_keys(self, sounds, channel_lang, max_digits, timeout_ms)

    async def hangup(self) -> None:
        self._call(self.agi.hangup)


class _EofAware:
    """stdin whose readline raises EOFError when Asterisk closed the pipe.

    pyst2 would otherwise parse the empty string as a malformed reply (ValueError).
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def readline(self) -> str:
        line = self.stream.readline()
        if line == "":
            raise EOFError("AGI pipe closed")
        return line


def connect(stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> ClassicAgiChannel:
    """Read the AGI environment from Asterisk and wrap it.

    pyst2 echoes every command to its stderr; that goes to /dev/null so Asterisk's log
    shows only our own logging.
    """
    quiet = open(os.devnull, "w")  # lives as long as the process
    agi = AGI(stdin=_EofAware(stdin or sys.stdin), stdout=stdout or sys.stdout, stderr=quiet)
    return ClassicAgiChannel(agi)


def run(main: Callable[[ClassicAgiChannel], Any]) -> int:
    """Connect, run the async ``main(channel)`` to the end, exit code 0 unless it crashed."""
    channel = connect()
    try:
        eventloop.run(main(channel))
    except ClassicHangup:
        return 0
    except Exception:
        log.exception("classic AGI script failed")
        return 1
    return 0
