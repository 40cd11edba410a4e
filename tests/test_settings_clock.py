"""Settings from TOML and environment; the clock's test override."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from renraku.clock import FakeClock, SystemClock, clock_from_settings
from renraku.settings import load_settings


def test_toml_then_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "renraku.toml"
    cfg.write_text('web_port = 9000\nami_secret = "s3cret"\ndata_dir = "/srv/renraku"\n')
    s = load_settings(cfg, env={"RENRAKU_WEB_PORT": "9100", "RENRAKU_TESTING": "yes"})
    assert s.web_port == 9100  # environment wins over the file
    assert s.ami_secret == "s3cret"
    assert s.data_dir == Path("/srv/renraku")
    assert s.testing is True
    assert s.db_url == "sqlite+aiosqlite:////srv/renraku/renraku.db"


def test_unknown_setting_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "renraku.toml"
    cfg.write_text("web_prot = 9000\n")
    with pytest.raises(ValueError, match="web_prot"):
        load_settings(cfg, env={})


def test_secrets_are_masked() -> None:
    s = load_settings(None, env={
        "RENRAKU_AMI_SECRET": "topsecret",
        "RENRAKU_DATABASE_URL": "postgresql+asyncpg://app:pw@db:5432/renraku",
    })
    shown = str(s.redacted())
    assert "topsecret" not in shown and ":pw@" not in shown
    assert "postgresql+asyncpg://app:********@db:5432/renraku" in shown


def test_fake_now_only_when_testing() -> None:
    fake = "2026-12-04T19:59:30+09:00"
    assert isinstance(clock_from_settings(False, fake), SystemClock)
    clock = clock_from_settings(True, fake)
    assert isinstance(clock, FakeClock)
    assert abs(clock.now() - datetime.fromisoformat(fake)) < timedelta(seconds=5)


def test_fake_clock_moves() -> None:
    clock = FakeClock(datetime.fromisoformat("2026-12-04T19:59:30+09:00"), frozen=True)
    clock.advance(timedelta(seconds=30))
    assert clock.now() == datetime.fromisoformat("2026-12-04T20:00:00+09:00")
    with pytest.raises(ValueError):
        FakeClock(datetime(2026, 12, 4))


async def test_postgresql_pool_size_comes_from_the_settings() -> None:
    from renraku.app import open_app

    settings = load_settings(env={
        "RENRAKU_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        "RENRAKU_DATABASE_POOL_SIZE": "35",
    })
    app = open_app(settings)
    try:
        assert app.engine.pool.size() == 35  # type: ignore[attr-defined]
        assert app.engine.pool._max_overflow == 35  # type: ignore[attr-defined]
    finally:
        await app.close()
