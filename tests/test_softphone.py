"""The softphone account on the real IVR Asterisk: a person's SIP phone during ``make run``.

A minimal SIP user agent (UDP from 127.0.0.2, digest auth as RFC 2617 with qop=auth)
dials the softphone extensions: with the right password the call reaches the FastAGI
absence line with the demo caller ID the extension sets; with a wrong one it never
connects. No RTP is needed for that, so none is sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import time
import uuid

import pytest

from ivr.fastagi import AGIChannel
from renraku.settings import ensure_secret
from tests.asterisk_harness import PhoneLines

pytestmark = pytest.mark.asterisk


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class SipPhone:
    def __init__(self, ivr_port: int, user: str, password: str, host: str = "127.0.0.2",
                 extra_headers: str = "") -> None:
        self.host, self.extra = host, extra_headers
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.ivr = ("127.0.0.1", ivr_port)
        self.user, self.password = user, password
        self.call_id = uuid.uuid4().hex
        self.tag = uuid.uuid4().hex[:8]
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def _send(self, text: str) -> None:
        self.sock.sendto(text.encode(), self.ivr)

    def _invite(self, exten: str, auth: str = "") -> str:
        self.cseq += 1
        self.branch = "z9hG4bK" + uuid.uuid4().hex[:12]
        sdp = (f"v=0\r\no=- 1 1 IN IP4 {self.host}\r\ns=-\r\nc=IN IP4 {self.host}\r\n"
               "t=0 0\r\n"
               f"m=audio {self.port + 1} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
               "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
        self.uri = f"sip:{exten}@127.0.0.1:{self.ivr[1]}"
        self._send(
            f"INVITE {self.uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch={self.branch};rport\r\n"
            f"From: <sip:{self.user}@127.0.0.1>;tag={self.tag}\r\n"
            f"To: <sip:{exten}@127.0.0.1>\r\nCall-ID: {self.call_id}\r\n"
            f"CSeq: {self.cseq} INVITE\r\nContact: <sip:{self.user}@{self.host}:{self.port}>\r\n"
            f"Max-Forwards: 70\r\n{self.extra}{auth}Content-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
        )
        return self.uri

    def _ack(self, to_header: str, branch: str) -> None:
        self._send(
            f"ACK {self.uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch={branch};rport\r\n"
            f"From: <sip:{self.user}@127.0.0.1>;tag={self.tag}\r\nTo: {to_header}\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: {self.cseq} ACK\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        )

    def _receive(self, within: float) -> tuple[str, dict[str, str], str]:
        """The next SIP message: its first line, headers (lower-case names, the first of
        each) and the whole text; TimeoutError when none comes within ``within`` seconds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(65535).decode(errors="replace")
            except TimeoutError:
                continue
            head = data.split("\r\n\r\n", 1)[0].split("\r\n")
            headers: dict[str, str] = {}
            for line in head[1:]:
                key, _sep, value = line.partition(":")
                headers.setdefault(key.strip().lower(), value.strip())
            return head[0], headers, data
        raise TimeoutError("nothing received")

    def _final(self, within: float = 10.0) -> tuple[int, dict[str, str], str]:
        """Read until a final response to our INVITE; answer any BYE on the way."""
        deadline = time.monotonic() + within
        while True:
            first, headers, data = self._receive(deadline - time.monotonic())
            if first.startswith("SIP/2.0"):
                code = int(first.split()[1])
                if code >= 200 and headers.get("cseq", "").endswith("INVITE"):
                    return code, headers, data
            else:
                self.requests.append(first)
                self._reply_ok(headers)

    def _reply_ok(self, headers: dict[str, str]) -> None:
        self._send(
            "SIP/2.0 200 OK\r\n" + "".join(
                f"{name}: {headers[name.lower()]}\r\n"
                for name in ("Via", "From", "To", "Call-ID", "CSeq") if name.lower() in headers
            ) + "Content-Length: 0\r\n\r\n"
        )

    def call(self, exten: str) -> int:
        """INVITE, answer the digest challenge, ACK; the final response code."""
        self.requests: list[str] = []
        self._invite(exten)
        code, headers, _ = self._final()
        self._ack(headers["to"], self.branch)
        if code != 401:
            return code
        challenge = dict(re.findall(r'(\w+)="?([^",]+)"?', headers["www-authenticate"]))
        realm, nonce = challenge["realm"], challenge["nonce"]
        cnonce, nc = uuid.uuid4().hex[:16], "00000001"
        ha1 = _md5(f"{self.user}:{realm}:{self.password}")
        ha2 = _md5(f"INVITE:{self.uri}")
        response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        opaque = f', opaque="{challenge["opaque"]}"' if "opaque" in challenge else ""
        auth = (f'Authorization: Digest username="{self.user}", realm="{realm}", '
                f'nonce="{nonce}", uri="{self.uri}", response="{response}", algorithm=MD5, '
                f'qop=auth, nc={nc}, cnonce="{cnonce}"{opaque}\r\n')
        self._invite(exten, auth)
        code, headers, _ = self._final(15)
        # ACK a 2xx end to end, a failure hop by hop (its INVITE's branch).
        self._ack(headers["to"], "z9hG4bK" + uuid.uuid4().hex[:12] if code < 300
                  else self.branch)
        return code

    def wait_bye(self, within: float = 10.0) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and not any(r.startswith("BYE") for r in self.requests):
            try:
                self._final(0.5)
            except TimeoutError:
                pass
        return any(r.startswith("BYE") for r in self.requests)


async def test_softphone_with_its_password_reaches_the_absence_line(lines: PhoneLines) -> None:
    callers: list[str] = []

    async def handler(agi: AGIChannel) -> None:
        callers.append(await agi.get_variable("CALLERID(num)") or "")
        await agi.hangup()

    lines.route("absence", handler)
    password = ensure_secret(lines.settings, "softphone_password")
    phone = SipPhone(lines.settings.sip_port, "softphone", password)
    try:
        code = await asyncio.to_thread(phone.call, "1")
        assert code == 200
        assert await asyncio.to_thread(phone.wait_bye)  # the flow hung up on us
    finally:
        phone.close()
    # Extension 1 calls as the demo guardian.
    assert callers == ["09010000001"]


async def test_softphone_with_a_wrong_password_never_connects(lines: PhoneLines) -> None:
    lines.route("absence", lambda agi: agi.hangup())
    before = len(lines.calls)
    phone = SipPhone(lines.settings.sip_port, "softphone", "not-the-password")
    try:
        code = await asyncio.to_thread(phone.call, "1")
    finally:
        phone.close()
    assert code in (401, 403), code
    await asyncio.sleep(0.5)
    assert len(lines.calls) == before
