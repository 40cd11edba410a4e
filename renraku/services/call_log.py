"""The call log, written in groups: one transaction for the calls that ended together.

At the morning peak every call ends with a log row. Written one transaction per call, 200
rows queued for SQLite's single writer in between the callers' reports. Here a call hands
its row over and waits (after its caller is gone) while one flush at a time writes every
row queued so far; rows arriving meanwhile go in the next flush. Nothing is delayed when
calls are few: a lone row is written at once.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy import insert

from models import CallLog
from renraku.app import App

# The table's own INSERT: the ORM's bulk path (insert(CallLog)) adds per-row bookkeeping
_NEW_ROWS = insert(CallLog.__table__)


class CallLogWriter:
    def __init__(self, app: App) -> None:
        self.app = app
        self.flushes = 0  # transactions written (the tests check the grouping)
        self._queue: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def write(self, **row: Any) -> None:
        """Returns once the row is committed; raises what the flush raised."""
        done = asyncio.get_running_loop().create_future()
        self._queue.append((row, done))
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._flush_all())
        await asyncio.shield(done)

    async def _flush_all(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            rows = [row for row, _ in batch]
            try:
                await self.app.write(lambda s, rows=rows: s.execute(_NEW_ROWS, rows))
                self.flushes += 1
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)


_writers: weakref.WeakKeyDictionary[App, dict[asyncio.AbstractEventLoop, CallLogWriter]] = (
    weakref.WeakKeyDictionary()
)


def call_log_writer(app: App) -> CallLogWriter:
    """The writer of this app's database on the running event loop."""
    loops = _writers.setdefault(app, {})
    loop = asyncio.get_running_loop()
    if loop not in loops:
        for stale in [x for x in loops if x.is_closed()]:
            del loops[stale]
        loops[loop] = CallLogWriter(app)
    return loops[loop]
