"""The SIP ban rule: failures per address in a window, threshold, allow-list, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from renraku.rules.addresses import networks
from renraku.rules.sip_ban import Ban, BanBook, BanPolicy, event_address

T0 = datetime(2026, 12, 4, 7, 30, tzinfo=UTC)
POLICY = BanPolicy(threshold=5, window=timedelta(seconds=60), ban_for=timedelta(minutes=10),
                   allow=networks("127.0.0.1,10.0.0.0/8"))


def test_the_fifth_failure_in_the_window_bans_the_address() -> None:
    book = BanBook(POLICY)
    results = [book.failure("192.0.2.7", T0 + timedelta(seconds=i), "ChallengeResponseFailed")
               for i in range(5)]
    assert results[:4] == [None] * 4
    ban = results[4]
    assert ban == Ban("192.0.2.7", T0 + timedelta(seconds=4),
                      T0 + timedelta(seconds=4, minutes=10), 5, "ChallengeResponseFailed")
    assert set(book.bans) == {"192.0.2.7"}


def test_failures_spread_wider_than_the_window_never_ban() -> None:
    book = BanBook(POLICY)
    # One failure every 20 s: at most 3 inside any 60 s window.
    assert all(book.failure("192.0.2.7", T0 + timedelta(seconds=20 * i)) is None
               for i in range(30))
    assert not book.bans


def test_addresses_are_counted_apart() -> None:
    book = BanBook(POLICY)
    for i in range(4):
        book.failure("192.0.2.7", T0 + timedelta(seconds=i))
        book.failure("192.0.2.8", T0 + timedelta(seconds=i))
    assert not book.bans
    assert book.failure("192.0.2.8", T0 + timedelta(seconds=5)) is not None
    assert set(book.bans) == {"192.0.2.8"}


def test_the_trunk_and_allowed_networks_are_never_banned() -> None:
    book = BanBook(POLICY)
    for i in range(100):
        assert book.failure("127.0.0.1", T0 + timedelta(milliseconds=i)) is None
        assert book.failure("10.1.2.3", T0 + timedelta(milliseconds=i)) is None
        assert book.failure("::ffff:10.1.2.3", T0 + timedelta(milliseconds=i)) is None
    assert not book.bans and not book.failures


def test_a_ban_lifts_after_its_time_and_refusals_do_not_extend_it() -> None:
    book = BanBook(POLICY)
    for i in range(5):
        ban = book.failure("192.0.2.7", T0 + timedelta(seconds=i))
    assert ban is not None
    # While banned, its refused requests (FailedACL) count for nothing.
    for i in range(50):
        assert book.failure("192.0.2.7", T0 + timedelta(minutes=1, seconds=i), "FailedACL") is None
    assert book.next_expiry() == ban.until
    assert book.expire(ban.until - timedelta(seconds=1)) == []
    assert book.expire(ban.until) == [ban]
    assert not book.bans and book.next_expiry() is None
    # Counting starts again from zero after the ban.
    assert book.failure("192.0.2.7", ban.until + timedelta(seconds=1)) is None


def test_stale_failures_are_forgotten() -> None:
    book = BanBook(POLICY)
    book.failure("192.0.2.7", T0)
    book.expire(T0 + timedelta(seconds=61))
    assert not book.failures


def test_restore_keeps_only_bans_in_force_and_not_allowed() -> None:
    book = BanBook(POLICY)
    live = Ban("192.0.2.7", T0, T0 + timedelta(minutes=10), 5, "x")
    over = Ban("192.0.2.8", T0 - timedelta(hours=2), T0 - timedelta(hours=1), 5, "x")
    trunk = Ban("127.0.0.1", T0, T0 + timedelta(minutes=10), 5, "x")
    book.restore([live, over, trunk], T0 + timedelta(minutes=1))
    assert set(book.bans) == {"192.0.2.7"}
    assert book.lift("192.0.2.7") == live and not book.bans


@pytest.mark.parametrize(("remote", "address"), [
    ("IPV4/UDP/192.0.2.7/5060", "192.0.2.7"),
    ("IPV6/UDP/2001:db8::1/5060", "2001:db8::1"),
    ("IPV4/UDP/not-an-ip/5060", None),
    ("", None),
])
def test_event_address(remote: str, address: str | None) -> None:
    assert event_address(remote) == address


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        BanPolicy(threshold=0)
