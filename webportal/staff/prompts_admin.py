"""Prompts (school admin): hear every phone phrase's versions, upload a recording, roll back.

The same store as the admin phone line and `renraku prompts import`: an upload is checked,
converted and loudness-normalised by prompts.store, and a bad file changes nothing. Error
messages are the prompt catalog's own texts, so they exist in all four languages.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from aiohttp import web

from prompts import store
from prompts.catalog import catalog
from renraku.rules.permissions import can_manage_prompts
from renraku.settings import LANGUAGES
from webportal.staff import fw
from webportal.staff.common import StaffRequest, render, staff_request

routes = web.RouteTableDef()
MAX_UPLOAD = 25 * 1024 * 1024


def _admin(sr: StaffRequest) -> None:
    if not can_manage_prompts(sr.scope, sr.school.id):
        raise web.HTTPForbidden(text="forbidden")


def _lang(value: str | None) -> str:
    return value if value in LANGUAGES else "ja"


async def _page(request: web.Request, lang: str, message: str = "", error: bool = False,
                status: int = 200) -> web.Response:
    app = fw.app_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        _admin(sr)
        rows = []
        for entry in catalog().static():
            versions = await store.history(session, entry.key, lang)
            rows.append({"entry": entry, "text": entry.text(lang), "versions": versions})
    _ = fw.gettext_for(request)
    return render(sr, "staff/prompts.html", {
        "page_title": _("Phone prompts"), "rows": rows, "lang": lang, "languages": LANGUAGES,
        "message": message, "error": error, "csrf_token": fw.csrf_token(request),
    }, status=status)


@routes.get("/staff/prompts")
async def prompts_page(request: web.Request) -> web.Response:
    return await _page(request, _lang(request.query.get("lang")))


@routes.get(r"/staff/prompts/audio/{lang}/{key}/{version:\d+}.wav")
async def audio(request: web.Request) -> web.StreamResponse:
    app = fw.app_of(request)
    async with app.sessions() as session:
        _admin(await staff_request(request, session))
    lang, key = _lang(request.match_info["lang"]), request.match_info["key"]
    if key not in catalog():
        raise web.HTTPNotFound()
    path = app.settings.sounds_dir / store.version_relpath(
        lang, key, int(request.match_info["version"]))
    if not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


def _catalog_message(key: str, lang: str) -> str:
    entry = catalog().entries.get(key)
    return entry.text(lang) if entry else key


@routes.post("/staff/prompts/{lang}/{key}/upload")
async def upload(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    ui_lang = fw.language_of(request)
    async with app.sessions() as session:
        sr = await staff_request(request, session)
        _admin(sr)
    lang, key = _lang(request.match_info["lang"]), request.match_info["key"]
    if key not in catalog():
        raise web.HTTPNotFound()
    data = await request.post()
    field = data.get("recording")
    content = field.file.read(MAX_UPLOAD + 1) if isinstance(field, web.FileField) else b""
    suffix = Path(field.filename).suffix.lower() if isinstance(field, web.FileField) else ""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"upload{suffix or '.bin'}"
        await asyncio.to_thread(src.write_bytes, content)
        try:
            if len(content) > MAX_UPLOAD:
                raise store.PromptError("admin.recording_too_long")
            await store.add_recording(app.sessions, app.settings, key, lang, src, sr.staff.id)
        except store.PromptError as exc:
            return await _page(request, lang, _catalog_message(exc.message_key, ui_lang),
                               error=True, status=400)
    return await _page(request, lang, _catalog_message("admin.saved", ui_lang))


@routes.post("/staff/prompts/{lang}/{key}/rollback")
async def rollback(request: web.Request) -> web.Response:
    app = fw.app_of(request)
    ui_lang = fw.language_of(request)
    async with app.sessions() as session:
        _admin(await staff_request(request, session))
    lang, key = _lang(request.match_info["lang"]), request.match_info["key"]
    if key not in catalog():
        raise web.HTTPNotFound()
    try:
        await store.rollback(app.sessions, app.settings, key, lang)
    except store.PromptError as exc:
        return await _page(request, lang, _catalog_message(exc.message_key, ui_lang),
                           error=True, status=400)
    return await _page(request, lang, _catalog_message("admin.rolled_back", ui_lang))
