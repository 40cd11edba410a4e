"""Operations: /metrics (Prometheus text) and /healthz on the portal; what the FastAGI
server, the dialer and the absence service put into the metrics."""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from ivr import call_metrics
from ivr.dialer import Dialer, DialerConfig
from ivr.fastagi import AGIChannel, FastAGIServer
from renraku import metrics
from renraku.app import App
from renraku.settings import Settings
from tests.db_fixtures import Database
from tests.test_dialer_fake_ami import SCRIPTS, FakeAmi, _app, _campaign, _run_until_done
from tests.web_fixtures import Portal


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


async def test_metrics_are_served_to_loopback_and_refused_to_others(portal: Portal) -> None:
    status, text = await get(f"{portal.base_url}/metrics")
    assert status == 200
    assert sample(text, "renraku_db_connections_checked_out") is not None
    portal.app.settings = portal.app.settings.replace(metrics_allow="192.0.2.0/24")
    status, _ = await get(f"{portal.base_url}/metrics")
    assert status == 403


async def test_health_says_whether_the_database_answers(portal: Portal) -> None:
    status, body = await get(f"{portal.base_url}/healthz")
    assert (status, body) == (200, '{"status": "ok", "database": "ok"}')
    from models.db import create_engine

    good = portal.app.engine
    portal.app.engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    try:
        status, body = await get(f"{portal.base_url}/healthz")
    finally:
        await portal.app.engine.dispose()
        portal.app.engine = good
    assert status == 503 and '"unhealthy"' in body


async def test_fastagi_counts_calls_and_times_the_step_after_a_key() -> None:
    server = FastAGIServer()
    call_metrics.observe(server)

    async def flow(agi: AGIChannel) -> None:
        await agi.stream_file("renraku/menu", "12")
        await asyncio.sleep(0.03)  # the app's share of the step
        await agi.stream_file("renraku/next")

    server.route("metered", flow)
    port = await server.start("127.0.0.1", 0)
    before = metrics.STEP_SECONDS.labels("metered")._sum.get()
    calls_before = metrics.CALLS.labels("metered")._value.get()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"agi_network: yes\nagi_network_script: metered\nagi_uniqueid: n1-1.1\n\n")
    await reader.readline()  # STREAM FILE renraku/menu
    assert metrics.CALLS_IN_PROGRESS.labels("metered")._value.get() == 1
    writer.write(b"200 result=49 endpos=100\n")  # the caller pressed 1
    await reader.readline()  # STREAM FILE renraku/next
    writer.write(b"200 result=0 endpos=100\n")
    await reader.readline()  # SET VARIABLE RENRAKU_AGI_DONE
    writer.write(b"200 result=1\n")
    writer.close()
    await server.stop(grace_s=2)
    assert metrics.CALLS.labels("metered")._value.get() == calls_before + 1
    assert metrics.CALLS_IN_PROGRESS.labels("metered")._value.get() == 0
    step = metrics.STEP_SECONDS.labels("metered")._sum.get() - before
    assert 0.025 < step < 1.0  # one step, the 30 ms the flow took after the key


async def test_dialer_reports_channels_cap_and_campaign_progress(sqlite_db: Database) -> None:
    app: App = _app(sqlite_db)
    cid = await _campaign(app)
    seen: list[float] = []
    ami = FakeAmi(app, SCRIPTS)
    dialer = Dialer(app, ami, DialerConfig(answer_grace_s=0.1))
    original = dialer.occupied

    def occupied() -> int:
        seen.append(metrics.DIALER_CHANNELS._value.get())
        return original()

    dialer.occupied = occupied  # type: ignore[method-assign]
    await _run_until_done(dialer, app, cid)
    assert metrics.DIALER_CAP._value.get() == app.settings.dialer_max_channels
    assert max(seen) >= 1 and max(seen) <= app.settings.dialer_max_channels
    text = metrics.exposition()[0].decode()
    assert sample(text, "renraku_campaign_households", campaign=str(cid), state="all") == \
        len(SCRIPTS)


def test_settings_default_to_loopback_only() -> None:
    assert Settings().metrics_allow == "127.0.0.0/8,::1/128"
