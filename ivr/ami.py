"""The AMI client: panoramisk's ``Manager`` with backoff, a real close and a login check.

panoramisk 1.4 reconnects at a fixed interval forever, even after ``close()`` (its
``connection_lost`` always schedules another ``connect``), and reports a refused login only
as ``authenticated = False``. This subclass backs off exponentially (1 s doubling to 30 s),
stays closed once closed, and lets callers wait for a successful login or a clear error.
It also names ``Async`` on every action: panoramisk reads that key for any reply ending in
"successfully queued" (PlayDTMF's does) and, when it is missing, its KeyError kills the
connection. And it never sends an action twice: panoramisk keeps the actions a lost
connection left unanswered and sends them again after the next login, but Asterisk may
well have run them. A second Originate would call a family twice (or, refused for its
ChannelId, have the dialer close a live call's attempt as failed); a second PlayDTMF
presses a key twice. Those actions fail with ConnectionError instead, and their callers
decide (the dialer reconciles its calls from CoreShowChannels).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from panoramisk import Manager

log = logging.getLogger(__name__)


class AMIAuthError(ConnectionError):
    """Asterisk refused the AMI user or secret."""


class AMIClient(Manager):
    MIN_DELAY_S = 1.0
    MAX_DELAY_S = 30.0

    def __init__(self, host: str, port: int, username: str, secret: str, **config: Any) -> None:
        config.setdefault("ping_delay", 5)
        config.setdefault("ping_interval", 5)
        config.setdefault("events", "on")
        super().__init__(
            host=host, port=port, username=username, secret=secret,
            loop=asyncio.get_running_loop(), reconnect_timeout=self.MIN_DELAY_S, **config,
        )
        self._closing = False
        self.login_failed = False
        self.reconnects = 0

    @property
    def connected(self) -> bool:
        return bool(self._connected and self.authenticated)

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self._closing:
            return None
        return super().connect(*args, **kwargs)

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if self._closing:
            return
        super().connection_made(f)
        if not self._connected:  # refused: try again later, a little later each time
            self.reconnect_timeout = min(self.reconnect_timeout * 2, self.MAX_DELAY_S)

    def login(self, future: asyncio.Future[Any]) -> bool:
        ok = super().login(future)
        self.login_failed = not ok
        if ok:
            self.reconnect_timeout = self.MIN_DELAY_S
        else:
            log.error("AMI login refused for %s", self.config.get("username"))
        return ok

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_unanswered("AMI connection lost before the reply")
        if self._closing:
            self._connected = False
            return
        self.reconnects += 1
        log.warning("AMI connection lost; reconnecting in %.0f s", self.reconnect_timeout)
        super().connection_lost(exc)
        self.reconnect_timeout = min(self.reconnect_timeout * 2, self.MAX_DELAY_S)

    async def send_awaiting_actions(self, *_: Any) -> None:
        """panoramisk's hook after a login sends the set-aside actions again: not here."""
        self._fail_unanswered("AMI connection lost before the reply")

    def _fail_unanswered(self, why: str) -> None:
        """The actions panoramisk set aside to send again: failed, never sent twice."""
        while self.awaiting_actions:
            action = self.awaiting_actions.popleft()
            if not action.future.done():
                action.future.set_exception(ConnectionError(why))
                action.future.exception()  # read: nobody waiting is not worth a warning

    def send_action(self, action: dict[str, Any], as_list: Any = None, **kwargs: Any) -> Any:
        action = {**action, **kwargs}
        if not any(k.lower() == "async" for k in action):
            action["Async"] = "false"
        return super().send_action(action, as_list=as_list)

    async def start(self, timeout_s: float = 15.0) -> AMIClient:
        """Connect and log in; AMIAuthError on a refused login, TimeoutError if unreachable."""
        self.connect()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if self.connected:
                return self
            if self.login_failed:
                self.close()
                raise AMIAuthError("AMI login refused")
            await asyncio.sleep(0.05)
        self.close()
        raise TimeoutError(f"AMI at {self.config['host']}:{self.config['port']} did not answer")

    def close(self) -> None:
        self._closing = True
        super().close()
        self._fail_unanswered("AMI client closed before the reply")
