"""The FastAGI server: Asterisk connects here for every call that runs ``AGI(agi://…)``.

Why not panoramisk's ``fast_agi.Application`` (checked, panoramisk 1.4 on Python 3.11):
- its header reader loops on ``reader.read()`` until it sees a blank line, so a peer that
  closes early makes it spin forever on ``b''``, and bytes after the blank line are lost;
- a synchronous endpoint goes through ``asyncio.coroutine``, which Python 3.11 removed;
- a hang-up is not an error: a ``HANGUP`` line, ``511`` (dead channel) or EOF comes back
  as an ordinary result dict, so a flow keeps "talking" to a dead channel;
- there is no graceful shutdown and no per-call bookkeeping.
This module keeps panoramisk's reply parser idea but owns the connection life cycle: one
task per call, header validation, ``Hangup`` raised on every sign of a gone channel, a
command log per call (the test harness reads what was played) and a drain on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from ivr import keypad
from ivr.keypad import read_sounds
from renraku.call_logging import CALL_ID, install
from renraku.rules.addresses import allowed, networks
from renraku.rules.phone import presentation_restricted

log = logging.getLogger(__name__)

MAX_HEADER_LINES = 200
BACKLOG = 1024  # connections waiting to be accepted (the kernel caps it at somaxconn)
HEADER_TIMEOUT_S = 5.0
REPLY_RE = re.compile(r"^(\d{3})(?:[ -](.*))?$")
# GET DATA answers with the keys themselves ("result=1*2"), so * and # belong in a result;
# "result= (timeout)" (nothing pressed) parses to an empty result.
RESULT_RE = re.compile(r"result=(-?[0-9*#A-D]*)(?:\s+\((.*?)\))?(?:\s+endpos=(\d+))?")
DTMF_KEYS = frozenset("0123456789*#ABCD")


class Hangup(Exception):
    """The caller is gone: HANGUP notice, 511 dead channel, result=-1 or a closed socket."""


class AGIError(Exception):
    """Asterisk refused a command (510 invalid command, 520 usage error)."""


@dataclass(frozen=True)
class Reply:
    code: int
    result: str
    data: str
    endpos: int | None
    raw: str

    @property
    def digit(self) -> str:
        """The DTMF digit a STREAM FILE / WAIT FOR DIGIT result encodes ('' for none)."""
        try:
            value = int(self.result)
        except ValueError:
            return ""
        return chr(value) if value > 0 else ""


def parse_reply(line: str) -> Reply:
    """Parse one AGI reply line such as ``200 result=49 (dtmf) endpos=1234``."""
    text = line.rstrip("\r\n")
    if text.strip().upper() == "HANGUP":
        raise Hangup("HANGUP notice")
    match = REPLY_RE.match(text)
    if not match:
        raise AGIError(f"unparseable AGI reply: {text!r}")
    code = int(match.group(1))
    rest = match.group(2) or ""
    if code == 511:
        raise Hangup(rest or "dead channel")
    if code != 200:
        raise AGIError(f"{code} {rest}".strip())
    result = RESULT_RE.search(rest)
    if not result:
        return Reply(code, "", rest, None, text)
    endpos = int(result.group(3)) if result.group(3) else None
    return Reply(code, result.group(1), result.group(2) or "", endpos, text)


def played_names(cmd: str) -> list[str]:
    """The sounds a STREAM FILE, GET DATA or ``EXEC Read`` command plays ([] for others);
    the argument quoted (as sent here) or not (as pyst2 sends a file name)."""
    words = 2 if cmd.startswith(("STREAM FILE", "GET DATA", "EXEC Read ")) else 0
    rest = cmd.split(None, words)[-1] if words else ""
    arg = rest.split('"')[1] if rest.startswith('"') else rest.split(" ", 1)[0]
    if not arg:
        return []
    return read_sounds(arg) if cmd.startswith("EXEC") else [arg]


def _quote(arg: str) -> str:
    return '"' + str(arg).replace("\\", "\\\\").replace('"', '\\"') + '"'


async def read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    """Read the ``agi_*`` block up to its blank line; ValueError when it is malformed."""
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        raw = await reader.readline()
        if not raw:
            raise ValueError("connection closed inside the AGI header")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if "agi_network_script" not in headers and "agi_request" not in headers:
                raise ValueError("AGI header without agi_request")
            return headers
        key, sep, value = line.partition(": ")
        if not sep or not key.startswith("agi_"):
            raise ValueError(f"malformed AGI header line: {line[:80]!r}")
        headers[key] = value
    raise ValueError("AGI header too long")


class CallerFacts:
    """The call as Asterisk describes it in the AGI environment (the ``agi_*`` lines it sends
    first), the same for both transports: known without a command."""

    headers: dict[str, str]

    @property
    def uniqueid(self) -> str:
        return self.headers.get("agi_uniqueid", "")

    @property
    def caller(self) -> str:
        return self.headers.get("agi_callerid", "")

    @property
    def withheld(self) -> bool:
        return presentation_restricted(self.headers.get("agi_callingpres"))

    @property
    def language(self) -> str:
        """The channel's language when the call reached the app."""
        return self.headers.get("agi_language", "")

    @property
    def kept_language(self) -> str:
        """The caller's language the dialplan found kept in AstDB, passed on the AGI URL
        (``…/absence?kept=en``, dialplans/inbound.conf); "" when none was."""
        query = urlsplit(self.headers.get("agi_request", "")).query
        return dict(parse_qsl(query)).get("kept", "")


@dataclass
class AGIChannel(CallerFacts):
    """One call's AGI conversation; every method raises Hangup once the caller is gone."""

    headers: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    args: dict[str, str] = field(default_factory=dict)
    log: list[tuple[float, str, str]] = field(default_factory=list)  # (t, command, reply)
    on_command: Callable[[AGIChannel, str], None] | None = None
    gone: bool = False  # the channel hung up, by the caller or by HANGUP: nothing more to say
    Hangup = Hangup

    async def command(self, cmd: str) -> Reply:
        # One at a time: tried with Asterisk 22, a second command written before the first's
        # reply was never answered (res_agi reads lines through a stdio buffer, then polls
        # the socket, which has nothing new).
        self.log.append((time.monotonic(), cmd, ""))
        if self.on_command is not None:
            self.on_command(self, cmd)
        try:
            reply = await self._exchange(cmd)
        except Hangup:
            self.gone = True
            raise
        self.gone = self.gone or cmd == "HANGUP"
        return reply

    async def _exchange(self, cmd: str) -> Reply:
        try:
            self.writer.write((cmd + "\n").encode())
            await self.writer.drain()
            while True:
                raw = await self.reader.readline()
                if not raw:
                    raise Hangup("connection closed")
                line = raw.decode("utf-8", "replace")
                if line.strip().upper() == "HANGUP":
                    self.gone = True
                    continue  # agi_enhanced notice; the command's own reply follows
                if line.startswith("520-"):
                    # Multi-line usage error: read up to its "520 End of proper usage."
                    while raw and not raw.startswith(b"520 "):
                        raw = await self.reader.readline()
                    raise AGIError(f"usage error for {cmd!r}")
                if line.startswith("100"):
                    continue  # "100 result=0 Trying..." precedes the real reply
                break
        except (ConnectionError, OSError) as exc:
            raise Hangup(str(exc)) from exc
        reply = parse_reply(line)
        self.log[-1] = (self.log[-1][0], cmd, reply.raw)
        if reply.result == "-1":
            raise Hangup(f"{cmd}: result=-1")
        return reply

    @property
    def streamed(self) -> list[str]:
        """Sounds given to STREAM FILE / GET DATA / Read, in order: what the caller heard."""
        return [name for _t, cmd, _reply in self.log for name in played_names(cmd)]

    async def answer(self) -> None:
        await self.command("ANSWER")

    async def hangup(self) -> None:
        with contextlib.suppress(Hangup, AGIError):
            await self.command("HANGUP")

    async def get_variable(self, name: str) -> str | None:
        reply = await self.command(f"GET VARIABLE {_quote(name)}")
        return reply.data if reply.result == "1" else None

    async def get_full_variable(self, expr: str) -> str | None:
        reply = await self.command(f"GET FULL VARIABLE {_quote(expr)}")
        return reply.data if reply.result == "1" else None

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f"SET VARIABLE {_quote(name)} {_quote(value)}")

    async def stream_file(self, name: str, escape_digits: str = "") -> str:
        reply = await self.command(f"STREAM FILE {_quote(name)} {_quote(escape_digits)}")
        return reply.digit

    async def wait_for_digit(self, timeout_ms: int) -> str:
        return (await self.command(f"WAIT FOR DIGIT {int(timeout_ms)}")).digit

    async def get_data(self, name: str, timeout_ms: int = 5000, max_digits: int = 1) -> str:
        reply = await self.command(f"GET DATA {_quote(name)} {int(timeout_ms)} {int(max_digits)}")
        return reply.result if set(reply.result) <= DTMF_KEYS else ""

    async def read_keys(self, sounds: Sequence[tuple[str, str]], channel_lang: str,
                        max_digits: int, timeout_ms: int) -> str:
        """Play (language, sound) pairs and read keys in one command (see ivr.keypad)."""
        return await keypad.read_keys(self, sounds, channel_lang, max_digits, timeout_ms)

    async def record_file(
        self,
        path: str,
        fmt: str = "wav",
        escape_digits: str = "#",
        timeout_ms: int = 120000,
        beep: bool = True,
        silence_s: int = 0,
    ) -> Reply:
        cmd = f"RECORD FILE {_quote(path)} {fmt} {_quote(escape_digits)} {int(timeout_ms)}"
        if beep:
            cmd += " BEEP"
        if silence_s:
            cmd += f" s={int(silence_s)}"
        return await self.command(cmd)

    async def exec(self, app: str, args: str = "") -> Reply:
        return await self.command(f"EXEC {app} {_quote(args)}")

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command(f"VERBOSE {_quote(message)} {int(level)}")


Handler = Callable[[AGIChannel], Awaitable[object]]


class FastAGIServer:
    """Routes each connection by its script path to a handler, one task per call."""

    def __init__(self, allowed: str = "127.0.0.1,::1") -> None:
        install()  # the calls' log lines carry their unique id
        self.allowed = networks(allowed)  # only Asterisk may start a call flow
        self.refused = 0
        self.routes: dict[str, Handler] = {}
        self.active: set[asyncio.Task[None]] = set()
        self.calls_started = 0
        self.calls_failed = 0
        self.listeners: list[Callable[[str, AGIChannel, str], None]] = []
        self._server: asyncio.Server | None = None

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path.strip("/")] = handler

    def _emit(self, kind: str, agi: AGIChannel, detail: str) -> None:
        for listener in list(self.listeners):
            try:
                listener(kind, agi, detail)
            except Exception:  # a broken observer must never break a call
                log.exception("FastAGI listener failed")

    async def start(self, host: str, port: int) -> int:
        # The morning's calls arrive together, and while the loop lags none is accepted:
        # asyncio's default backlog (100) is smaller than such a burst (at 300 calls, 5 never
        # reached a flow and went to voicemail).
        self._server = await asyncio.start_server(self._connection, host, port,
                                                  backlog=BACKLOG)
        return self._server.sockets[0].getsockname()[1]

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.active.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self.active.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not peer or not allowed(str(peer[0]), self.allowed):
            self.refused += 1
            log.warning("FastAGI from %s refused: not an allowed Asterisk address", peer)
            return
        try:
            headers = await asyncio.wait_for(read_headers(reader), HEADER_TIMEOUT_S)
        except (ValueError, TimeoutError) as exc:
            log.warning("FastAGI from %s: %s; closing", peer, exc)
            return
        url = urlsplit(headers.get("agi_request", ""))
        script = (headers.get("agi_network_script") or url.path).split("?", 1)[0].strip("/")
        handler = self.routes.get(script)
        if handler is None:
            log.error("FastAGI from %s: no route for %r", peer, script)
            return
        args = dict(parse_qsl(url.query))
        args.update({k: v for k, v in headers.items() if k.startswith("agi_arg_")})
        agi = AGIChannel(
            headers, reader, writer, args, on_command=lambda a, cmd: self._emit("command", a, cmd)
        )
        # This task is the call's: what it and the tasks it starts log names the call.
        CALL_ID.set(agi.uniqueid)
        log.info("call from %s: %s", peer[0], script)
        self.calls_started += 1
        self._emit("start", agi, script)
        try:
            await handler(agi)
            # The dialplan ([renraku-fastagi]) hands a call whose flow did not get here, its
            # app node dead or failing, to the next app node. A hung-up call goes nowhere:
            # a round trip saved on nearly every call.
            if not agi.gone:
                with contextlib.suppress(Hangup, AGIError, OSError):
                    await agi.set_variable("RENRAKU_AGI_DONE", "1")
        except Hangup as exc:
            log.info("call %s (%s) hung up: %s", agi.uniqueid, script, exc)
        except Exception:
            self.calls_failed += 1
            log.exception("call %s (%s) failed", agi.uniqueid, script)
        finally:
            self._emit("end", agi, script)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop accepting calls; let the calls in progress finish for up to ``grace_s``."""
        if self._server is not None:
            self._server.close()
        pending = set(self.active)
        if pending:
            _done, still = await asyncio.wait(pending, timeout=grace_s)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=2)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
