"""Outgoing SMS through a pluggable backend; every message is a SmsMessage row first.

Backends (``settings.sms_backend``):

* ``outbox`` (default): the row is the delivery; it stays ``queued`` and the dev page
  ``/dev/outbox`` (testing/dev only) shows it. For development and tests.
* ``http``: POSTs ``{"to": "+8190...", "body": "..."}`` as JSON to ``settings.sms_gateway_url``;
  any 2xx marks the row ``sent``, anything else ``failed`` with the error.

The row is committed before the send, and the outcome after, so a message is never
silently dropped: a failure is on record and raised as SmsError.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp

from models import SmsMessage
from models.db import transaction
from renraku.app import App

log = logging.getLogger(__name__)

Backend = Callable[[App, SmsMessage], Awaitable[None]]


class SmsError(Exception):
    """The gateway refused the message or could not be reached (the row says why)."""


async def _outbox(app: App, message: SmsMessage) -> None:
    log.info("SMS to %s kept in the outbox (sms_backend=outbox)", message.to_e164)


async def _http(app: App, message: SmsMessage) -> None:
    url = app.settings.sms_gateway_url
    if not url:
        raise SmsError("sms_backend is 'http' but sms_gateway_url is empty")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http, \
                http.post(url, json={"to": message.to_e164, "body": message.body}) as resp:
            if resp.status // 100 != 2:
                raise SmsError(f"gateway answered HTTP {resp.status}: {(await resp.text())[:200]}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SmsError(f"gateway unreachable: {exc}") from exc


BACKENDS: dict[str, Backend] = {"outbox": _outbox, "http": _http}


async def send_sms(app: App, to_e164: str, body: str) -> SmsMessage:
    """Record and send one SMS; raises SmsError (after recording the failure)."""
    async with transaction(app.sessions) as s:
        message = SmsMessage(to_e164=to_e164, body=body, status="queued",
                             created_at=app.clock.now())
        s.add(message)
    backend = BACKENDS.get(app.settings.sms_backend)
    try:
        if backend is None:
            raise SmsError(f"unknown sms_backend {app.settings.sms_backend!r}")
        await backend(app, message)
    except SmsError as exc:
        log.error("SMS %s to %s failed: %s", message.id, to_e164, exc)
        async with transaction(app.sessions) as s:
            row = await s.get_one(SmsMessage, message.id)
            row.status, row.error = "failed", str(exc)
        raise
    if app.settings.sms_backend != "outbox":
        async with transaction(app.sessions) as s:
            row = await s.get_one(SmsMessage, message.id)
            row.status, row.sent_at = "sent", app.clock.now()
    return message
