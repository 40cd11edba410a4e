"""Real-call test harness: the IVR Asterisk, a carrier simulator, virtual phones, households.

Two Asterisk 22 processes talk PJSIP/UDP with RFC 4733 DTMF on 127.0.0.1:
- the **IVR** runs the project's own configuration (asterisk-config/, dialplans/) and
  sends its calls to this process's FastAGI server;
- the **carrier** simulator (ivr.city, asterisk-config/carrier-simulator/) places inbound
  calls from any number (AMI Originate with a CallerID) and answers the IVR's campaign
  calls as scripted households.

Usage (fixtures ``phone_lines`` session-scoped, ``lines`` per test)::

    async def test_call(lines):
        lines.route("absence", my_handler)          # FastAGI handler for /absence
        phone = lines.phone("09012345678")
        await phone.call()
        await phone.wait_prompt("renraku/welcome")  # a STREAM FILE naming this was sent
        await phone.press("12")
        await phone.hang_up()
        await phone.wait_end()
        assert "renraku/welcome" in phone.played

    await lines.household("09011112222", "busy|answer:1:1")  # campaign call behaviour
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import os
import shutil
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ivr import asterisk_runtime as rt
from ivr import city
from ivr.ami import AMIClient
from ivr.city import free_port
from ivr.fastagi import AGIChannel, FastAGIServer
from renraku.settings import Settings, load_settings

_port_counter = itertools.count(0)


def rtp_range() -> tuple[int, int]:
    # Each pair of instances in a pytest process gets its own RTP ports, away from others.
    base = 20000 + (os.getpid() % 200) * 100 + next(_port_counter) * 40
    return base, base + 38


_STARTED: list[rt.Instance] = []


def _cleanup() -> None:
    for inst in reversed(_STARTED):
        with contextlib.suppress(Exception):
            inst.stop(timeout_s=5)
    _STARTED.clear()


def _on_signal(signum: int, _frame: Any) -> None:
    _cleanup()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _guard() -> None:
    """Stop every Asterisk we started when pytest exits, however it exits."""
    atexit.register(_cleanup)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        with contextlib.suppress(ValueError):
            signal.signal(sig, _on_signal)


def ivr_settings(data_dir: Path, carrier_sip: int, fastagi_port: int, **extra: Any) -> Settings:
    rtp_start, rtp_end = rtp_range()
    env = {
        "RENRAKU_DATA_DIR": str(data_dir), "RENRAKU_SIP_PORT": str(free_port(socket.SOCK_DGRAM)),
        "RENRAKU_AMI_PORT": str(free_port()), "RENRAKU_FASTAGI_PORT": str(fastagi_port),
        "RENRAKU_TRUNK_PEER": f"127.0.0.1:{carrier_sip}", "RENRAKU_RTP_START": str(rtp_start),
        "RENRAKU_RTP_END": str(rtp_end), "RENRAKU_TESTING": "1",
        "RENRAKU_ASTERISK_ROOT": os.environ.get(
            "RENRAKU_ASTERISK_ROOT", str(Path.home() / ".cache" / "renraku" / "asterisk-root")),
        **{f"RENRAKU_{k.upper()}": str(v) for k, v in extra.items()},
    }
    return load_settings(None, env=env)


def carrier_instance(data_dir: Path, root: Path | None, sip_port: int, ami_port: int,
                     ivr_sip_port: int, secret: str, ivr_host: str = "127.0.0.1") -> rt.Instance:
    """The carrier simulator (ivr.city) with this session's RTP ports."""
    return city.carrier_instance(data_dir, root, sip_port, ami_port, ivr_sip_port, secret,
                                 rtp_range(), ivr_host=ivr_host)


@dataclass
class CallRecord:
    agi: AGIChannel
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class PhoneLines:
    """Both Asterisks, the FastAGI server and AMI clients, shared by a test session."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.fastagi = FastAGIServer()
        self.calls: list[CallRecord] = []
        self._by_caller: dict[str, list[tuple[int, CallRecord]]] = {}  # last 9 digits
        # Waiters by the call they watch (None: anything). A change re-checks only the
        # waiters it can concern, at once and without a task: with 200 phones in the
        # benchmarks, waking every waiter on every AGI command starved the event loop.
        self._waiters: dict[object, set[tuple[Callable[[], Any], asyncio.Future[Any]]]] = {}
        self.fastagi.listeners.append(self._on_agi)
        self.ivr_ami_events: list[dict[str, str]] = []

    def _on_agi(self, kind: str, agi: AGIChannel, _detail: str) -> None:
        if kind == "start":
            record = CallRecord(agi)
            tail = agi.caller.lstrip("+")[-9:]
            self._by_caller.setdefault(tail, []).append((len(self.calls), record))
            self.calls.append(record)
        elif kind == "end":
            for rec in self.calls:
                if rec.agi is agi:
                    rec.ended.set()
        self._changed(id(agi))

    def _changed(self, key: object = None) -> None:
        for k in {key, None}:
            for entry in list(self._waiters.get(k, ())):
                predicate, future = entry
                if future.done():
                    continue
                try:
                    result = predicate()
                except Exception as exc:  # the waiter sees the predicate's error
                    future.set_exception(exc)
                    continue
                if result:
                    future.set_result(result)

    async def wait_for(self, predicate: Callable[[], Any], within: float = 15.0,
                       key: object = None) -> Any:
        """Until ``predicate()`` is true (returns it); re-checked when a call changes.
        ``key``: id() of the AGIChannel the predicate looks at, so other calls' commands skip it."""
        if result := predicate():
            return result
        entry = (predicate, asyncio.get_running_loop().create_future())
        self._waiters.setdefault(key, set()).add(entry)
        try:
            return await asyncio.wait_for(entry[1], within)
        finally:
            self._waiters[key].discard(entry)

    def new_call_from(self, number: str, since: int) -> CallRecord | None:
        """The first call that reached FastAGI from ``number`` at index ``since`` or later."""
        return next((rec for i, rec in self._by_caller.get(number[-9:], ()) if i >= since), None)

    async def start(self) -> None:
        fastagi_port = await self.fastagi.start("127.0.0.1", free_port())
        carrier_sip = free_port(socket.SOCK_DGRAM)
        self.settings = ivr_settings(self.base / "ivr", carrier_sip, fastagi_port)
        self.ivr = rt.ivr_instance(self.settings)
        _STARTED.append(self.ivr)
        # Started from the main thread so they die with this process, even on SIGKILL.
        self.ivr.start(lambda: rt.port_open("127.0.0.1", self.settings.ami_port),
                       tie_to_parent=True)
        self.carrier_secret = uuid.uuid4().hex
        self.carrier_ami_port = free_port()
        self.carrier = carrier_instance(self.base / "carrier", self.ivr.root, carrier_sip,
                                        self.carrier_ami_port, self.settings.sip_port,
                                        self.carrier_secret)
        _STARTED.append(self.carrier)
        self.carrier.start(lambda: rt.port_open("127.0.0.1", self.carrier_ami_port),
                           tie_to_parent=True)
        from renraku.settings import ensure_secret

        self.ivr_ami = await AMIClient("127.0.0.1", self.settings.ami_port, self.settings.ami_user,
                                       ensure_secret(self.settings, "ami_secret")).start()
        self.ivr_ami.register_event("*", lambda _m, e: self.ivr_ami_events.append(dict(e)))
        self.carrier_ami = await AMIClient("127.0.0.1", self.carrier_ami_port, "carrier",
                                           self.carrier_secret).start()
        self.carrier_channels: dict[str, str] = {}  # our ChannelId → channel name
        self.carrier_ami.register_event("Newchannel", self._on_carrier_channel)

    def _on_carrier_channel(self, _manager: Any, event: Any) -> None:
        self.carrier_channels[event.get("Uniqueid", "")] = event.get("Channel", "")
        self._changed()

    async def stop(self) -> None:
        for client in (getattr(self, "ivr_ami", None), getattr(self, "carrier_ami", None)):
            if client is not None:
                client.close()
        await self.fastagi.stop(grace_s=2)
        for inst in (getattr(self, "carrier", None), getattr(self, "ivr", None)):
            if inst is not None:
                await asyncio.to_thread(inst.stop)
                with contextlib.suppress(ValueError):
                    _STARTED.remove(inst)

    def route(self, path: str, handler: Callable[[AGIChannel], Awaitable[object]]) -> None:
        self.fastagi.route(path, handler)

    def phone(self, number: str, dialled: str = "0120000000") -> VirtualPhone:
        return VirtualPhone(self, number, dialled)

    async def household(self, number: str, plan: str) -> None:
        """Script how the carrier answers campaign calls to ``number`` (see extensions.conf)."""
        await self.carrier_ami.send_action({"Action": "DBPut", "Family": "household",
                                            "Key": number, "Val": plan})
        await self.carrier_ami.send_action({"Action": "DBDel", "Family": "attempts",
                                            "Key": number})

    async def household_attempts(self, number: str) -> int:
        reply = await self.carrier_ami.send_action({"Action": "DBGet", "Family": "attempts",
                                                    "Key": number})
        events = reply if isinstance(reply, list) else [reply]
        for ev in events:
            if ev.get("Val"):
                return int(ev.get("Val"))
        return 0

    async def ivr_channels(self) -> int:
        """Channels up in the IVR Asterisk now (CoreShowChannels)."""
        reply = await self.ivr_ami.send_action({"Action": "CoreShowChannels"})
        events = reply if isinstance(reply, list) else [reply]
        return sum(1 for ev in events if ev.get("Event") == "CoreShowChannel")


class VirtualPhone:
    """A caller on the carrier side: dials the IVR from ``number``, presses keys, hangs up."""

    context = "caller"  # the carrier's dialplan for the caller's side (ivr.city)

    def __init__(self, lines: PhoneLines, number: str, dialled: str) -> None:
        self.lines = lines
        self.number = number
        self.dialled = dialled
        self.id = uuid.uuid4().hex[:20]
        self.record: CallRecord | None = None

    async def call(self, within: float = 15.0, withheld: bool = False) -> CallRecord:
        """Place the call and wait until the IVR's FastAGI server has it."""
        before = len(self.lines.calls)
        await self._originate(withheld)
        if withheld:
            self.record = await self.lines.wait_for(
                lambda: next(iter(self.lines.calls[before:]), None), within)
        else:
            self.record = await self.lines.wait_for(
                lambda: self.lines.new_call_from(self.number, before), within)
        await self.lines.wait_for(lambda: self.lines.carrier_channels.get(self.id), within)
        return self.record

    async def dial(self, within: float = 15.0) -> None:
        """Place the call and wait only for the carrier's side of it (for calls that may
        never reach FastAGI: the app down, the voicemail fallback)."""
        await self._originate(False)
        await self.lines.wait_for(lambda: self.lines.carrier_channels.get(self.id), within)

    async def _originate(self, withheld: bool) -> None:
        action = {
            "Action": "Originate", "Channel": f"PJSIP/{self.dialled}@ivr",
            "Context": self.context, "Exten": "s", "Priority": "1", "Async": "true",
            "ChannelId": self.id, "Variable": f"PHONE_ID={self.id}",
            "CallerID": "" if withheld else f'"{self.number}" <{self.number}>',
        }
        if withheld:
            action["Variable"] = [action["Variable"], "CALLERID(num-pres)=prohib"]
        await self.lines.carrier_ami.send_action(action)

    @property
    def agi(self) -> AGIChannel:
        assert self.record is not None, "call() first"
        return self.record.agi

    @property
    def played(self) -> list[str]:
        return self.agi.streamed

    @property
    def channel(self) -> str:
        return self.lines.carrier_channels[self.id]

    async def wait_prompt(self, fragment: str, within: float = 15.0, after: int = 0) -> int:
        """Wait until a played name contains ``fragment`` (searching from index ``after``)."""
        def found() -> int | None:
            names = self.played
            for i in range(after, len(names)):
                if fragment in names[i]:
                    return i + 1
            return None

        return await self.lines.wait_for(found, within, key=id(self.agi))

    async def press(self, digits: str, gap: float = 0.3) -> None:
        for digit in digits:
            await self.lines.carrier_ami.send_action({
                "Action": "PlayDTMF", "Channel": self.channel, "Digit": digit, "Duration": "150",
            })
            await asyncio.sleep(gap)

    async def play(self, sound: str = "greeting") -> None:
        """Make the caller's side play a sound (hello 0.5 s, greeting 4 s) into the call."""
        await self.lines.carrier_ami.send_action({"Action": "DBPut", "Family": "play",
                                                  "Key": self.id, "Val": sound})

    async def hang_up(self) -> None:
        await self.lines.carrier_ami.send_action({"Action": "Hangup", "Channel": self.channel})

    async def wait_end(self, within: float = 20.0) -> None:
        assert self.record is not None
        await asyncio.wait_for(self.record.ended.wait(), within)


async def rerecord_by_phone(phone: VirtualPhone, number: int) -> int:
    """On the admin line (8000), from the PIN prompt to "saved": prompt ``number`` (Japanese)
    re-recorded with four seconds of the caller's "voice" (PIN 1234). Returns the position
    of "saved" among the prompts played, for waiting on what comes after it."""
    seen = await phone.wait_prompt("admin.enter_pin")
    await phone.press("1234#")
    seen = await phone.wait_prompt("admin.choose_language", after=seen)
    await phone.press("1")
    seen = await phone.wait_prompt("admin.enter_number", after=seen)
    await phone.press(f"{number}#")
    seen = await phone.wait_prompt("admin.prompt_menu", after=seen)
    await phone.press("1")
    await phone.lines.wait_for(
        lambda: any(c.startswith("RECORD FILE") for _t, c, _r in phone.agi.log))
    await phone.play("greeting")  # four seconds of "voice" from the caller
    await asyncio.sleep(4.5)
    await phone.press("#")
    seen = await phone.wait_prompt("admin.review_keys", after=seen)
    await phone.press("1")
    return await phone.wait_prompt("admin.saved", after=seen)


@pytest.fixture(scope="session")
async def phone_lines(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PhoneLines]:
    """The running IVR + carrier pair; tests share it and must use their own numbers."""
    if shutil.which("chroot") is None and rt.system_asterisk() is None:
        pytest.fail("no chroot and no system Asterisk")
    _guard()
    lines = PhoneLines(tmp_path_factory.mktemp("phone-lines"))
    try:
        await lines.start()
        yield lines
    finally:
        await lines.stop()


@pytest.fixture
async def lines(phone_lines: PhoneLines) -> AsyncIterator[PhoneLines]:
    """The shared lines with a clean routing table for this test."""
    phone_lines.fastagi.routes.clear()
    yield phone_lines
    phone_lines.fastagi.routes.clear()
