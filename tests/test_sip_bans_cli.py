"""The SIP guard without Asterisk (events in, ACL file and reloads out) and `renraku sip bans`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from ivr.sip_guard import ACL_FILE, SipGuard, policy_from_settings
from renraku.clock import FakeClock
from renraku.services.sip_bans import BanStore
from renraku.settings import Settings
from tests.test_cli import renraku

T0 = datetime(2026, 12, 4, 7, 30, tzinfo=UTC)


def _event(address: str, name: str = "ChallengeResponseFailed",
           service: str = "PJSIP") -> dict[str, str]:
    return {"Event": name, "Service": service, "AccountID": "softphone",
            "RemoteAddress": f"IPV4/UDP/{address}/5060"}


async def test_guard_bans_writes_the_acl_and_keeps_bans_over_a_restart(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, trunk_peer="192.0.2.1:5060", sip_ban_seconds=600,
                        sip_ban_allow="198.51.100.0/24")
    policy = policy_from_settings(settings)
    clock = FakeClock(T0)
    reloads: list[str] = []

    async def reload() -> None:
        reloads.append((tmp_path / ACL_FILE).read_text())

    guard = SipGuard(policy, BanStore(tmp_path), tmp_path, reload, clock)
    await guard.start()
    try:
        for _ in range(20):  # the trunk, an allowed network, AMI's own failures: never
            guard.on_event(None, _event("192.0.2.1"))
            guard.on_event(None, _event("198.51.100.7", "InvalidAccountID"))
            guard.on_event(None, _event("203.0.113.5", "InvalidPassword", service="AMI"))
        for _ in range(5):
            guard.on_event(None, _event("203.0.113.9"))
        await guard.wait_applied("203.0.113.9", True)
        assert len(reloads) == 1 and "deny = 203.0.113.9/32" in reloads[0]
        assert set(guard.book.bans) == {"203.0.113.9"}
    finally:
        await guard.close()
    # `renraku run` started again: the ban is still in force, applied at once.
    guard = SipGuard(policy, BanStore(tmp_path), tmp_path, reload, clock)
    await guard.start()
    try:
        await guard.wait_applied("203.0.113.9", True)
        out = renraku("sip", "bans", data_dir=tmp_path, testing="1",
                      fake_now=clock.now().isoformat(), sip_ban_seconds="600")
        assert out.returncode == 0, out.stderr
        assert "SIP bans in force: 1" in out.stdout
        assert "203.0.113.9" in out.stdout and "ChallengeResponseFailed softphone" in out.stdout
        clock.advance(timedelta(seconds=601))
        await guard.wait_applied("203.0.113.9", False)
        assert "deny" not in (tmp_path / ACL_FILE).read_text()
    finally:
        await guard.close()
    out = renraku("sip", "bans", data_dir=tmp_path, testing="1",
                  fake_now=clock.now().isoformat())
    assert "SIP bans in force: 0" in out.stdout
    assert [line.split()[2] for line in out.stdout.splitlines()[2:]] == ["ban", "lift"]


async def test_an_admin_lifts_a_ban_with_the_cli(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, trunk_peer="192.0.2.1:5060")
    reloads: list[str] = []

    async def reload() -> None:
        reloads.append((tmp_path / ACL_FILE).read_text())

    guard = SipGuard(policy_from_settings(settings), BanStore(tmp_path), tmp_path, reload,
                     FakeClock(T0))
    await guard.start()
    try:
        for _ in range(5):
            guard.on_event(None, _event("203.0.113.9"))
        await guard.wait_applied("203.0.113.9", True)
        out = renraku("sip", "unban", "198.51.100.1", data_dir=tmp_path)
        assert out.returncode == 1 and "not banned" in out.stdout
        out = renraku("sip", "unban", "203.0.113.9", data_dir=tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr
        await guard.wait_applied("203.0.113.9", False, within=5)
        assert "deny" not in reloads[-1]
    finally:
        await guard.close()
    history = BanStore(tmp_path).history()
    assert [(e["event"], e.get("by")) for e in history] == [
        ("ban", None), ("unban", "renraku sip unban")]
