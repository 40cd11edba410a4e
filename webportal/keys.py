"""Typed keys of what the aiohttp application holds (kept apart to avoid import cycles)."""

from __future__ import annotations

from aiohttp import web

from renraku.app import App

APP_KEY = web.AppKey("renraku_app", App)
SECRET_KEY = web.AppKey("renraku_secret", bytes)
