"""The FastAGI server with every call flow routed: one place for `renraku run`, tests, benches."""

from __future__ import annotations

from ivr import absence_flow, admin_record_flow, broadcast_flow, call_metrics, followup_flow
from ivr.fastagi import AGIChannel, FastAGIServer
from renraku.app import App


def build_server(app: App) -> FastAGIServer:
    voice = absence_flow.make_voice(app.settings)
    server = FastAGIServer(app.settings.fastagi_allowed)
    call_metrics.observe(server)

    async def absence(agi: AGIChannel) -> None:
        await absence_flow.handle(agi, app, voice)

    server.route("absence", absence)
    server.route("broadcast", broadcast_flow.handler(app, voice))
    server.route("followup", followup_flow.handler(app, voice))
    server.route("admin-record", admin_record_flow.handler(app, voice))
    return server
