"""The real Asterisk: configuration, calls in over SIP with DTMF, what it refuses."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from ivr import asterisk_runtime as rt
from ivr.ami import AMIAuthError, AMIClient
from ivr.fastagi import AGIChannel
from tests.asterisk_harness import PhoneLines

CONTEXTS = ["renraku-inbound", "renraku-absence", "renraku-absence-classic",
            "renraku-admin-record", "renraku-broadcast", "renraku-softphone"]


def test_configuration_loads_without_errors(phone_lines: PhoneLines) -> None:
    assert phone_lines.ivr.errors() == []
    shown = phone_lines.ivr.rx("dialplan show")
    for context in CONTEXTS:
        assert f"'{context}'" in shown
    modules = phone_lines.ivr.rx("module show like pjsip")
    assert "chan_pjsip.so" in modules and "Running" in modules
    endpoints = phone_lines.ivr.rx("pjsip show endpoints")
    assert "carrier" in endpoints and "softphone" in endpoints and "anonymous" not in endpoints


async def test_call_reaches_fastagi_with_number_and_digits_in_order(lines: PhoneLines) -> None:
    got: dict[str, object] = {}

    async def handler(agi: AGIChannel) -> None:
        got["number"] = await agi.get_variable("CALLERID(num)")
        digits = ""
        for _ in range(4):
            digits += await agi.wait_for_digit(8000)
        got["digits"] = digits
        await agi.hangup()

    lines.route("absence", handler)
    phone = lines.phone("09012345678")
    await phone.call()
    await lines.wait_for(lambda: any("WAIT FOR DIGIT" in c for _t, c, _r in phone.agi.log))
    await phone.press("4831")
    await phone.wait_end()
    assert got == {"number": "09012345678", "digits": "4831"}


def test_unknown_peer_invite_is_refused(phone_lines: PhoneLines) -> None:
    """An INVITE from an address that is not the carrier gets an auth challenge, no call."""
    calls_before = len(phone_lines.calls)
    port = phone_lines.settings.sip_port
    branch, tag, call_id = (uuid.uuid4().hex[:10] for _ in range(3))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.2", 0))
        src = sock.getsockname()[1]
        sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n" \
              "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        invite = (
            f"INVITE sip:0120000000@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.2:{src};branch=z9hG4bK{branch};rport\r\n"
            f"From: <sip:09012345678@127.0.0.2>;tag={tag}\r\n"
            f"To: <sip:0120000000@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:09012345678@127.0.0.2:{src}>\r\nMax-Forwards: 70\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
        )
        sock.sendto(invite.encode(), ("127.0.0.1", port))
        sock.settimeout(5)
        codes = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65535).decode(errors="replace")
            except TimeoutError:
                break
            codes.append(int(data.split()[1]))
            if codes[-1] >= 200:
                break
    assert codes and codes[-1] in (401, 403, 404, 407), codes
    time.sleep(0.5)
    assert len(phone_lines.calls) == calls_before


async def test_ami_refuses_a_wrong_secret(phone_lines: PhoneLines) -> None:
    s = phone_lines.settings
    with pytest.raises(AMIAuthError):
        await AMIClient("127.0.0.1", s.ami_port, s.ami_user, "wrong-secret").start(timeout_s=5)


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a local address
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


def test_ami_listens_on_loopback_only(phone_lines: PhoneLines) -> None:
    port = phone_lines.settings.ami_port
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True)
    if out.returncode == 0:
        listeners = [line.split()[3] for line in out.stdout.splitlines() if line.strip()]
        assert listeners == [f"127.0.0.1:{port}"], listeners
    assert rt.port_open("127.0.0.1", port)
    for addr in filter(None, [_non_loopback_address(), "127.0.0.2"]):
        if addr == "127.0.0.2":
            continue  # 127/8 is all loopback; the bind address is checked above
        assert not rt.port_open(addr, port), f"AMI answered on {addr}"


def test_killing_the_session_leaves_no_asterisk(tmp_path: Path) -> None:
    """A process that started Asterisk dies by SIGKILL; its Asterisk goes with it."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
        from ivr import asterisk_runtime as rt
        from tests.asterisk_harness import ivr_settings, free_port
        s = ivr_settings(__import__("pathlib").Path({str(tmp_path)!r}), free_port(), free_port())
        inst = rt.ivr_instance(s)
        pid = inst.start(lambda: rt.port_open("127.0.0.1", s.ami_port), tie_to_parent=True)
        print(pid, flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    pid = int(proc.stdout.readline())
    os.kill(pid, 0)  # Asterisk is running
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().split()[2] == "Z":
                break  # gone, only its zombie waits for init
        time.sleep(0.1)
    else:
        pytest.fail(f"Asterisk {pid} survived its test session")
    # Its data-folder bind mount stays behind (a next start would reuse it); undo it here.
    for target in rt.mounts():
        if target.endswith(str(tmp_path.resolve())):
            subprocess.run(["umount", "-l", target], check=False)


async def test_fastagi_survives_a_broken_call(lines: PhoneLines) -> None:
    """A handler that raises ends its own call only; the next call is served."""
    async def broken(agi: AGIChannel) -> None:
        raise RuntimeError("boom")

    lines.route("absence", broken)
    failed_before = lines.fastagi.calls_failed
    first = lines.phone("09012340001")
    await first.call()
    await first.wait_end()
    assert lines.fastagi.calls_failed == failed_before + 1
    await asyncio.sleep(0.2)
