"""The live register's change detection: a poll notices database changes, the bus wakes early."""

from __future__ import annotations

import asyncio
import time

from renraku.services import live


async def test_poll_detects_change_and_bus_wakes_at_once() -> None:
    state = {"stamp": 1, "fail": 0}

    async def stamp() -> int:
        if state["fail"]:
            state["fail"] -= 1
            raise RuntimeError("database is locked")
        return state["stamp"]

    bus = live.ChangeBus()
    stream = live.changes(stamp, bus, poll=0.05, keepalive=0.2)
    # Nothing changes: only keep-alives.
    assert await asyncio.wait_for(anext(stream), 1) is False
    # Another process wrote a report: the poll sees the new stamp (after a busy moment).
    state["stamp"], state["fail"] = 2, 2
    assert await asyncio.wait_for(anext(stream), 1) is True
    await stream.aclose()

    # With a long poll interval, a notify() from this process wakes the stream at once.
    slow = live.changes(stamp, bus, poll=30, keepalive=60)
    task = asyncio.ensure_future(anext(slow))
    await asyncio.sleep(0.05)
    state["stamp"] = 3
    started = time.monotonic()
    bus.notify()
    assert await asyncio.wait_for(task, 2) is True
    assert time.monotonic() - started < 1
    await slow.aclose()


async def test_closing_the_bus_ends_streams() -> None:
    async def stamp() -> int:
        return 1

    bus = live.ChangeBus()
    stream = live.changes(stamp, bus, poll=30, keepalive=60)
    task = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    bus.close()
    try:
        await asyncio.wait_for(task, 2)
    except StopAsyncIteration:
        pass
    else:  # pragma: no cover
        raise AssertionError("the stream must end when the bus closes")
