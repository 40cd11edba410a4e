"""Hostile AGI input (property-based, Hypothesis): malformed headers and replies end at
most that one call, never the FastAGI server; connections from addresses that are not
Asterisk's are refused before a word is read."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.fastagi import AGIChannel, FastAGIServer
from tests.test_fastagi import HEADER, FakeAsterisk

KEYS = ["agi_network", "agi_network_script", "agi_request", "agi_channel", "agi_callerid",
        "agi_uniqueid", "agi_arg_1", "agi_language", "bogus", ""]
header_lines = st.one_of(
    st.builds(lambda k, v: f"{k}: {v}", st.sampled_from(KEYS), st.text(max_size=80)),
    st.just("agi_network_script: absence"),
    st.text(max_size=120),
)
headers = st.one_of(
    st.binary(max_size=3000),
    st.lists(header_lines, max_size=30).map(lambda ls: ("\n".join(ls) + "\n\n").encode(
        "utf-8", "surrogatepass")),
    st.just(b"agi_network_script: absence\n" * 300 + b"\n"),  # too long a header
    st.just(b"agi_request: " + b"x" * 70_000 + b"\n\n"),  # a line past the stream limit
)
replies = st.lists(st.one_of(
    st.sampled_from(["200 result=1 (09012345678)", "200 result=49 endpos=10", "HANGUP",
                     "100 result=0 Trying...", "510 Invalid or unknown command",
                     "520-Invalid command syntax.", "520 End of proper usage.",
                     "511 Command Not Permitted", "200 result=-1", "200 result=abc (",
                     "200 result=", "200", "", "\x00\xff", "2" * 70_000]),
    st.text(max_size=200),
), max_size=12)


async def _flow(agi: AGIChannel) -> None:
    """What a call flow does: read variables, play prompts, read keys, record."""
    await agi.answer()
    await agi.get_variable("CALLERID(num)")
    for _ in range(3):
        await agi.stream_file("renraku/menu", "123")
        await agi.get_data("renraku/number", 1000, 4)
        await agi.wait_for_digit(1000)
    await agi.record_file("/tmp/never", silence_s=2)


async def _session(exchange: Any) -> None:
    """Start a server, run ``exchange(port)``, then prove a normal call still works."""
    loop_errors: list[Any] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: loop_errors.append(ctx))
    normal: list[str] = []

    async def handler(agi: AGIChannel) -> None:
        if agi.caller == "normal":
            normal.append(await agi.get_variable("CALLERID(num)") or "")
            return
        await _flow(agi)

    server = FastAGIServer()
    server.route("absence", handler)
    port = await server.start("127.0.0.1", 0)
    try:
        await asyncio.wait_for(exchange(port), 20)
        await FakeAsterisk(port).run(HEADER.replace("09012345678", "normal"),
                                     ["200 result=1 (ok)"])
        for _ in range(100):
            if not server.active:
                break
            await asyncio.sleep(0.02)
        assert not server.active, "a call is still running after its peer left"
        assert normal == ["ok"], "the server stopped serving calls"
    finally:
        await server.stop(grace_s=1)
    assert not loop_errors, loop_errors


async def _raw(port: int, data: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    with contextlib.suppress(ConnectionError):  # a refused peer may see a reset
        writer.write(data)
        await writer.drain()
        writer.write_eof()
        while await reader.read(65536):  # whatever the server says, until it closes
            pass
    writer.close()


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=headers)
def test_any_header_bytes_end_only_that_connection(data: bytes) -> None:
    asyncio.run(_session(lambda port: _raw(port, data)))


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(answers=replies)
def test_any_replies_end_only_that_call(answers: list[str]) -> None:
    # All replies at once, then end of stream: no lockstep for a reply to wait on.
    data = HEADER + "".join(a + "\n" for a in answers)
    asyncio.run(_session(lambda port: _raw(port, data.encode("utf-8", "surrogatepass"))))


async def test_only_asterisks_addresses_may_connect() -> None:
    called: list[str] = []

    async def handler(agi: AGIChannel) -> None:
        called.append(agi.caller)

    server = FastAGIServer(allowed="192.0.2.10, 2001:db8::/32")  # Asterisk lives elsewhere
    server.route("absence", handler)
    port = await server.start("127.0.0.1", 0)
    await _raw(port, HEADER.encode())  # closed at once (a reset: the header was unread)
    await server.stop()
    assert called == [] and server.refused == 1 and server.calls_started == 0
    loopback = FastAGIServer()  # the default: Asterisk on this machine
    loopback.route("absence", handler)
    port = await loopback.start("127.0.0.1", 0)
    await FakeAsterisk(port).run(HEADER, [])
    await loopback.stop()
    assert called == ["09012345678"] and loopback.refused == 0


def test_the_server_is_built_with_the_settings_allow_list() -> None:
    from renraku.app import App
    from renraku.clock import FakeClock
    from renraku.settings import Settings
    from tests.web_fixtures import PORTAL_NOW

    app = App(Settings(fastagi_allowed="10.1.2.3"), FakeClock(PORTAL_NOW), None, None)  # type: ignore[arg-type]
    from ivr.routes import build_server

    assert [str(n) for n in build_server(app).allowed] == ["10.1.2.3/32"]
