"""The injectable clock: everything that asks "what time is it" asks this.

Tests set ``RENRAKU_TESTING=1`` and ``RENRAKU_FAKE_NOW=2026-12-04T19:59:30+09:00``; the
fake clock then starts at that instant and runs forward in real time, so timeouts and
ordering still behave. Without ``RENRAKU_TESTING`` the fake time is ignored (and logged),
so a stray variable in production cannot move the cutoff.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC now."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """Starts at ``start`` and advances with the monotonic clock; ``set``/``advance`` move it."""

    def __init__(self, start: datetime, frozen: bool = False) -> None:
        if start.tzinfo is None:
            raise ValueError("fake time must carry a UTC offset")
        self._start = start.astimezone(UTC)
        self._mono = time.monotonic()
        self.frozen = frozen

    def now(self) -> datetime:
        if self.frozen:
            return self._start
        return self._start + timedelta(seconds=time.monotonic() - self._mono)

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("fake time must carry a UTC offset")
        self._start = when.astimezone(UTC)
        self._mono = time.monotonic()

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)


def local_now(clock: Clock, tz: str) -> datetime:
    return clock.now().astimezone(ZoneInfo(tz))


def clock_from_settings(testing: bool, fake_now: str) -> Clock:
    if fake_now and testing:
        return FakeClock(datetime.fromisoformat(fake_now))
    if fake_now:
        log.warning("RENRAKU_FAKE_NOW ignored: it is honoured only with RENRAKU_TESTING=1")
    return SystemClock()
