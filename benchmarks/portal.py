"""Portal under load: guardian home page and staff month register, demo and city data,
SQLite and PostgreSQL.

The portal runs as ``renraku web`` does: one worker process per core sharing the port.
This process logs in through the real forms, then measures each page three ways on
loopback: one request at a time (the page's own time); a steady ``RATE`` requests/s with
random (Poisson) arrivals, whatever the answers' speed — a few times a city's morning
peak (2,000 teachers opening their register every few minutes, families their home
page); and ``CONCURRENCY`` requests always in flight (the most the portal can serve).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from sqlalchemy import select, text

from benchmarks.stats import percentile, save, table

PG_ADMIN = os.environ.get("RENRAKU_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432")
# Database names start with this (several checkouts benchmarking on one server: set apart)
PG_DB = os.environ.get("RENRAKU_BENCH_PG_DB", "renraku_bench")
CACHE = Path(os.environ.get("RENRAKU_BENCH_CACHE", Path.home() / ".cache" / "renraku" / "bench"))
DURATION_S = float(os.environ.get("RENRAKU_BENCH_PORTAL_S", "6"))
CONCURRENCY = 16
RATE = float(os.environ.get("RENRAKU_BENCH_PORTAL_RATE", "40"))
WORKERS = int(os.environ.get("RENRAKU_BENCH_PORTAL_WORKERS", str(os.cpu_count() or 1)))
PASSWORD = "renraku-bench"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# Demo: the test suite's Friday morning; city: the end of February, a nearly full month.
NOW = {"demo": datetime(2026, 12, 4, 0, 30, tzinfo=UTC),
       "city": datetime(2027, 2, 26, 0, 30, tzinfo=UTC)}


def db_url(backend: str, dataset: str) -> str:
    if backend == "sqlite":
        CACHE.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{CACHE / f'{dataset}.db'}"
    return f"{PG_ADMIN}/{PG_DB}_{dataset}"


async def _ensure_pg(name: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"{PG_ADMIN}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            if not await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                     {"n": name}):
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


async def fresh_pg(name: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"{PG_ADMIN}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


async def prepare(backend: str, dataset: str) -> dict[str, object]:
    """Migrated database with the data set and a staff login; reused when already built."""
    from models import Child, Classroom, Enrolment, Guardian, Guardianship, Staff
    from models.db import create_engine, session_factory, transaction
    from models.migrate import upgrade
    from renraku.services.passwords import hash_password

    url = db_url(backend, dataset)
    if backend == "postgresql":
        await _ensure_pg(f"{PG_DB}_{dataset}")
    await upgrade(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        counts: dict[str, object] = {}
        if dataset == "city":
            from benchmarks.citydata import build_city

            counts = await build_city(engine)
        else:
            from renraku.demo import create_demo_data

            async with transaction(sessions) as s:
                await create_demo_data(s, NOW["demo"])
        async with transaction(sessions) as s:
            pw = hash_password(PASSWORD)
            staff = await s.scalar(select(Staff).where(Staff.email == "bench@example.jp"))
            room = await s.scalar(select(Classroom).order_by(Classroom.id))
            assert room is not None
            if staff is None:
                s.add(Staff(school_id=room.school_id, name="bench", email="bench@example.jp",
                            password_hash=pw, role="admin"))
            # A guardian of a child in that class logs in to the home page.
            guardian = await s.scalar(
                select(Guardian).join(Guardianship, Guardianship.guardian_id == Guardian.id)
                .join(Child, Child.id == Guardianship.child_id)
                .join(Enrolment, Enrolment.child_id == Child.id)
                .where(Enrolment.class_id == room.id, Guardian.email.is_not(None))
                .order_by(Guardian.id))
            assert guardian is not None
            guardian.password_hash = pw
            info = {"class_id": room.id, "guardian_email": guardian.email, **counts}
        # Planner statistics, as autovacuum (PostgreSQL) or a routine ANALYZE would have
        # after a bulk import; without them PostgreSQL walks the whole month's reports.
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
        return info
    finally:
        await engine.dispose()


def serve(url: str, port: int, now: str) -> None:
    """One portal worker in this process (``python -m benchmarks.portal serve …``); the
    bench starts ``WORKERS`` of them on one port, as ``renraku web`` does."""
    import logging

    from aiohttp import web

    from models.db import create_engine, session_factory
    from renraku.app import App
    from renraku.clock import FakeClock
    from renraku.settings import Settings
    from webportal.app import create_app

    logging.basicConfig(level=logging.WARNING)
    data = Path(tempfile.mkdtemp(prefix="renraku-bench-web-"))
    settings = Settings(data_dir=data, secret_key="bench-secret-key", web_port=port,
                        public_url=f"http://127.0.0.1:{port}", sms_backend="outbox")
    engine = create_engine(url, pool_size=settings.database_pool_size)
    app = App(settings, FakeClock(datetime.fromisoformat(now)), engine, session_factory(engine))
    web.run_app(create_app(app), host="127.0.0.1", port=port, access_log=None,
                print=lambda *_: None, reuse_port=True)


async def _login(session: aiohttp.ClientSession, base: str, path: str, form: dict[str, str],
                 expect: str) -> None:
    page = await (await session.get(base + path)).text()
    token = CSRF.search(page)
    assert token, f"no CSRF token on {path}"
    async with session.post(base + path, data={"csrf_token": token.group(1), **form},
                            allow_redirects=False) as r:
        if r.status not in (302, 303):
            raise RuntimeError(f"login on {path} failed: {r.status}")
    async with session.get(base + expect) as r:
        if r.status != 200:
            raise RuntimeError(f"{expect} after login: {r.status}")


@contextlib.asynccontextmanager
async def portal_workers(backend: str, dataset: str) -> AsyncIterator[str]:
    """``WORKERS`` portal processes on one free port, as ``renraku web`` runs them; yields
    their base URL and stops them after the block."""
    port = _free_port()
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.portal", "serve", db_url(backend, dataset), str(port),
        NOW[dataset].isoformat()) for _ in range(WORKERS)]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            await asyncio.wait_for(proc.wait(), 10)


async def listening(session: aiohttp.ClientSession, url: str) -> None:
    """Until the workers answer ``url``: up to 60 s (their start-up on a loaded machine)."""
    for _ in range(600):
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(url) as r:
                if r.status == 200:
                    return
        await asyncio.sleep(0.1)


async def staff_login(session: aiohttp.ClientSession, base: str) -> None:
    await _login(session, base, "/staff/login", {
        "email": "bench@example.jp", "password": PASSWORD, "next": "/staff/"}, "/staff/")


class _Tally:
    """Latencies of the page's good answers (200) and a count of the rest."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.started = time.perf_counter()

    async def get(self, session: aiohttp.ClientSession, url: str) -> None:
        t0 = time.perf_counter()
        try:
            async with session.get(url, allow_redirects=False) as r:
                await r.read()
                ok = r.status == 200
        except aiohttp.ClientError:
            ok = False
        if ok:
            self.latencies.append((time.perf_counter() - t0) * 1000)
        else:
            self.errors += 1

    def summary(self) -> dict[str, object]:
        wall = time.perf_counter() - self.started
        return {"requests": len(self.latencies), "errors": self.errors,
                "rps": len(self.latencies) / wall, "p50_ms": percentile(self.latencies, 50),
                "p99_ms": percentile(self.latencies, 99),
                "max_ms": max(self.latencies, default=float("nan"))}


async def hammer(session: aiohttp.ClientSession, url: str, seconds: float,
                 concurrency: int) -> dict[str, object]:
    tally = _Tally()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            await tally.get(session, url)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally.summary()


async def steady(session: aiohttp.ClientSession, url: str, seconds: float,
                 rate: float) -> dict[str, object]:
    """Open loop: requests start at random (Poisson) moments, ``rate`` a second on
    average, however long the answers take; latency includes any queueing."""
    tally = _Tally()
    arrivals = random.Random(7)
    tasks = []
    at = 0.0
    while at < seconds:
        await asyncio.sleep(max(0.0, tally.started + at - time.perf_counter()))
        tasks.append(asyncio.create_task(tally.get(session, url)))
        at += arrivals.expovariate(rate)
    await asyncio.gather(*tasks)
    return tally.summary()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_one(backend: str, dataset: str) -> list[dict[str, object]]:
    t0 = time.perf_counter()
    info = await prepare(backend, dataset)
    setup_s = time.perf_counter() - t0
    rows = []
    async with portal_workers(backend, dataset) as base:
        connector = aiohttp.TCPConnector(limit=0)  # the steady load may need more than 16
        # unsafe=True: keep cookies from an IP-address host (127.0.0.1).
        async with aiohttp.ClientSession(connector=connector,
                                         cookie_jar=aiohttp.CookieJar(unsafe=True)) as guardian, \
                aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as staff:
            await listening(guardian, base + "/login")
            await _login(guardian, base, "/login", {
                "identifier": str(info["guardian_email"]), "password": PASSWORD, "next": "/"},
                "/")
            await staff_login(staff, base)
            month = f"/staff/classes/{info['class_id']}/month"
            async with guardian.get(base + "/home", allow_redirects=False) as r:
                home = r.headers.get("Location", "/home")  # /home redirects to /c/<child>
            for page, session, path in (("guardian home", guardian, home),
                                        ("month register", staff, month)):
                await hammer(session, base + path, 1.0, 4)  # warm-up
                # One request at a time: the page's own service time, no queueing.
                alone = await hammer(session, base + path, min(DURATION_S, 3.0), 1)
                paced = await steady(session, base + path, DURATION_S, RATE)
                result = await hammer(session, base + path, DURATION_S, CONCURRENCY)
                rows.append({"backend": backend, "dataset": dataset, "page": page,
                             "path": path, "setup_s": round(setup_s, 1), "workers": WORKERS,
                             **result, "alone_p50_ms": alone["p50_ms"],
                             "alone_p99_ms": alone["p99_ms"], "rate": RATE,
                             "rate_p50_ms": paced["p50_ms"], "rate_p99_ms": paced["p99_ms"],
                             "rate_errors": paced["errors"]})
    return rows


async def main(backends: tuple[str, ...] = ("sqlite", "postgresql")) -> dict[str, object]:
    rows: list[dict[str, object]] = []
    for dataset in ("demo", "city"):
        for backend in backends:
            rows += await run_one(backend, dataset)
    print(table(f"Portal: {WORKERS} worker process(es); {RATE:.0f} req/s steady, then "
                f"{CONCURRENCY} in flight; {DURATION_S:.0f} s each (client in this process)",
                ["db", "data", "page", "1 at a time: p50 ms", "p99 ms",
                 f"{RATE:.0f} req/s: p50 ms", "p99 ms", f"{CONCURRENCY} in flight: req/s",
                 "p50 ms", "p99 ms", "errors"],
                [[r["backend"], r["dataset"], r["page"], r["alone_p50_ms"], r["alone_p99_ms"],
                  r["rate_p50_ms"], r["rate_p99_ms"], r["rps"], r["p50_ms"], r["p99_ms"],
                  int(r["errors"]) + int(r["rate_errors"])]  # type: ignore[call-overload]
                 for r in rows]))
    target = [r for r in rows if r["dataset"] == "city" and r["page"] == "month register"]
    verdict = {}
    for r in target:
        for label, key in (("1 at a time", "alone_p99_ms"), (f"{RATE:.0f} req/s", "rate_p99_ms"),
                           (f"{CONCURRENCY} in flight", "p99_ms")):
            verdict[f"{r['backend']} ({label})"] = float(r[key]) < 200  # type: ignore[arg-type]
    print(f"target month register p99 < 200 ms on the city DB: {verdict}")
    path = save("portal", {"workers": WORKERS, "rate": RATE, "concurrency": CONCURRENCY,
                           "duration_s": DURATION_S, "rows": rows, "target_met": verdict})
    print(f"-> {path}\n")
    return {"rows": rows}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        asyncio.run(main(tuple(sys.argv[1:]) or ("sqlite", "postgresql")))
