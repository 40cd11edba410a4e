"""The SIP ban in practice: Asterisk's security events in, a PJSIP ACL out.

Asterisk reports each failed SIP authentication on AMI (class ``security``); the guard
feeds those to :class:`renraku.rules.sip_ban.BanBook`, and when an address is banned or a
ban lifts it writes ``pjsip_bans.conf`` (included by pjsip.conf: one ``type = acl``
section denying the banned addresses) and has Asterisk reload res_pjsip. A banned address
is then refused with 403 before any endpoint lookup or digest challenge, so a password
guesser learns nothing more. The reload goes through Asterisk's CLI socket, which the
process that started Asterisk owns: the AMI user keeps no "system" or "config" right.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from renraku.clock import Clock
from renraku.rules.addresses import networks
from renraku.rules.sip_ban import FAILURE_EVENTS, Ban, BanBook, BanPolicy, event_address
from renraku.services.sip_bans import BanStore
from renraku.settings import Settings

log = logging.getLogger(__name__)
ACL_FILE = "pjsip_bans.conf"
RELOAD_COMMAND = "module reload res_pjsip.so"


def policy_from_settings(settings: Settings) -> BanPolicy:
    """Never banned: the trunk, Kamailio (the trunk of nodes behind it) and sip_ban_allow."""
    hosts = [settings.trunk_peer.rsplit(":", 1)[0], settings.kamailio_listen.rsplit(":", 1)[0]]
    allow = networks(",".join([*hosts, settings.sip_ban_allow]))
    return BanPolicy(threshold=settings.sip_ban_failures,
                     window=timedelta(seconds=settings.sip_ban_window_s),
                     ban_for=timedelta(seconds=settings.sip_ban_seconds), allow=allow)


def acl_text(bans: list[Ban]) -> str:
    if not bans:
        return "; no address is banned\n"
    lines = ["; written by renraku (SIP ban): do not edit, see `renraku sip bans`",
             "[renraku-bans]", "type = acl"]
    for ban in sorted(bans, key=lambda b: b.address):
        prefix = 128 if ":" in ban.address else 32
        lines.append(f"deny = {ban.address}/{prefix} ; until {ban.until.isoformat()}")
    return "\n".join(lines) + "\n"


class SipGuard:
    def __init__(self, policy: BanPolicy, store: BanStore, etc: Path,
                 reload: Callable[[], Awaitable[object]], clock: Clock) -> None:
        self.book = BanBook(policy)
        self.store, self.etc, self.reload, self.clock = store, etc, reload, clock
        self._dirty = asyncio.Event()
        self._applied = asyncio.Event()
        self.applied_bans: frozenset[str] = frozenset()  # what Asterisk refuses now
        self.applied_at: dict[str, datetime] = {}  # since when (the reload returned)
        self._task: asyncio.Task[None] | None = None

    def attach(self, manager: Any) -> None:
        for name in FAILURE_EVENTS:
            manager.register_event(name, self.on_event)

    def on_event(self, _manager: Any, event: Any) -> None:
        if event.get("Service") != "PJSIP":
            return  # AMI's own failed logins are AMI's business (its permit list)
        address = event_address(event.get("RemoteAddress", ""))
        if address is None:
            return
        reason = f"{event.get('Event')} {event.get('AccountID', '')}".strip()
        ban = self.book.failure(address, self.clock.now(), reason)
        if ban is not None:
            log.warning("SIP ban: %s after %d failures (%s), until %s", address, ban.failures,
                        reason, ban.until.isoformat())
            self.store.log("ban", ban, ban.since)
            self._dirty.set()

    async def start(self) -> None:
        """Bans kept from the last run (those still in force), then watch their times."""
        now = self.clock.now()
        self.book.restore(self.store.load(), now)
        self._dirty.set()
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            until = self.book.next_expiry()
            wait = 1.0 if until is None else (until - self.clock.now()).total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), max(0.0, min(wait, 1.0)))
            now = self.clock.now()
            for address in self.store.take_unban_requests():
                if self.lift(address, by="renraku sip unban") is None:
                    log.warning("SIP ban: %s was not banned (unban asked)", address)
            for ban in self.book.expire(now):
                log.warning("SIP ban lifted: %s", ban.address)
                self.store.log("lift", ban, now)
                self._dirty.set()
            if self._dirty.is_set():
                self._dirty.clear()
                try:
                    await self._apply()
                except Exception:  # Asterisk away (restarting): try again on the next turn
                    log.exception("SIP ban: could not apply the ban list")
                    self._dirty.set()
                    await asyncio.sleep(1)

    async def _apply(self) -> None:
        bans = list(self.book.bans.values())
        wanted = frozenset(b.address for b in bans)
        path = self.etc / ACL_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(acl_text(bans))
        os.replace(tmp, path)
        self.store.save(bans)
        if wanted != self.applied_bans or not path.exists():
            await self.reload()
        now = self.clock.now()
        self.applied_at = {a: self.applied_at.get(a, now) for a in wanted}
        self.applied_bans = wanted
        self._applied.set()

    async def wait_applied(self, address: str, banned: bool, within: float = 10.0) -> None:
        """Until Asterisk refuses (or again accepts) ``address`` (tests, the CLI)."""
        async def until() -> None:
            while (address in self.applied_bans) != banned:
                self._applied.clear()
                await self._applied.wait()
        await asyncio.wait_for(until(), within)

    def lift(self, address: str, by: str) -> Ban | None:
        ban = self.book.lift(address)
        if ban is not None:
            log.warning("SIP ban lifted by %s: %s", by, address)
            self.store.log("unban", ban, self.clock.now(), by)
            self._dirty.set()
        return ban

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
