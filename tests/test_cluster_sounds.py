"""Sounds in a city, through real Kamailio and two real IVR Asterisk nodes: a recording
uploaded through the portal of app node A plays in a call answered by IVR node B.

The app nodes share nothing but PostgreSQL: each has its own data folder. The call's flow
runs on app node B (A takes no calls here), which has the new version only in the
database; node B fetches it by URL from app node B (res_http_media_cache) and plays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import undefer

from ivr import admin_record_flow
from ivr import asterisk_runtime as rt
from ivr.fastagi import AGIChannel
from ivr.kamailio_runtime import kamailio_instance
from models import Prompt
from models.db import transaction
from prompts import media, store
from prompts.catalog import catalog
from prompts.voice import PromptVoice
from renraku.app import App
from renraku.clock import FakeClock
from renraku.commands.asterisk import sync_sounds
from renraku.services import staff as staff_svc
from renraku.settings import ensure_secret
from tests.absence_fakes import ToneVoice
from tests.asterisk_harness import _STARTED, free_port, rerecord_by_phone
from tests.cluster_harness import APP_HOSTS, ClusterLines
from tests.db_fixtures import Databases
from tests.factories import make_school
from tests.staff_fixtures import StaffPortal
from tests.web_fixtures import PORTAL_NOW
from webportal.app import create_app

pytestmark = pytest.mark.asterisk

KEY = "absence.goodbye"


@dataclass
class AppNode:
    app: App
    portal: StaffPortal
    voice: PromptVoice
    played: dict[str, tuple[str, str]]  # unique id → (sound name, STREAM FILE's reply)


@pytest.fixture
async def app_nodes(city: ClusterLines, databases: Databases,
                    tmp_path: Path) -> AsyncIterator[list[AppNode]]:
    db = await databases.get("postgresql")
    nodes = []
    for i, host in enumerate(APP_HOSTS):
        port = free_port()
        settings = city.settings.replace(  # its own disk; the nodes' AMI/ARI secret
            data_dir=tmp_path / f"app{i}", sounds_url=f"http://{host}:{port}/sounds",
            ami_secret=ensure_secret(city.settings, "ami_secret"))
        app = App(settings, FakeClock(PORTAL_NOW), db.engine, db.sessions)
        node = AppNode(app, StaffPortal(app, create_app(app), host=host, port=port),
                       PromptVoice(settings, db.sessions), {})
        await node.portal.base_url()  # listening on its own address
        nodes.append(node)
    yield nodes
    for fastagi in city.apps:
        fastagi.routes.clear()
    for node in nodes:
        await node.portal.close()


async def play_on(city: ClusterLines, b: AppNode, key: str, node: str, number: str,
                  tries: int) -> tuple[str, int]:
    """Calls from ``number`` until one lands on IVR ``node`` (Kamailio's round robin), each
    running app node B's one-prompt absence line: what that call was told to play, and
    where STREAM FILE ended (in samples; the whole sound when it played to its end)."""
    async def flow(agi: AGIChannel) -> None:
        name = await b.voice.phrase(key, "ja")
        await agi.stream_file(name)
        b.played[agi.uniqueid] = (name, agi.log[-1][2])
        await agi.hangup()

    city.apps[1].route("absence", flow)
    for _ in range(tries):
        phone = city.phone(number)
        await phone.call(within=20)
        await phone.wait_end()
        if phone.agi.uniqueid.startswith(f"{node}-"):
            name, reply = b.played[phone.agi.uniqueid]
            assert reply.startswith("200 result=0 endpos="), reply
            return name, int(reply.rsplit("=", 1)[1])
    raise AssertionError(f"no call on {node} in {tries} tries")


def tone(path: Path, seconds: str) -> bytes:
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(path), "synth",
                    seconds, "sine", "660", "vol", "0.5"], check=True)
    return path.read_bytes()


async def test_a_recording_uploaded_on_app_node_a_plays_in_a_call_on_ivr_node_b(
        city: ClusterLines, app_nodes: list[AppNode], tmp_path: Path) -> None:
    a, b = app_nodes
    async with transaction(a.app.sessions) as s:
        school = await make_school(s, "録音の学校")
        await staff_svc.create_staff(s, school.id, name="校長", email="city@x.jp", role="admin",
                                     password="admin-pass-12", class_ids=[])
    admin = await a.portal.client_as_staff("city@x.jp", "admin-pass-12")
    form = aiohttp.FormData()
    form.add_field("csrf_token", admin.csrf_token)  # type: ignore[attr-defined]
    form.add_field("recording", tone(tmp_path / "new.wav", "1.5"), filename="new.wav",
                   content_type="audio/wav")
    r = await admin.post(f"/staff/prompts/ja/{KEY}/upload", data=form)
    assert r.status == 200, (await r.text())[:300]
    async with b.app.sessions() as s:
        new = await s.scalar(select(Prompt).options(undefer(Prompt.audio)).where(
            Prompt.key == KEY, Prompt.language == "ja", Prompt.active))
    assert new is not None and new.source == "recorded" and new.audio
    on_b = b.app.settings.sounds_dir / new.audio_path
    assert not on_b.exists()  # app node B's disk has never seen it

    # App node A has no flow here: the call goes on to app node B.
    name, endpos = await play_on(city, b, KEY, "ivr2", "09034000001", tries=4)
    assert name == media.version_url(b.app.settings, "ja", KEY, new.version)
    assert name.startswith(f"http://{APP_HOSTS[1]}:")
    assert abs(endpos - new.duration_ms * 8) <= 160  # played to its end
    # What ivr2 played is the uploaded recording, byte for byte: its media cache's copy.
    ivr2 = city.nodes["ivr2"]
    shown = ivr2.rx(f"media cache show {name}") or ""
    fields = dict(re.findall(r"^\s*([\w-]+): (\S+)", shown, re.M))
    cached = Path(fields["Path"] + fields["ext"])
    assert "max-age=31536000" in shown  # kept a year: a version never changes
    assert ivr2.host_path(cached).read_bytes() == new.audio
    assert on_b.read_bytes() == new.audio  # app node B wrote it from the database
    assert name not in (city.nodes["ivr1"].rx("media cache show all") or "")


async def test_a_recording_made_on_the_admin_line_goes_from_the_node_to_every_node(
        city: ClusterLines, app_nodes: list[AppNode]) -> None:
    """The admin records on whichever IVR node took the call; app node B, which shares no
    disk with it, fetches the recording through the node's ARI, stores it and deletes it
    there; the next call on the other node plays it by URL."""
    _, b = app_nodes
    admin_phone, key = "09090000002", "absence.welcome"
    async with transaction(b.app.sessions) as s:
        school = await make_school(s, "電話録音の学校")
        admin = await staff_svc.create_staff(s, school.id, name="校長", email="rec@x.jp",
                                             role="admin", password=None, class_ids=[])
        await staff_svc.set_phone_and_pin(s, admin, admin_phone, "1234")
    city.apps[1].route("admin-record", admin_record_flow.handler(
        b.app, ToneVoice(city.settings)))  # the cues: tones in the nodes' own folder
    phone = city.phone(admin_phone, dialled="8000")
    await phone.call(within=20)
    await rerecord_by_phone(phone, catalog()[key].number)
    await phone.hang_up()
    await phone.wait_end()
    recorded_on = phone.agi.uniqueid.split("-")[0]
    async with b.app.sessions() as s:
        new = await s.scalar(select(Prompt).options(undefer(Prompt.audio)).where(
            Prompt.key == key, Prompt.language == "ja", Prompt.active))
    assert new is not None and new.source == "recorded" and new.audio
    assert 3000 <= new.duration_ms <= 4500  # the caller's four seconds, edges trimmed
    spool = city.node_settings[recorded_on].data_dir / "asterisk" / recorded_on / "spool"
    assert list((spool / "recording").iterdir()) == []  # fetched, then deleted on the node
    assert not (b.app.settings.data_dir / "recordings").exists()  # no shared folder used

    other = "ivr1" if recorded_on == "ivr2" else "ivr2"

    name, endpos = await play_on(city, b, key, other, "09034000002", tries=4)
    assert name == media.version_url(b.app.settings, "ja", key, new.version)
    assert abs(endpos - new.duration_ms * 8) <= 160  # all of it
    # The nodes' media cache, HTTP server and ARI came up without a configuration error.
    assert {n: node.errors() for n, node in city.nodes.items()} == {"ivr1": [], "ivr2": []}


async def test_a_node_started_later_has_every_sound_before_its_first_call(
        city: ClusterLines, app_nodes: list[AppNode], tmp_path: Path) -> None:
    """A third IVR node, a machine of its own (empty data folder), joins after the
    recordings were made: its start writes the prompts it plays alone (the voicemail
    fallback's) into its folder, and its first call plays a new recording by URL."""
    a, b = app_nodes
    fallback = await store.add_recording(a.app.sessions, a.app.settings, "voicemail.intro",
                                         "ja", tone_file(tmp_path / "vm.wav", "1.2"))
    await store.add_recording(a.app.sessions, a.app.settings, KEY, "ja",
                              tone_file(tmp_path / "new.wav", "0.9"))
    host = "127.0.0.15"
    settings = city.node_settings["ivr1"].replace(
        data_dir=tmp_path / "ivr3", sip_host=host, sip_port=free_port(socket.SOCK_DGRAM),
        ami_host=host, ami_port=free_port(), ari_port=free_port(),
        database_url=a.app.engine.url.render_as_string(hide_password=False))
    assert await sync_sounds(settings) == (2, 0)  # as `renraku asterisk sync-sounds`
    own = settings.sounds_dir / "ja" / "renraku" / "voicemail.intro.wav"
    assert own.read_bytes() == (a.app.settings.sounds_dir / fallback.audio_path).read_bytes()
    node = rt.ivr_instance(settings, name="ivr3")
    _STARTED.append(node)
    nodes = city.town.plan.kamailio_settings(city.settings).kamailio_nodes
    try:
        node.start(lambda: rt.port_open(host, settings.ami_port), tie_to_parent=True)
        kamailio_instance(city.settings.replace(  # the dispatcher's list gets the node
            kamailio_nodes=f"{nodes},{host}:{settings.sip_port}",
            kamailio_listen=city.town.plan.kamailio_listen,
            kamailio_carrier=f"127.0.0.1:{city.town.plan.carrier_sip}"))
        assert city.kamailio is not None
        city.kamailio.rpc("dispatcher.reload")
        uri = f"sip:{host}:{settings.sip_port}"
        for _ in range(100):
            if city.kamailio.nodes().get(uri):
                break
            await asyncio.sleep(0.2)
        assert city.kamailio.nodes().get(uri), "ivr3 never joined the dispatcher"

        name, endpos = await play_on(city, b, KEY, "ivr3", "09034000003", tries=6)
        async with b.app.sessions() as s:
            new = await s.scalar(select(Prompt).options(undefer(Prompt.audio)).where(
                Prompt.key == KEY, Prompt.language == "ja", Prompt.active))
        assert new is not None and name == media.version_url(b.app.settings, "ja", KEY,
                                                             new.version)
        assert abs(endpos - new.duration_ms * 8) <= 160
        assert node.errors() == []
    finally:
        kamailio_instance(city.settings.replace(
            kamailio_nodes=nodes, kamailio_listen=city.town.plan.kamailio_listen,
            kamailio_carrier=f"127.0.0.1:{city.town.plan.carrier_sip}"))
        if city.kamailio is not None:
            city.kamailio.rpc("dispatcher.reload", check=False)
        await asyncio.to_thread(node.stop)
        with contextlib.suppress(ValueError):
            _STARTED.remove(node)


def tone_file(path: Path, seconds: str) -> Path:
    tone(path, seconds)
    return path
