"""Failure limits for passwords and codes, and attempt limits for sending codes.

Counts live in the database (renraku.services.throttle), so every web worker and node
shares them. A locked account refuses even its right password until the lock ends; a
locked address refuses only wrong ones, because families share addresses and a right
password must always get in::

    wait = await locked(request, "login", account)
    if wait: return 429 with too_many(request, wait)
    if password is right: await succeeded(request, "login", account)
    else: wait = await failed(request, "login", account)  # 429 when this caused a lock
"""

from __future__ import annotations

from aiohttp import web

from models.db import transaction
from renraku.services import throttle
from renraku.services.throttle import ACCOUNT_FAILURES, ADDRESS_FAILURES, Limit
from webportal.security import app_of
from webportal.templating import gettext_for


def client_ip(request: web.Request) -> str:
    return request.remote or "?"


def _address(request: web.Request) -> str:
    return f"ip:{client_ip(request)}"


async def locked(request: web.Request, kind: str, account: str) -> int | None:
    """Minutes the account stays locked for ``kind`` (None: it may try)."""
    app = app_of(request)
    async with app.sessions() as s:
        wait = await throttle.wait(s, kind, account, ACCOUNT_FAILURES, app.clock.now())
    return throttle.minutes(wait) if wait else None


async def failed(request: web.Request, kind: str, account: str) -> int | None:
    """Count a failure against the account and the address; minutes of a lock now in force."""
    app = app_of(request)
    now = app.clock.now()
    async with transaction(app.sessions) as s:
        await throttle.record(s, kind, account, now)
        by_address = await throttle.wait(s, kind, _address(request), ADDRESS_FAILURES, now)
        if by_address is None:  # an address already locked is not counted further
            await throttle.record(s, kind, _address(request), now)
            by_address = await throttle.wait(s, kind, _address(request), ADDRESS_FAILURES,
                                             now)
        by_account = await throttle.wait(s, kind, account, ACCOUNT_FAILURES, now)
    waits = [w for w in (by_account, by_address) if w]
    return throttle.minutes(max(waits)) if waits else None


async def succeeded(request: web.Request, kind: str, account: str) -> None:
    """The account's own failures are forgotten; the address's stay counted."""
    async with transaction(app_of(request).sessions) as s:
        await throttle.clear(s, kind, account)


async def spend(request: web.Request, kind: str, key: str, limit: Limit) -> int | None:
    """One attempt at something costly (an SMS, an email): minutes to wait when over."""
    app = app_of(request)
    now = app.clock.now()
    async with transaction(app.sessions) as s:
        wait = await throttle.wait(s, kind, key, limit, now)
        if wait is None:
            await throttle.record(s, kind, key, now)
    return throttle.minutes(wait) if wait else None


def too_many(request: web.Request, minutes: int) -> str:
    _ = gettext_for(request)
    return _("Too many attempts. Please try again in %(minutes)s min.", minutes=minutes)
