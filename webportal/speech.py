"""The names the absence line will say, rendered when a family joins, not during a call.

A child's name phrases ("Hanako", "for Hanako press 1" in each language the family and
school use) come from TTS on first use; rendered in the middle of a call, the caller waits
in silence for them. Registration and proxy registration call :func:`render_family_names`,
which renders the guardian's children (the sibling menu keys change too) in the background:
the page answers at once, and a failed render only means the call renders it later. The
school settings page does the same for the welcome that names the school.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from aiohttp import web
from sqlalchemy import select

from models import Child, Guardianship, School
from prompts.dynamic import prerender_names, prerender_school
from renraku.app import App
from webportal.keys import APP_KEY

log = logging.getLogger(__name__)
TASKS = web.AppKey("speech_tasks", set)


async def family_names(app: App, guardian_id: int) -> int:
    """Render every phrase with a name of this guardian's children; returns how many."""
    done = 0
    async with app.sessions() as s:
        children = list(await s.scalars(
            select(Child).join(Guardianship, Guardianship.child_id == Child.id)
            .where(Guardianship.guardian_id == guardian_id, Child.active)))
        for child in children:
            done += len(await prerender_names(app.settings, s, child))
    return done


def render_family_names(request: web.Request, guardian_id: int) -> None:
    """Start the render and return; the request does not wait for it."""
    app = request.config_dict[APP_KEY]
    _in_background(request, family_names(app, guardian_id), f"name phrases of guardian "
                   f"{guardian_id}")


def render_school_welcome(request: web.Request, school: School) -> None:
    """The welcome naming the school, after its name, reading or languages changed."""
    app = request.config_dict[APP_KEY]
    _in_background(request, prerender_school(app.settings, school),
                   f"welcome of school {school.id}")


def _in_background(request: web.Request, job: Awaitable[Any], what: str) -> None:
    async def run() -> None:
        try:
            await job
        except Exception:
            log.exception("%s: render failed", what)

    tasks = request.config_dict[TASKS]
    task = asyncio.create_task(run())
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def tasks_ctx(web_app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: renders still running at shutdown are cancelled (the call renders)."""
    web_app[TASKS] = set()
    yield
    for task in list(web_app[TASKS]):
        task.cancel()
    await asyncio.gather(*web_app[TASKS], return_exceptions=True)
