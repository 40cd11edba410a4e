"""``GET /sounds/<lang>/renraku/…``: the sounds a city's IVR nodes fetch (prompts.media).

Only the addresses in ``sounds_allow`` (the IVR nodes) get them: renders name children and
carry broadcast messages. Everything served is immutable (a version or a content hash).
"""

from __future__ import annotations

from aiohttp import web

from prompts import media
from webportal.keys import APP_KEY
from webportal.ops import allowed

routes = web.RouteTableDef()


@routes.get(media.ROUTE + "/{lang}/renraku/{rel:.+}")
async def sound(request: web.Request) -> web.StreamResponse:
    app = request.config_dict[APP_KEY]
    if not allowed(request, app.settings.sounds_allow):
        raise web.HTTPForbidden()
    path = await media.local_file(app.settings, app.sessions, request.match_info["lang"],
                                  request.match_info["rel"])
    if path is None:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": "audio/wav",
                                           "Cache-Control": media.CACHE_CONTROL})


def setup(web_app: web.Application) -> None:
    web_app.router.add_routes(routes)
