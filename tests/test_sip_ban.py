"""SIP password guessing is banned, through the real IVR Asterisk.

SIPVicious' ``svcrack`` (Debian's sipvicious, as attackers run it) guesses the softphone
account's password from 127.0.0.9. The guard (``ivr/sip_guard.py``, what ``renraku run``
starts) counts Asterisk's security events and bans the address with a PJSIP ACL after 5
failures: svcrack's further REGISTERs get 403 without a challenge. Meanwhile the softphone
with its password registers and calls from another address; the ban lifts after its time
(a short setting here) and the address is challenged again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import shutil
import socket
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ivr.fastagi import AGIChannel
from ivr.sip_guard import ACL_FILE, RELOAD_COMMAND, SipGuard
from renraku.clock import SystemClock
from renraku.rules.addresses import networks
from renraku.rules.sip_ban import BanPolicy
from renraku.services.sip_bans import BanStore
from renraku.settings import ensure_secret
from tests.asterisk_harness import PhoneLines
from tests.test_softphone import SipPhone

pytestmark = pytest.mark.asterisk
ATTACKER = "127.0.0.9"  # the trunk (carrier simulator) is 127.0.0.1
PHONE = "127.0.0.10"
WRAPPER = Path(__file__).with_name("sip_scanner.py")
BAN_FOR = timedelta(seconds=15)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def register(port: int, host: str, password: str, expires: int = 60) -> tuple[int, int]:
    """REGISTER the softphone from ``host``, answering a digest challenge with ``password``:
    (first status, final status). A banned address gets 403 at once, no challenge."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        sock.settimeout(5)
        src = sock.getsockname()[1]
        uri = f"sip:127.0.0.1:{port}"
        call_id, tag = uuid.uuid4().hex, uuid.uuid4().hex[:8]

        def send(cseq: int, auth: str = "") -> tuple[int, str]:
            sock.sendto((
                f"REGISTER {uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {host}:{src};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport\r\n"
                f"From: <sip:softphone@127.0.0.1>;tag={tag}\r\nTo: <sip:softphone@127.0.0.1>\r\n"
                f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
                f"Contact: <sip:softphone@{host}:{src}>\r\nExpires: {expires}\r\n"
                f"Max-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n").encode(),
                ("127.0.0.1", port))
            while True:
                data = sock.recv(65535).decode(errors="replace")
                code = int(data.split()[1])
                if code >= 200:
                    return code, data

        first, data = send(1)
        if first != 401:
            return first, first
        header = re.search(r"(?im)^WWW-Authenticate:\s*Digest (.*)$", data)
        assert header is not None, data
        challenge = dict(re.findall(r'(\w+)="?([^",]+)"?', header.group(1)))
        cnonce, nc = uuid.uuid4().hex[:16], "00000001"
        ha1 = _md5(f"softphone:{challenge['realm']}:{password}")
        response = _md5(f"{ha1}:{challenge['nonce']}:{nc}:{cnonce}:auth:"
                        f"{_md5('REGISTER:' + uri)}")
        opaque = f', opaque="{challenge["opaque"]}"' if "opaque" in challenge else ""
        final, _ = send(2, (
            f'Authorization: Digest username="softphone", realm="{challenge["realm"]}", '
            f'nonce="{challenge["nonce"]}", uri="{uri}", response="{response}", '
            f'algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"{opaque}\r\n'))
        return first, final


async def _svcrack(port: int, passwords: str, seconds: float) -> str:
    """svcrack from the attacker's address for ``seconds`` (once banned it would resend
    its refused guess for ever), then stopped; its output."""
    proc = await asyncio.create_subprocess_exec(
        "/usr/bin/python3", str(WRAPPER), ATTACKER, "svcrack", "-u", "softphone",
        "-r", passwords, "-p", str(port), "127.0.0.1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), seconds)
    except TimeoutError:
        proc.terminate()
        out, _ = await proc.communicate()
    return out.decode(errors="replace")


def _failures_from(lines: PhoneLines, address: str, since: int) -> list[dict[str, str]]:
    return [e for e in lines.ivr_ami_events[since:]
            if e.get("Event") in ("ChallengeResponseFailed", "InvalidAccountID", "InvalidPassword")
            and f"/{address}/" in e.get("RemoteAddress", "")]


async def test_svcrack_is_banned_after_a_few_guesses_while_the_softphone_works(
    lines: PhoneLines, tmp_path: Path
) -> None:
    assert shutil.which("svcrack"), "apt-get install sipvicious"
    ivr = lines.ivr
    port = lines.settings.sip_port
    password = ensure_secret(lines.settings, "softphone_password")
    policy = BanPolicy(threshold=5, window=timedelta(minutes=1), ban_for=BAN_FOR,
                       allow=networks("127.0.0.1"))
    store = BanStore(tmp_path)
    guard = SipGuard(policy, store, ivr.etc,
                     lambda: asyncio.to_thread(ivr.rx, RELOAD_COMMAND), SystemClock())
    guard.attach(lines.ivr_ami)
    await guard.start()
    callers: list[str] = []

    async def handler(agi: AGIChannel) -> None:
        callers.append(await agi.get_variable("CALLERID(num)") or "")
        await agi.hangup()

    lines.route("absence", handler)
    try:
        since = len(lines.ivr_ami_events)
        started = time.monotonic()
        out = await _svcrack(port, "1000-2999", 10)  # 2,000 guesses, as in the issue
        took = time.monotonic() - started
        await guard.wait_applied(ATTACKER, True)
        failures = _failures_from(lines, ATTACKER, since)
        # The 5th failure bans; the few already on the wire while Asterisk reloads pass.
        # The 5th failure bans; the guesses already on the wire while Asterisk reloads
        # (svcrack sends about one per 10 ms, the reload takes some 30-100 ms: 9 to 15
        # failures in all, measured; up to 250 ms budgeted for a loaded machine) still
        # fail, and none once the ACL is in force.
        assert 5 <= len(failures) <= 5 + 25, (len(failures), out[-800:])
        applied = guard.applied_at[ATTACKER]
        late = [e["EventTV"] for e in failures
                if datetime.strptime(e["EventTV"], "%Y-%m-%dT%H:%M:%S.%f%z") > applied]
        assert not late, (applied, late)
        assert "could not be cracked" in out.lower() or "found" not in out.lower(), out[-800:]
        [entry] = store.history()
        assert entry["event"] == "ban" and entry["address"] == ATTACKER
        assert entry["reason"].startswith("ChallengeResponseFailed"), entry
        assert f"deny = {ATTACKER}/32" in (ivr.etc / ACL_FILE).read_text()
        # Refused before any challenge, even with the right password.
        assert await asyncio.to_thread(register, port, ATTACKER, password) == (403, 403)
        assert len(_failures_from(lines, ATTACKER, since)) == len(failures)
        # The softphone from its own address registers and calls the absence line.
        assert await asyncio.to_thread(register, port, PHONE, password) == (401, 200)
        phone = SipPhone(port, "softphone", password, host=PHONE)
        try:
            assert await asyncio.to_thread(phone.call, "1") == 200
            assert await asyncio.to_thread(phone.wait_bye)
        finally:
            phone.close()
        assert callers == ["09010000001"]
        # The ban lifts after its time: the address is challenged again.
        await guard.wait_applied(ATTACKER, False, within=BAN_FOR.total_seconds() + 10)
        assert await asyncio.to_thread(register, port, ATTACKER, password) == (401, 200)
        assert [e["event"] for e in store.history()] == ["ban", "lift"]
        print(f"svcrack: {len(failures)} failed guesses before the ban, ran {took:.1f} s")
    finally:
        await guard.close()
        (ivr.etc / ACL_FILE).unlink(missing_ok=True)
        await asyncio.to_thread(ivr.rx, RELOAD_COMMAND, 15, False)
        with contextlib.suppress(OSError):  # leave the softphone unregistered, as found
            await asyncio.to_thread(register, port, PHONE, password, 0)
