"""The absence line's own CPU per call, without Asterisk: ``python -m benchmarks call-cpu``.

The peak bench measures the FastAGI server among two Asterisks and 200 phones on a 2-core
machine, where every figure moves with the load. Here the same server (the absence flow,
the calls' database as ``renraku run`` starts it, the bench voice) answers a scripted
Asterisk in a process of its own: per call it sends the AGI header, answers each command
as Asterisk would and presses the keys of a full report (absence, illness, fever, confirm,
goodbye), RENRAKU_BENCH_CPU_CONCURRENCY (20) calls at a time. The server's CPU-seconds
(all its threads) over RENRAKU_BENCH_CPU_CALLS (400) calls give its CPU per call.
RENRAKU_BENCH_CPU_DB=postgresql serves the calls from PostgreSQL instead of SQLite (the
write loop, as `renraku run` does); the CPU of its backends counts too.

The reference, measured in the same run, is the FastAGI transport alone: a route that
sends the very commands one real report sent (its command log), with no flow and no
database, to the same scripted Asterisk. flow ÷ transport is what Renraku's own work
costs over the protocol's. Each is measured RENRAKU_BENCH_CPU_RUNS (3) times, alternating;
the table gives the median.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.peak import DatabaseCpu
from benchmarks.phones import NOW, bench_voice, families
from benchmarks.stats import save, table

CALLS = int(os.environ.get("RENRAKU_BENCH_CPU_CALLS", "400"))
CONCURRENCY = int(os.environ.get("RENRAKU_BENCH_CPU_CONCURRENCY", "20"))
RUNS = int(os.environ.get("RENRAKU_BENCH_CPU_RUNS", "3"))
DB = os.environ.get("RENRAKU_BENCH_CPU_DB", "sqlite")  # or postgresql
# The first sound of a menu → the key pressed (benchmarks.peak's QUICK_ABSENCE)
KEYS = {"absence.welcome": "1", "absence.report_for_date": "1", "absence.reason_menu": "1",
        "absence.symptom_menu": "1", "absence.about_child": "1", "absence.recorded": "2"}


def _key_for(read_args: str) -> str:
    first = read_args.split(",")[1].split("&")[0].rsplit("/", 1)[-1]
    return next((key for sound, key in KEYS.items() if first.startswith(sound)), "")


async def _call(port: int, route: str, number: str, n: int) -> None:
    """One call as Asterisk makes it: the header, then a reply to every command."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    header = {"agi_network": "yes", "agi_network_script": route,
              "agi_request": f"agi://127.0.0.1:{port}/{route}", "agi_channel": f"PJSIP/bench-{n}",
              "agi_language": "ja", "agi_type": "PJSIP", "agi_uniqueid": f"{time.time()}.{n}",
              "agi_callerid": number, "agi_calleridname": "", "agi_callingpres": "0"}
    writer.write(("".join(f"{k}: {v}\n" for k, v in header.items()) + "\n").encode())
    key = ""
    while line := await reader.readline():
        cmd = line.decode().strip().replace('"', "")
        if cmd.startswith("EXEC Read"):
            key, reply = _key_for(cmd), "200 result=0"
        elif cmd.startswith("GET VARIABLE RENRAKU_KEYS"):
            reply = f"200 result=1 ({key})" if key else "200 result=0"
        elif cmd.startswith("GET VARIABLE"):
            reply = "200 result=1 (OK)"
        elif cmd.startswith("HANGUP"):
            writer.write(b"200 result=1\n")
            break
        else:
            reply = "200 result=0 endpos=100"
        writer.write(reply.encode() + b"\n")
        await writer.drain()
    writer.close()


def _asterisk(port: int, route: str, numbers: list[str]) -> None:
    """The scripted Asterisk, in a process of its own (its CPU is not the server's)."""
    async def main() -> None:
        slots = asyncio.Semaphore(CONCURRENCY)

        async def one(n: int, number: str) -> None:
            async with slots:
                await _call(port, route, number, n)

        await asyncio.gather(*(one(n, number) for n, number in enumerate(numbers)))

    asyncio.run(main())


async def _round(port: int, route: str, numbers: list[str],
                 database: DatabaseCpu) -> tuple[float, float]:
    """The CPU ms per call of the server and of the database's own processes while the
    scripted Asterisk makes these calls."""
    child = multiprocessing.get_context("spawn").Process(target=_asterisk,
                                                          args=(port, route, numbers))
    await database.begin()
    before = time.process_time()
    child.start()
    await asyncio.to_thread(child.join)
    if child.exitcode != 0:
        raise RuntimeError(f"the scripted Asterisk failed (exit {child.exitcode})")
    server = time.process_time() - before
    return server * 1000 / len(numbers), await database.seconds() * 1000 / len(numbers)


async def main() -> None:
    from sqlalchemy import func, select

    from ivr import absence_flow
    from ivr.fastagi import AGIChannel, FastAGIServer
    from models import AbsenceReport
    from models.db import create_engine, session_factory
    from models.migrate import upgrade
    from renraku.app import App
    from renraku.clock import FakeClock
    from renraku.settings import load_settings

    data = Path(tempfile.mkdtemp(prefix="renraku-bench-cpu-"))
    settings = load_settings(None).replace(data_dir=data, testing=True)
    if DB == "postgresql":
        from benchmarks.portal import PG_ADMIN, PG_DB, fresh_pg

        await fresh_pg(f"{PG_DB}_cpu")
        url = f"{PG_ADMIN}/{PG_DB}_cpu"
    else:
        url = f"sqlite+aiosqlite:///{data / 'cpu.db'}"
    await upgrade(url)
    engine = create_engine(url)
    app = App(settings, FakeClock(NOW), engine, session_factory(engine))
    numbers = [[f"0901{r:02d}{i:05d}" for i in range(CALLS)] for r in range(RUNS + 1)]
    await families(app, [n for ns in numbers for n in ns])
    app.start_call_database()  # as `renraku run` does
    voice = bench_voice(settings)
    recorded: list[str] = []

    async def absence(agi: AGIChannel) -> None:
        await absence_flow.handle(agi, app, voice)
        recorded[:] = recorded or [cmd for _t, cmd, _reply in agi.log]

    async def transport(agi: AGIChannel) -> None:
        for cmd in recorded:
            await agi.command(cmd)

    server = FastAGIServer()
    server.route("absence", absence)
    server.route("transport", transport)
    await absence_flow.warm_up(app)
    port = await server.start("127.0.0.1", 0)
    database = DatabaseCpu(app, postgresql=DB == "postgresql")
    try:
        await _round(port, "absence", numbers[0], database)  # warm: caches, statements
        flow, floor, in_db = [], [], []
        for run in range(RUNS):
            floor.append(sum(await _round(port, "transport", numbers[run + 1], database)))
            own_ms, db_ms = await _round(port, "absence", numbers[run + 1], database)
            flow.append(own_ms + db_ms)
            in_db.append(db_ms)
            print(f"  run {run + 1}: flow {flow[-1]:.2f} ms/call (of it the database's "
                  f"processes {db_ms:.2f}), transport alone {floor[-1]:.2f} ms/call",
                  flush=True)
        async with app.sessions() as s:
            reports = await s.scalar(select(func.count()).select_from(AbsenceReport)) or 0
    finally:
        await server.stop(grace_s=1)
        await app.close()
    expected = CALLS * (RUNS + 1)
    if reports != expected:
        raise RuntimeError(f"{reports} reports written of {expected}: the calls did not finish")
    row = {"db": DB, "calls": CALLS, "concurrency": CONCURRENCY, "runs": RUNS,
           "commands_per_call": len(recorded), "flow_ms": statistics.median(flow),
           "database_ms": statistics.median(in_db), "transport_ms": statistics.median(floor),
           "flow_runs_ms": flow, "database_runs_ms": in_db, "transport_runs_ms": floor}
    row["ratio"] = row["flow_ms"] / row["transport_ms"]
    print(table("Absence line CPU per call without Asterisk (server process, all threads, "
                "and PostgreSQL's backends; median of the runs)",
                ["db", "calls a run", "at a time", "runs", "AGI commands a call",
                 "flow ms/call", "of it the database's processes", "transport alone ms/call",
                 "ratio"],
                [[DB, CALLS, CONCURRENCY, RUNS, len(recorded), row["flow_ms"],
                  row["database_ms"], row["transport_ms"], row["ratio"]]]))
    # SQLite keeps the name `make bench` has always written; PostgreSQL's sits beside it
    print(f"-> {save('call-cpu' if DB == 'sqlite' else f'call-cpu-{DB}', {'result': row})}")
