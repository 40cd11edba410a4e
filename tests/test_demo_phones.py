"""The demo rings its own phones: real Asterisk with the project's dialplans/demo.conf.

In `make run` (``renraku run --demo``, settings.demo_phones) there is no carrier: the dialer
originates campaign calls into [renraku-demo-out], which rings the registered softphone or,
with none registered, lets the built-in household answer, listen and press 1. The carrier
simulator of the shared phone lines must see none of these calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

import tests.test_broadcast_asterisk as bt
from ivr import asterisk_runtime as rt
from ivr.dialer import DEMO_CHANNEL, Dialer, DialerConfig, PanoramiskPort
from models import CallAttempt, Campaign, CampaignHousehold, Child, SurveyResponse
from models.db import create_engine, session_factory, transaction
from models.enums import AttemptStatus as S
from renraku.app import App
from renraku.clock import FakeClock
from renraku.commands.run import dialer_config
from renraku.demo import create_demo_data
from renraku.services import broadcast as bc
from renraku.settings import Settings, ensure_secret, load_settings
from tests.asterisk_harness import PhoneLines, free_port, rtp_range
from tests.db_fixtures import Database
from tests.prompts_fixtures import OFFLINE
from tests.test_softphone import SipPhone, _md5

pytestmark = pytest.mark.asterisk
TOKYO = ZoneInfo("Asia/Tokyo")
# A school morning in the demo's Tokyo schools, inside the calling window
MORNING = datetime(2026, 12, 1, 9, 0, tzinfo=TOKYO)


def test_only_the_demo_dials_its_own_phones() -> None:
    assert dialer_config(Settings()).channel == "PJSIP/{number}@carrier"
    assert dialer_config(Settings(demo_phones=True)).channel == DEMO_CHANNEL
    assert load_settings(None, env={"RENRAKU_DEMO_PHONES": "1"}).demo_phones
    # No call from the trunk or the softphone can wander into the demo's contexts: only the
    # demo's own dialplan names them.
    for plan in rt.DIALPLANS.glob("*.conf"):
        if plan.name != "demo.conf":
            assert "renraku-demo" not in plan.read_text(), plan.name


async def _demo_campaign(app: App, family: str) -> tuple[int, list[str]]:
    """The demo data, and a broadcast with a survey to the named family's elementary child;
    returns the campaign and the numbers it calls (digits only)."""
    now = app.clock.now()
    async with transaction(app.sessions) as s:
        await create_demo_data(s, now)
        child = await s.scalar(select(Child).where(Child.family_name == family)
                               .order_by(Child.id))
        assert child is not None
        survey = await bc.create_survey(s, child.school_id, "q", bt.QUESTION, now)
        camp = await bc.create_campaign(
            s, app.settings, school_id=child.school_id, title="遠足",
            target={"children": [child.id]}, now=now,
            message={"ja": "明日は遠足です"}, survey_id=survey.id)
        await bc.launch(s, app.settings, camp, now)
        cid = camp.id
    async with app.sessions() as s:
        numbers = list(await s.scalars(select(CampaignHousehold.phone_e164).where(
            CampaignHousehold.campaign_id == cid)))
    assert numbers
    return cid, [n.lstrip("+") for n in numbers]


def _demo_dialer(lines: PhoneLines, app: App) -> Dialer:
    demo = dialer_config(app.settings.replace(demo_phones=True))
    return Dialer(app, PanoramiskPort(lines.ivr_ami),
                  DialerConfig(channel=demo.channel, ring_timeout_s=20, answer_grace_s=1.0))


async def test_the_built_in_household_answers_the_broadcast_and_the_survey(
    lines: PhoneLines, sqlite_db: Database
) -> None:
    app = bt._app(lines, sqlite_db, clock=FakeClock(MORNING))
    bt._route(lines, app)
    # 山田's child: the mother's mobile (asked the survey) and the grandmother's landline
    cid, numbers = await _demo_campaign(app, "山田")
    assert len(numbers) == 2
    dialer = _demo_dialer(lines, app)
    stop = asyncio.Event()
    task = asyncio.ensure_future(dialer.run(stop))
    try:
        await bt._wait_done(app, cid, 120)
    finally:
        stop.set()
        await task
    async with app.sessions() as s:
        households = list(await s.scalars(select(CampaignHousehold).where(
            CampaignHousehold.campaign_id == cid)))
        camp = await s.get_one(Campaign, cid)
        answers = list(await s.scalars(select(SurveyResponse)))
        attempts = list(await s.scalars(select(CallAttempt)))
        tally = await bc.tally(s, camp.survey_id)
    assert [h.status for h in households] == [S.COMPLETED, S.COMPLETED]
    assert [a.status for a in attempts] == [S.COMPLETED, S.COMPLETED]
    # The primary guardian's household answered the survey with the household's key 1
    assert sum(h.survey for h in households) == 1
    assert {o.digit: o.count for o in tally[0].options} == {1: 1, 2: 0}
    assert len(answers) == 1
    # Nothing went out to the carrier
    for number in numbers:
        assert await lines.household_attempts(number) == 0


class Softphone(SipPhone):
    """A SIP phone registered as the demo's "softphone" account: answers the INVITE."""

    def _request(self, method: str, uri: str, cseq: int, call_id: str, auth: str = "",
                 extra: str = "") -> None:
        self.branch = "z9hG4bK" + uuid.uuid4().hex[:12]
        self._send(
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch={self.branch};rport\r\n"
            f"From: <sip:{self.user}@127.0.0.1>;tag={self.tag}\r\n"
            f"To: <sip:{self.user}@127.0.0.1>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\nContact: <sip:{self.user}@{self.host}:{self.port}>\r\n"
            f"Max-Forwards: 70\r\n{extra}{auth}Content-Length: 0\r\n\r\n")

    def _response(self, within: float) -> tuple[str, dict[str, str]]:
        """The next final response; requests on the way (a BYE, OPTIONS) get a 200 OK."""
        deadline = time.monotonic() + within
        while True:
            first, headers, _ = self._receive(max(0.1, deadline - time.monotonic()))
            if not first.startswith("SIP/2.0"):
                self._reply_ok(headers)
            elif not first.split()[1].startswith("1"):
                return first, headers

    def register(self, expires: int = 120) -> int:
        uri = f"sip:127.0.0.1:{self.ivr[1]}"
        call_id = uuid.uuid4().hex
        extra = f"Expires: {expires}\r\n"
        self._request("REGISTER", uri, 1, call_id, extra=extra)
        first, headers = self._response(5)
        code = int(first.split()[1])
        if code != 401:
            return code
        challenge = dict(re.findall(r'(\w+)="?([^",]+)"?', headers["www-authenticate"]))
        cnonce, nc = uuid.uuid4().hex[:16], "00000001"
        ha1 = _md5(f"{self.user}:{challenge['realm']}:{self.password}")
        response = _md5(f"{ha1}:{challenge['nonce']}:{nc}:{cnonce}:auth:"
                        f"{_md5(f'REGISTER:{uri}')}")
        opaque = f', opaque="{challenge["opaque"]}"' if "opaque" in challenge else ""
        auth = (f'Authorization: Digest username="{self.user}", realm="{challenge["realm"]}", '
                f'nonce="{challenge["nonce"]}", uri="{uri}", response="{response}", '
                f'algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"{opaque}\r\n')
        self._request("REGISTER", uri, 2, call_id, auth=auth, extra=extra)
        return int(self._response(5)[0].split()[1])

    def answer(self, within: float) -> dict[str, str]:
        """Wait for an INVITE and answer it (200 OK with our SDP); its headers."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            first, headers, _ = self._receive(max(0.1, deadline - time.monotonic()))
            if not first.startswith("INVITE"):
                continue
            sdp = (f"v=0\r\no=- 1 1 IN IP4 {self.host}\r\ns=-\r\nc=IN IP4 {self.host}\r\n"
                   f"t=0 0\r\nm=audio {self.port + 1} RTP/AVP 0 101\r\n"
                   "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
                   "a=sendrecv\r\n")
            self.dialog = {**headers, "to": headers["to"] + f";tag={self.tag}"}
            self._send(
                "SIP/2.0 200 OK\r\n" + "".join(
                    f"{name}: {self.dialog[name.lower()]}\r\n"
                    for name in ("Via", "From", "To", "Call-ID", "CSeq"))
                + f"Contact: <sip:{self.user}@{self.host}:{self.port}>\r\n"
                + f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")
            return headers
        raise TimeoutError("no INVITE")

    def hang_up(self) -> None:
        """BYE in the answered dialog: we are the callee, so From and To swap."""
        contact = re.search(r"<([^>]+)>", self.dialog["contact"])
        assert contact is not None
        self.branch = "z9hG4bK" + uuid.uuid4().hex[:12]
        self._send(
            f"BYE {contact.group(1)} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch={self.branch};rport\r\n"
            f"From: {self.dialog['to']}\r\nTo: {self.dialog['from']}\r\n"
            f"Call-ID: {self.dialog['call-id']}\r\nCSeq: 1 BYE\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n")


async def test_a_registered_softphone_rings_instead_of_the_household(
    lines: PhoneLines, sqlite_db: Database
) -> None:
    app = bt._app(lines, sqlite_db, clock=FakeClock(MORNING))
    bt._route(lines, app)
    password = ensure_secret(lines.settings, "softphone_password")
    phone = Softphone(lines.settings.sip_port, "softphone", password)
    before = len(lines.calls)
    dialer = _demo_dialer(lines, app)
    stop = asyncio.Event()
    task: asyncio.Future[None] | None = None
    try:
        assert await asyncio.to_thread(phone.register) == 200
        cid, numbers = await _demo_campaign(app, "王")
        assert len(numbers) == 1
        task = asyncio.ensure_future(dialer.run(stop))
        invite = await asyncio.to_thread(phone.answer, 30)
        assert invite["from"]  # the campaign call reached the softphone
        # The broadcast flow plays the message to the softphone's user...
        call = await lines.wait_for(lambda: next(iter(lines.calls[before:]), None), 20)
        await lines.wait_for(
            lambda: any("press_0_again" in p for p in call.agi.streamed), 30, key=id(call.agi))
        # ...who hangs up after hearing it
        await asyncio.to_thread(phone.hang_up)
        await bt._wait_done(app, cid, 60)
    finally:
        stop.set()
        if task is not None:
            await task
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.to_thread(phone.register, 0)  # unregister: later tests get the household
        phone.close()
    async with app.sessions() as s:
        attempts = list(await s.scalars(select(CallAttempt)))
        answers = list(await s.scalars(select(SurveyResponse)))
    assert [a.status for a in attempts] == [S.COMPLETED]  # the message was heard through
    assert answers == []  # the person pressed nothing; no household answered for them
    assert await lines.household_attempts(numbers[0]) == 0


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own copy of the file
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=rt.die_with_parent)


def _stop(proc: subprocess.Popen[bytes], data_dir: Path) -> None:
    """SIGTERM, as Ctrl-C: `renraku run` stops its Asterisk. Whatever is left is killed."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    pid_file = data_dir / "asterisk" / "ivr" / "run" / "renraku-asterisk.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text())
        # Only our own Asterisk (its -C names this data folder), never a reused pid
        if str(data_dir.resolve()).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)


async def test_make_run_demo_household_answers_a_broadcast(tmp_path: Path) -> None:
    """`renraku run --demo` as `make run` starts it, on the demo data: a teacher's broadcast
    with a survey rings the built-in household (no softphone registered), which answers."""
    ports = {"WEB_PORT": free_port(), "AMI_PORT": free_port(), "FASTAGI_PORT": free_port(),
             "SIP_PORT": free_port(socket.SOCK_DGRAM)}
    rtp_start, rtp_end = rtp_range()
    env = {**os.environ, "RENRAKU_DATA_DIR": str(tmp_path / "var"),
           "RENRAKU_RTP_START": str(rtp_start), "RENRAKU_RTP_END": str(rtp_end),
           "RENRAKU_TESTING": "1", "RENRAKU_FAKE_NOW": MORNING.isoformat(),
           # nothing answers at the trunk address: only the demo's phones can
           "RENRAKU_TRUNK_PEER": f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
           **{f"RENRAKU_{k}": str(v) for k, v in ports.items()},
           **{f"RENRAKU_{k.upper()}": v for k, v in OFFLINE.items()}}
    cli = [sys.executable, "-m", "renraku.cli"]
    for step in (["db", "upgrade"], ["demo-data"]):
        await asyncio.to_thread(subprocess.run, [*cli, *step], env=env, check=True,
                                capture_output=True)
    settings = load_settings(None, env=env)
    engine = create_engine(settings.db_url)
    sessions = session_factory(engine)
    async with transaction(sessions) as s:
        child = await s.scalar(select(Child).where(Child.family_name == "Smith"))
        assert child is not None
        survey = await bc.create_survey(s, child.school_id, "q", bt.QUESTION, MORNING)
        camp = await bc.create_campaign(
            s, settings, school_id=child.school_id, title="遠足", target={"children": [child.id]},
            now=MORNING, message={"ja": "明日は遠足です", "en": "The school trip is tomorrow."},
            survey_id=survey.id)
        await bc.launch(s, settings, camp, MORNING)
        cid = camp.id
    log_path = tmp_path / "run.log"
    proc = _start([*cli, "run", "--demo"], env, log_path)
    try:
        async with asyncio.timeout(180):
            while True:
                async with sessions() as s:
                    if (await bc.progress(s, cid)).status == "completed":
                        break
                assert proc.poll() is None, "renraku run stopped"
                await asyncio.sleep(1)
        async with sessions() as s:
            households = list(await s.scalars(select(CampaignHousehold).where(
                CampaignHousehold.campaign_id == cid)))
            tally = await bc.tally(s, survey.id)
    finally:
        await asyncio.to_thread(_stop, proc, tmp_path / "var")
        await engine.dispose()
        out = log_path.read_text()
    assert [h.status for h in households] == [S.COMPLETED], out[-3000:]
    assert {o.digit: o.count for o in tally[0].options} == {1: 1, 2: 0}
    assert "demo calls:" in out
