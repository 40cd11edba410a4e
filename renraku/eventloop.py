"""The event loop Renraku's processes run on: uvloop, unless ``RENRAKU_EVENT_LOOP=asyncio``.

Why uvloop: at the morning peak one loop carries every call of a FastAGI server, and the
profile of that process (benchmarks/peak, issue #17) had asyncio's own Python, its
selector, stream transports and callback scheduling, among its largest parts. uvloop does
the same work in C over libuv behind the same asyncio API; nothing else changes.
``RENRAKU_EVENT_LOOP=asyncio`` keeps the standard loop, for a platform without uvloop's
wheel or to compare the two (``python -m benchmarks`` runs on the chosen loop too).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
CHOICES = ("uvloop", "asyncio")


def chosen() -> str:
    name = os.environ.get("RENRAKU_EVENT_LOOP", "uvloop").strip().lower() or "uvloop"
    if name not in CHOICES:
        raise ValueError(f"RENRAKU_EVENT_LOOP must be one of {', '.join(CHOICES)}, not {name!r}")
    return name


def new_event_loop() -> asyncio.AbstractEventLoop:
    if chosen() == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the chosen loop."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
