"""Typed keys of what the aiohttp application holds (kept apart to avoid import cycles)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from renraku.app import App

if TYPE_CHECKING:
    from webportal.security import RateLimiter

APP_KEY = web.AppKey("renraku_app", App)
SECRET_KEY = web.AppKey("renraku_secret", bytes)
LIMITER_KEY: web.AppKey[RateLimiter] = web.AppKey("renraku_limiter")
