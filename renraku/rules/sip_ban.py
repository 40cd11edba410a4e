"""SIP password guessing: when an address has failed too often, it is banned for a while.

Asterisk reports every failed SIP authentication as a security event (a wrong digest
answer, an account that does not exist, a request its ACL refused). This rule counts the
failures of each source address inside a sliding window; at ``threshold`` failures the
address is banned for ``ban_for``. Addresses on the allow-list (the trunk, Kamailio, the
app's own hosts) are never counted nor banned: a carrier sending one bad request must not
cut every family off. Pure: the caller feeds events and the time, and applies the bans.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from renraku.rules.addresses import Network, allowed

# Asterisk's security events (AMI class "security") that mean "someone tried a password
# or an account and failed". ChallengeSent and SuccessfulAuth are not failures.
FAILURE_EVENTS = frozenset({"InvalidPassword", "ChallengeResponseFailed", "InvalidAccountID",
                            "FailedACL"})


@dataclass(frozen=True)
class BanPolicy:
    threshold: int = 5  # failures inside the window that ban an address
    window: timedelta = timedelta(minutes=1)
    ban_for: timedelta = timedelta(hours=1)
    allow: tuple[Network, ...] = ()  # never banned

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.window <= timedelta(0) or self.ban_for <= timedelta(0):
            raise ValueError("threshold, window and ban time must be positive")


@dataclass(frozen=True)
class Ban:
    address: str
    since: datetime
    until: datetime
    failures: int  # failures counted when the ban started
    reason: str  # the last failure's event and account, for the admin


def event_address(remote: str) -> str | None:
    """The IP of an event's RemoteAddress (``IPV4/UDP/192.0.2.7/5060``), None if unreadable."""
    parts = remote.split("/")
    candidate = parts[2] if len(parts) >= 3 else remote
    try:
        return str(ipaddress.ip_address(candidate.strip("[]")))
    except ValueError:
        return None


@dataclass
class BanBook:
    """Failures per address in the window, and the bans in force."""

    policy: BanPolicy
    failures: dict[str, deque[datetime]] = field(default_factory=dict)
    bans: dict[str, Ban] = field(default_factory=dict)

    def failure(self, address: str, at: datetime, reason: str = "") -> Ban | None:
        """Count one failure; the new ban when this one reaches the threshold."""
        if allowed(address, self.policy.allow) or address in self.bans:
            # An address already banned keeps its end time: its refused requests (FailedACL)
            # must not push the end away forever, or a ban would never lift.
            return None
        seen = self.failures.setdefault(address, deque())
        seen.append(at)
        while seen and seen[0] <= at - self.policy.window:
            seen.popleft()
        if len(seen) < self.policy.threshold:
            return None
        ban = Ban(address, at, at + self.policy.ban_for, len(seen), reason)
        self.bans[address] = ban
        del self.failures[address]
        return ban

    def expire(self, now: datetime) -> list[Ban]:
        """Lift the bans that have run their time (returned); forget stale failures."""
        lifted = [ban for ban in self.bans.values() if ban.until <= now]
        for ban in lifted:
            del self.bans[ban.address]
        for address in [a for a, seen in self.failures.items()
                        if not seen or seen[-1] <= now - self.policy.window]:
            del self.failures[address]
        return lifted

    def restore(self, bans: Iterable[Ban], now: datetime) -> None:
        """Bans kept from an earlier run, except those over or now allow-listed."""
        for ban in bans:
            if ban.until > now and not allowed(ban.address, self.policy.allow):
                self.bans[ban.address] = ban

    def lift(self, address: str) -> Ban | None:
        self.failures.pop(address, None)
        return self.bans.pop(address, None)

    def next_expiry(self) -> datetime | None:
        return min((ban.until for ban in self.bans.values()), default=None)
