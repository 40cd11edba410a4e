"""For operators and orchestrators: ``/metrics`` (Prometheus) and ``/healthz``.

``/metrics`` answers only addresses in ``metrics_allow`` (loopback by default): call counts
and campaign progress are nobody else's business. ``/healthz`` answers anyone with 200
when this process reaches its database, else 503, so a load balancer or an orchestrator
takes a node without a database out of service.
"""

from __future__ import annotations

import asyncio
import ipaddress

from aiohttp import web
from sqlalchemy import text

from renraku import metrics
from webportal.keys import APP_KEY

routes = web.RouteTableDef()
HEALTH_TIMEOUT_S = 2.0


def allowed(request: web.Request, networks: str) -> bool:
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(n.strip(), strict=False)
               for n in networks.split(",") if n.strip())


@routes.get("/metrics")
async def prometheus(request: web.Request) -> web.Response:
    if not allowed(request, request.config_dict[APP_KEY].settings.metrics_allow):
        raise web.HTTPForbidden()
    body, content_type = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


@routes.get("/healthz")
async def health(request: web.Request) -> web.Response:
    app = request.config_dict[APP_KEY]
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S), app.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database is "unhealthy"
        return web.json_response({"status": "unhealthy", "database": type(exc).__name__},
                                 status=503)
    return web.json_response({"status": "ok", "database": "ok"})


def setup(web_app: web.Application) -> None:
    web_app.router.add_routes(routes)
    metrics.watch_pool(web_app[APP_KEY].engine)
