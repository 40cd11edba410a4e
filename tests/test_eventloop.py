"""The servers' event loop: uvloop unless RENRAKU_EVENT_LOOP=asyncio (renraku.eventloop)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
import uvloop

from models.call_db import WriteLoop
from renraku import eventloop


async def _loop_class() -> type:
    return type(asyncio.get_running_loop())


def test_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RENRAKU_EVENT_LOOP", raising=False)
    assert eventloop.run(_loop_class()) is uvloop.Loop


def test_the_standard_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENRAKU_EVENT_LOOP", "asyncio")
    assert not issubclass(eventloop.run(_loop_class()), uvloop.Loop)


def test_postgresqls_write_loop_runs_on_the_chosen_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RENRAKU_EVENT_LOOP", raising=False)
    writes = WriteLoop("postgresql+asyncpg://nobody@127.0.0.1/test")  # connects on first use
    try:
        assert isinstance(writes.loop, uvloop.Loop)
    finally:
        eventloop.run(writes.close())


def test_a_bad_choice_is_a_clear_error_before_anything_starts() -> None:
    done = subprocess.run([sys.executable, "-m", "renraku.cli", "config"],
                          env={**os.environ, "RENRAKU_EVENT_LOOP": "trio"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "RENRAKU_EVENT_LOOP must be one of uvloop, asyncio, not 'trio'" in done.stderr
