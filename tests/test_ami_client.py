"""ivr.ami.AMIClient over a lost connection: an action left without its reply fails, and is
never sent a second time after the client logs in again (panoramisk would re-send it)."""

from __future__ import annotations

import asyncio

import pytest

from ivr.ami import AMIClient


class FakeAsterisk:
    """Just enough of Asterisk's manager: the banner, logins, FullyBooted; the first
    PlayDTMF is taken in and the connection cut before its reply (Asterisk may have played
    the key, the client cannot know)."""

    def __init__(self) -> None:
        self.actions: list[dict[str, str]] = []
        self.logins = 0
        self.cut_done = False

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _session(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while block := await reader.readuntil(b"\r\n\r\n"):
                fields = dict(line.split(": ", 1) for line in
                              block.decode().strip().split("\r\n") if ": " in line)
                self.actions.append(fields)
                action, action_id = fields.get("Action", ""), fields.get("ActionID", "")
                if action == "Login":
                    self.logins += 1
                    writer.write(f"Response: Success\r\nActionID: {action_id}\r\n"
                                 "Message: Authentication accepted\r\n\r\n"
                                 "Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n".encode())
                elif action == "PlayDTMF" and not self.cut_done:
                    self.cut_done = True
                    writer.transport.abort()
                    return
                else:
                    writer.write(f"Response: Success\r\nActionID: {action_id}\r\n"
                                 "Message: DTMF successfully queued\r\n\r\n".encode())
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    def played(self) -> list[str]:
        return [a["Digit"] for a in self.actions if a.get("Action") == "PlayDTMF"]


async def test_an_action_cut_before_its_reply_fails_and_is_never_sent_again() -> None:
    asterisk = FakeAsterisk()
    port = await asterisk.start()
    client = await AMIClient("127.0.0.1", port, "renraku", "secret", events="off").start()
    try:
        with pytest.raises(ConnectionError, match="lost before the reply"):
            await asyncio.wait_for(client.send_action(
                {"Action": "PlayDTMF", "Channel": "PJSIP/x-1", "Digit": "1"}), 5)
        while asterisk.logins < 2 or not client.connected:  # noqa: ASYNC110 - the client's state
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # panoramisk would re-send on the FullyBooted just seen
        assert asterisk.played() == ["1"]  # the key once, however the reply was lost
        reply = await asyncio.wait_for(client.send_action(
            {"Action": "PlayDTMF", "Channel": "PJSIP/x-1", "Digit": "2"}), 5)
        assert reply.success and asterisk.played() == ["1", "2"]  # the new connection works
    finally:
        client.close()
        asterisk.server.close()
