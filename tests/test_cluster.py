"""A city on a cluster, through real Kamailio and two real IVR Asterisk nodes: calls are
spread over both nodes, a node killed with SIGKILL stops getting calls within the probe
interval, and an app node dying hands its calls to the other app node."""

from __future__ import annotations

import asyncio
import logging
import time as clock
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ivr import absence_flow
from ivr.fastagi import AGIChannel
from renraku import call_logging, metrics
from renraku.app import App
from renraku.clock import FakeClock
from tests.absence_fakes import ToneVoice
from tests.cluster_harness import APP_HOSTS, PROBE_S, ClusterLines
from tests.db_fixtures import Database
from tests.test_absence_calls import QUICK_ABSENCE, THU, family, follow, jst, reports

pytestmark = pytest.mark.asterisk

TOKYO = ZoneInfo("Asia/Tokyo")
CALLS = 60
AT_ONCE = 12


@pytest.fixture
async def cluster(city: ClusterLines,
                  sqlite_db: Database) -> AsyncIterator[tuple[ClusterLines, App]]:
    app = App(city.settings, FakeClock(jst(THU, 7, 30)), sqlite_db.engine, sqlite_db.sessions)
    voice = ToneVoice(city.settings)

    async def handler(agi: AGIChannel) -> None:
        await absence_flow.handle(agi, app, voice)

    city.route("absence", handler)
    yield city, app
    for fastagi in city.apps:
        fastagi.routes.clear()


def node_of(agi: AGIChannel) -> str:
    """The IVR node that took the call: Asterisk's systemname prefixes its unique ids."""
    return agi.uniqueid.split("-", 1)[0]


async def call_and_report(city: ClusterLines, number: str) -> AGIChannel:
    phone = city.phone(number)
    await phone.call(within=20)
    await follow(phone, QUICK_ABSENCE)
    await phone.wait_end()
    return phone.agi


async def report_by_phone(city: ClusterLines, number: str) -> str:
    return node_of(await call_and_report(city, number))


async def test_calls_are_spread_over_both_nodes_and_every_report_is_recorded_once(
        cluster: tuple[ClusterLines, App]) -> None:
    city, app = cluster
    numbers = [f"0903000{i:04d}" for i in range(CALLS)]
    kids = {}
    for number in numbers:
        (kid,), _ = await family(app, number)
        kids[kid] = number
    gate = asyncio.Semaphore(AT_ONCE)
    calls_before = metrics.CALLS.labels("absence")._value.get()
    steps_before = _steps()

    async def one(number: str) -> str:
        async with gate:
            return await report_by_phone(city, number)

    nodes = await asyncio.gather(*(one(n) for n in numbers))
    share = {name: nodes.count(name) for name in set(nodes)}
    assert set(share) == {"ivr1", "ivr2"}, share
    assert min(share.values()) >= CALLS // 3, share  # round robin: about half each
    rows = await reports(app)
    assert sorted(r.child_id for r in rows) == sorted(kids)  # each child once
    assert all(r.channel == "phone" and r.status == "active" for r in rows)
    # What a Prometheus scrape of the app nodes shows of these calls.
    assert metrics.CALLS.labels("absence")._value.get() - calls_before == CALLS
    assert metrics.CALLS_IN_PROGRESS.labels("absence")._value.get() == 0
    assert _steps() - steps_before >= CALLS * 4  # four keys per call, each a timed step


def _steps() -> float:
    text = metrics.exposition()[0].decode()
    return next((s.value for f in text_string_to_metric_families(text) for s in f.samples
                if s.name == "renraku_step_seconds_count" and s.labels.get("flow") == "absence"),
                0.0)  # no step observed yet


async def test_a_killed_node_gets_no_new_calls_after_the_probe_interval(
        cluster: tuple[ClusterLines, App]) -> None:
    city, app = cluster
    numbers = [f"0903100{i:04d}" for i in range(8)]
    for number in numbers:
        await family(app, number)
    on_ivr2 = None
    for _ in range(4):  # round robin: one of the next calls lands on ivr2
        phone = city.phone(numbers[-1])
        await phone.call(within=20)
        if node_of(phone.agi) == "ivr2":
            on_ivr2 = phone
            break
        await phone.hang_up()
        await phone.wait_end()
    assert on_ivr2 is not None, "no call reached ivr2"
    killed_at = clock.monotonic()
    city.kill_node("ivr2")
    await on_ivr2.wait_end(within=10)  # a call in progress on the dead node ends with it
    await city.wait_nodes({"ivr2": False}, within=PROBE_S + 5)
    noticed = clock.monotonic() - killed_at
    try:
        nodes = [await report_by_phone(city, n) for n in numbers[:6]]
        assert nodes == ["ivr1"] * 6
        assert noticed < PROBE_S + 5
        assert len(await reports(app)) == 6  # each of the six once, none lost with ivr2
    finally:
        await city.restart_node("ivr2")


async def test_an_app_node_dying_mid_call_hands_the_call_to_the_other(
        cluster: tuple[ClusterLines, App]) -> None:
    city, app = cluster
    (kid,), _ = await family(app, "09032000001")
    phone = city.phone("09032000001")
    await phone.call(within=20)
    await phone.wait_prompt("absence.main_menu")
    # The app node this call's IVR node tries first (each node has its own) dies.
    i = city.first_app(node_of(phone.agi))
    first, second = city.apps[i], city.apps[1 - i]
    assert phone.record in city.calls
    started = len(city.calls)
    city.kill_app(first)
    # The menu's Read runs on in Asterisk until the caller's key ends it; then the
    # dialplan takes the call to app node B, which starts the flow again.
    await phone.press("1")
    again = await city.wait_for(lambda: city.new_call_from("09032000001", started), within=5)
    assert again.agi is not phone.agi and node_of(again.agi) == node_of(phone.agi)
    phone.record = again
    await follow(phone, QUICK_ABSENCE)
    await phone.wait_end()
    [row] = await reports(app)
    assert row.child_id == kid
    # New calls skip the dead app node at once (connection refused).
    (kid2,), _ = await family(app, "09032000002")
    await report_by_phone(city, "09032000002")
    assert {r.child_id for r in await reports(app)} == {kid, kid2}
    assert second.calls_started >= 2


async def test_one_calls_unique_id_is_in_the_nodes_log_and_the_app_nodes_log(
        cluster: tuple[ClusterLines, App], caplog: pytest.LogCaptureFixture) -> None:
    city, app = cluster
    await family(app, "09033000001")
    caplog.set_level(logging.INFO)
    agi = await call_and_report(city, "09033000001")
    name = node_of(agi)
    uniqueid, node = agi.uniqueid, city.nodes[name]
    # The app node's side: its log lines of the call carry the id (the FastAGI server's
    # "call from …" and whatever the flow logs), and only that call's lines do.
    mine = [r for r in caplog.records if getattr(r, "call_id", "") == uniqueid]
    assert any(r.name == "ivr.fastagi" and "absence" in r.getMessage() for r in mine)
    line = logging.Formatter(call_logging.FORMAT).format(mine[0])  # as `renraku` writes it
    assert f"ivr.fastagi [{uniqueid}]: call from " in line

    # The IVR node's side: the dialplan logs the same id as it hands the call to FastAGI.
    async def logged() -> list[str]:
        text = await asyncio.to_thread(node.log_file.read_text, errors="replace")
        return [ln for ln in text.splitlines() if f"renraku call {uniqueid}: absence" in ln]

    for _ in range(50):  # Asterisk's logger thread writes a moment later
        if found := await logged():
            break
        await asyncio.sleep(0.1)
    assert found, f"{uniqueid} not in {node.log_file}"
    assert APP_HOSTS[city.first_app(name)] in found[0]  # and says which app node took it

