"""Calls and step latency of a FastAGI server, into :mod:`renraku.metrics`.

A step is the time from the reply that carried a caller's key reaching the server to the
flow writing its next command: the app's share of what the caller waits for. The key comes
as STREAM FILE's or WAIT FOR DIGIT's "200 result=49" (its ASCII code), or for a menu read
by ``Read`` (ivr.keypad) as the value of the GET VARIABLE sent with it. The benchmarks time
steps the same way (benchmarks/phones.py).
"""

from __future__ import annotations

import asyncio
import time

from ivr.fastagi import AGIChannel, AGIError, FastAGIServer, Hangup, parse_reply
from ivr.keypad import KEYS_VARIABLE
from renraku import metrics

KEY_COMMANDS = ("STREAM FILE", "WAIT FOR DIGIT")
READ_KEYS = f'GET VARIABLE "{KEYS_VARIABLE}"'


def carried_key(command: str, reply: str) -> bool:
    """Whether ``reply`` to ``command`` brought a key the caller pressed."""
    try:
        parsed = parse_reply(reply)
    except (AGIError, Hangup):  # no reply yet, or the caller is gone
        return False
    if command.startswith(READ_KEYS):
        return bool(parsed.data)
    return command.startswith(KEY_COMMANDS) and bool(parsed.digit)  # 0: none, -1: hang-up


class TimedReader:
    """When the last reply line arrived, and what it said ("100 Trying" lines skipped)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.at = 0.0
        self.reply = ""
        self.command = ""  # the command this reply answers
        self.step: tuple[float, bool] | None = None  # the last step, for every listener

    async def readline(self) -> bytes:
        raw = await self.reader.readline()
        self.at = time.monotonic()
        text = raw.decode("latin-1")
        if text.startswith("200 "):
            self.reply = text
        return raw

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.reader, name)


def flow_of(agi: AGIChannel) -> str:
    script = agi.headers.get("agi_network_script") or agi.headers.get("agi_request", "")
    return script.rsplit("/", 1)[-1].split("?", 1)[0] or "unknown"


def step_ms(agi: AGIChannel, next_command: str) -> tuple[float, bool] | None:
    """At ``next_command``: the gap since the last reply (ms), and whether that reply carried
    a key to a key-collecting command; None before the first reply."""
    reader = agi.reader
    if not isinstance(reader, TimedReader):
        return None
    if reader.command is next_command:  # another listener of the same command asked first
        return reader.step
    reader.step = None
    if reader.at:
        reader.step = ((time.monotonic() - reader.at) * 1000,
                       carried_key(reader.command, reader.reply))
    reader.command, reader.at = next_command, 0.0
    return reader.step


def time_replies(agi: AGIChannel) -> None:
    if not isinstance(agi.reader, TimedReader):
        agi.reader = TimedReader(agi.reader)  # type: ignore[assignment]


def observe(server: FastAGIServer) -> None:
    def listener(kind: str, agi: AGIChannel, detail: str) -> None:
        flow = flow_of(agi)
        if kind == "start":
            time_replies(agi)
            metrics.CALLS.labels(flow).inc()
            metrics.CALLS_IN_PROGRESS.labels(flow).inc()
        elif kind == "end":
            metrics.CALLS_IN_PROGRESS.labels(flow).dec()
        elif kind == "command" and (step := step_ms(agi, detail)) is not None and step[1]:
            metrics.STEP_SECONDS.labels(flow).observe(step[0] / 1000)

    server.listeners.append(listener)
