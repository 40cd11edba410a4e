"""Live register updates: an in-process wake-up bus plus a database poll.

Reports made through the web portal in this process call ``bus.notify()`` and open
register pages refresh at once. Phone reports are written by the FastAGI process (maybe on
another host), which cannot reach this bus, so every open stream also compares a cheap
fingerprint of its class's reports (renraku.services.register.change_stamp) about once a
second. Either way the page learns within about a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0


class ChangeBus:
    """Wakes every waiter; carries no payload because waiters re-read the database anyway."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closed = False

    def close(self) -> None:
        """Server shutdown: wake every stream so it ends instead of holding the exit up."""
        self.closed = True
        self.notify()

    def notify(self) -> None:
        self._event.set()
        # A fresh event for the next round; the old one stays set for the woken waiters.
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> bool:
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            return False
        return True


async def changes(
    stamp: Callable[[], Awaitable[Any]],
    bus: ChangeBus,
    *,
    poll: float = POLL_SECONDS,
    keepalive: float = KEEPALIVE_SECONDS,
) -> AsyncIterator[bool]:
    """Yield True when ``stamp()`` changes and False as a keep-alive, until the bus closes."""
    last = await stamp()
    idle = 0.0
    while not bus.closed:
        await bus.wait(poll)
        if bus.closed:
            return
        try:
            current = await stamp()
        except Exception as exc:  # a busy database must not end the page's stream
            log.warning("live register poll skipped: %s", exc)
            continue
        if current != last:
            last = current
            idle = 0.0
            yield True
            continue
        idle += poll
        if idle >= keepalive:
            idle = 0.0
            yield False
