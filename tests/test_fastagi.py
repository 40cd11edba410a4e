"""The FastAGI server without Asterisk: header reading, reply parsing, hang-ups, isolation."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from ivr.fastagi import AGIChannel, AGIError, FastAGIServer, Hangup, parse_reply, played_names

HEADER = (
    "agi_network: yes\nagi_network_script: absence\nagi_request: agi://127.0.0.1/absence\n"
    "agi_channel: PJSIP/carrier-00000001\nagi_callerid: 09012345678\nagi_uniqueid: 1.1\n\n"
)


def test_parse_replies() -> None:
    reply = parse_reply("200 result=49 endpos=1234")
    assert (reply.result, reply.digit, reply.endpos) == ("49", "1", 1234)
    assert parse_reply("200 result=0 endpos=800").digit == ""
    assert parse_reply("200 result=1 (09012345678)").data == "09012345678"
    assert parse_reply("200 result=1234 (timeout)").result == "1234"
    with pytest.raises(Hangup):
        parse_reply("511 Command Not Permitted on a dead channel or intercept routine")
    with pytest.raises(Hangup):
        parse_reply("HANGUP")
    with pytest.raises(AGIError):
        parse_reply("510 Invalid or unknown command")
    with pytest.raises(AGIError):
        parse_reply("garbage")


class FakeAsterisk:
    """Connects to the server like Asterisk and answers commands from a script."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.commands: list[str] = []

    async def run(self, header: str, replies: list[str]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(header.encode())
        await writer.drain()
        for reply in replies:
            line = await asyncio.wait_for(reader.readline(), 5)
            if not line:
                break
            self.commands.append(line.decode().strip())
            writer.write((reply + "\n").encode())
            await writer.drain()
        writer.write_eof()  # no more replies: the server sees the channel go away
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.read(), 5)
        writer.close()


async def serve(handler) -> tuple[FastAGIServer, int]:  # type: ignore[no-untyped-def]
    server = FastAGIServer()
    server.route("absence", handler)
    port = await server.start("127.0.0.1", 0)
    return server, port


async def test_digits_and_variables_flow_through() -> None:
    seen: dict[str, object] = {}

    async def handler(agi: AGIChannel) -> None:
        seen["caller"] = await agi.get_variable("CALLERID(num)")
        seen["digit"] = await agi.stream_file("renraku/welcome", "123")
        seen["args"] = agi.args

    server, port = await serve(handler)
    fake = FakeAsterisk(port)
    await fake.run(HEADER, ["200 result=1 (09012345678)", "200 result=50 endpos=100"])
    await server.stop()
    assert seen == {"caller": "09012345678", "digit": "2", "args": {}}
    assert fake.commands == ['GET VARIABLE "CALLERID(num)"',
                             'STREAM FILE "renraku/welcome" "123"']


async def test_hangup_mid_flow_ends_the_handler_cleanly() -> None:
    reached: list[str] = []

    async def handler(agi: AGIChannel) -> None:
        await agi.stream_file("renraku/welcome", "1")
        reached.append("after first prompt")
        await agi.stream_file("renraku/menu", "1")
        reached.append("never")

    server, port = await serve(handler)
    await FakeAsterisk(port).run(HEADER, ["200 result=0 endpos=10", "HANGUP"])
    await asyncio.sleep(0.1)
    await server.stop()
    assert reached == ["after first prompt"]
    assert server.calls_failed == 0  # a hang-up is not a failure


async def test_only_a_call_still_up_is_marked_done_for_the_dialplan() -> None:
    """The dialplan hands a call whose flow did not mark it done to the next app node. A
    flow that hung up, or whose caller did, leaves nothing to mark: no command after it."""
    async def hangs_up(agi: AGIChannel) -> None:
        await agi.stream_file("renraku/goodbye")
        await agi.hangup()

    async def returns(agi: AGIChannel) -> None:
        await agi.stream_file("renraku/goodbye")

    calls = {"hangs_up": ["200 result=0 endpos=10", "200 result=1", "200 result=1"],
             "returns": ["200 result=0 endpos=10", "200 result=1"],
             # the notice of the caller's hang-up, then the command's own reply
             "caller_gone": ["HANGUP\n200 result=0 endpos=10", "200 result=1"]}
    server = FastAGIServer()
    server.route("hangs_up", hangs_up)
    server.route("returns", returns)
    server.route("caller_gone", returns)
    port = await server.start("127.0.0.1", 0)
    seen: dict[str, list[str]] = {}
    for route, replies in calls.items():
        fake = FakeAsterisk(port)
        await fake.run(HEADER.replace("absence", route), replies)
        seen[route] = fake.commands
    await server.stop()
    played = 'STREAM FILE "renraku/goodbye" ""'
    assert seen == {"hangs_up": [played, "HANGUP"],
                    "returns": [played, 'SET VARIABLE "RENRAKU_AGI_DONE" "1"'],
                    "caller_gone": [played]}
    assert server.calls_failed == 0


async def test_dead_channel_and_eof_raise_hangup() -> None:
    outcomes: list[str] = []

    async def handler(agi: AGIChannel) -> None:
        try:
            await agi.wait_for_digit(1000)
        except Hangup as exc:
            outcomes.append(type(exc).__name__)
            raise

    server, port = await serve(handler)
    await FakeAsterisk(port).run(HEADER, ["511 Command Not Permitted on a dead channel"])
    await FakeAsterisk(port).run(HEADER, [])  # Asterisk goes away without a word
    await asyncio.sleep(0.1)
    await server.stop()
    assert outcomes == ["Hangup", "Hangup"]


async def test_malformed_header_is_closed_without_a_call() -> None:
    called: list[int] = []

    async def handler(agi: AGIChannel) -> None:
        called.append(1)

    server, port = await serve(handler)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
    writer.close()
    await server.stop()
    assert called == [] and server.calls_started == 0


async def test_a_slow_call_does_not_block_others_and_shutdown_waits() -> None:
    release = asyncio.Event()
    finished: list[str] = []

    async def handler(agi: AGIChannel) -> None:
        if agi.caller == "slow":
            await release.wait()
        finished.append(agi.caller)

    server, port = await serve(handler)
    slow = asyncio.create_task(FakeAsterisk(port).run(HEADER.replace("09012345678", "slow"), []))
    await asyncio.sleep(0.1)
    await FakeAsterisk(port).run(HEADER, [])
    assert finished == ["09012345678"]
    stopping = asyncio.create_task(server.stop(grace_s=5))
    await asyncio.sleep(0.1)
    assert not stopping.done()  # the slow call is still allowed to finish
    release.set()
    await stopping
    await slow
    assert finished == ["09012345678", "slow"]


def test_played_names_are_the_sounds_of_stream_file_get_data_and_read_only() -> None:
    assert played_names('STREAM FILE "renraku/absence.welcome" "0123456789*#"') == [
        "renraku/absence.welcome"]
    assert played_names('GET DATA "renraku/absence.pin" 5000 4') == ["renraku/absence.pin"]
    assert played_names('STREAM FILE renraku/absence.goodbye "" 0') == [  # pyst2's way
        "renraku/absence.goodbye"]
    assert played_names('EXEC Read "RENRAKU_KEYS,renraku/a&en/renraku/b,1,t(),1,5"') == [
        "renraku/a", "en/renraku/b"]
    assert played_names('EXEC Playback "renraku/a"') == []
    assert played_names('SET VARIABLE "CHANNEL(language)" "en"') == []
    assert played_names("WAIT FOR DIGIT 5000") == []
