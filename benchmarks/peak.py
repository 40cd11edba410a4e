"""Morning peak on the absence line: N simultaneous inbound calls over SIP through the
carrier simulator, each a full report (absence, illness, confirm, goodbye), N escalating
10 → 50 → 100 → 200 → … until calls fail.

Callers think before each key (0.5–2.5 s, seeded), as people do; a last run at the top
level presses every key the moment its prompt starts ("lockstep"): all N confirm within
the same few hundred milliseconds, the worst burst the database can get.

The FastAGI server runs in a process of its own (benchmarks.agi_process), apart from
this one, which drives the phones.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.agi_process import AgiProcess
from benchmarks.phones import (
    NOW,
    StepTimer,
    carrier_ami_pool,
    cpu_seconds,
    families,
    pooled_phone,
    start_lines,
)
from benchmarks.stats import failures, percentile, save, table

DB = os.environ.get("RENRAKU_BENCH_PEAK_DB", "sqlite")  # or postgresql
LEVELS = tuple(int(n) for n in os.environ.get("RENRAKU_BENCH_PEAK", "10,50,100,200").split(","))
THINK_S = (0.5, 2.5)
WAIT_S = 30  # a caller kept waiting this long for the next prompt counts as failed
QUICK_ABSENCE = [("absence.welcome", "1"), ("absence.kind_menu", "1"),
                 ("absence.reason_menu", "1"), ("absence.symptom_menu", "1"),
                 ("absence.about_child", "1"),
                 ("absence.recorded", "2"), ("absence.goodbye", "")]


async def one_call(lines, number: str, setup: list[float], pool, paced: bool) -> None:  # type: ignore[no-untyped-def]
    phone = pooled_phone(lines, number, pool)
    think = random.Random(number)
    t0 = time.perf_counter()
    stage = "call set-up"
    try:
        await phone.call(within=WAIT_S)
        setup.append((time.perf_counter() - t0) * 1000)  # Originate -> FastAGI has the call
        after = 0
        for fragment, keys in QUICK_ABSENCE:
            stage = f"waiting for {fragment}"
            after = await phone.wait_prompt(fragment, after=after, within=WAIT_S)
            if keys:
                if paced:
                    await asyncio.sleep(think.uniform(*THINK_S))
                await phone.press(keys, gap=0.25)
        stage = "hang-up"
        await phone.wait_end(within=WAIT_S)
    except TimeoutError as exc:
        heard = phone.played[-1] if phone.record else "nothing"
        raise TimeoutError(f"{WAIT_S} s timeout {stage} (last prompt sent: {heard})") from exc


async def main() -> dict[str, object]:
    from sqlalchemy import func, select

    from models import AbsenceReport
    from models.db import create_engine, session_factory
    from models.migrate import upgrade
    from renraku.app import App
    from renraku.clock import FakeClock

    lines = await start_lines()
    pool = await carrier_ami_pool(lines)
    rows: list[dict[str, object]] = []
    errors: list[str] = []
    server: AgiProcess | None = None
    try:
        if DB == "postgresql":
            from benchmarks.portal import PG_ADMIN, fresh_pg

            await fresh_pg("renraku_bench_peak")
            url = f"{PG_ADMIN}/renraku_bench_peak"
        else:
            db = Path(tempfile.mkdtemp(prefix="renraku-bench-peak-")) / "peak.db"
            url = f"sqlite+aiosqlite:///{db}"
        await upgrade(url)
        engine = create_engine(url, pool_size=lines.settings.database_pool_size)
        app = App(lines.settings, FakeClock(NOW), engine, session_factory(engine))
        runs = [("paced", n) for n in LEVELS] + [("lockstep", max(LEVELS))]
        numbers = [[f"090{k}{i:07d}" for i in range(n)] for k, (_, n) in enumerate(runs, 1)]
        await families(app, [x for ns in numbers for x in ns])
        server = await AgiProcess(lines).start(url)
        for (pace, n), callers in zip(runs, numbers, strict=True):
            if pace == "paced" and any(r["failed"] and r["pace"] == pace for r in rows):
                continue  # the escalation broke at a lower level already
            server.timer = timer = StepTimer()
            pids = (server.pid, lines.ivr.pid(), lines.carrier.pid(), os.getpid())
            cpu0 = [cpu_seconds(pid) for pid in pids]
            async with app.sessions() as s:
                before = await s.scalar(select(func.count()).select_from(AbsenceReport))
            started = time.perf_counter()
            setup: list[float] = []
            results = await asyncio.gather(
                *(one_call(lines, x, setup, pool, pace == "paced") for x in callers),
                return_exceptions=True)
            wall = time.perf_counter() - started
            await asyncio.sleep(0.5)  # the last step lines from the server
            server.timer = None
            cpu = [100 * (cpu_seconds(pid) - c0) / wall for pid, c0 in zip(pids, cpu0, strict=True)]
            async with app.sessions() as s:
                written = await s.scalar(select(func.count()).select_from(AbsenceReport))
            failed = [r for r in results if isinstance(r, BaseException)]
            errors += failures(f"{pace} N={n}", failed)
            row = {"pace": pace, "calls": n, "completed": n - len(failed), "failed": len(failed),
                   "reports_written": (written or 0) - (before or 0), "wall_s": wall,
                   **timer.summary(), "setup_p50_ms": percentile(setup, 50),
                   "setup_p99_ms": percentile(setup, 99), "db": DB,
                   "cpu_fastagi_pct": cpu[0], "cpu_ivr_asterisk_pct": cpu[1],
                   "cpu_carrier_asterisk_pct": cpu[2], "cpu_driver_pct": cpu[3]}
            rows.append(row)
            print(f"  {pace} N={n}: {row['completed']}/{n} completed in {wall:.1f} s",
                  file=sys.stderr)
            await asyncio.sleep(3)  # let every channel hang up before the next level
        await engine.dispose()
    finally:
        if server is not None:
            await server.stop()
        for client in pool:
            client.close()
        await lines.stop()
    print(table("Morning peak: simultaneous inbound calls, each a full absence report "
                "(step = key arrives at FastAGI -> next command written)",
                ["db", "pace", "calls", "done", "failed", "wall s", "setup p50 ms", "setup p99 ms",
                 "step p50 ms", "step p99 ms",
                 "step max ms", "CPU FastAGI %", "CPU IVR Asterisk %",
                 "CPU carrier %", "CPU phones %"],
                [[r["db"], r["pace"], r["calls"], r["completed"], r["failed"], r["wall_s"],
                  r["setup_p50_ms"], r["setup_p99_ms"], r["step_p50_ms"], r["step_p99_ms"],
                  r["step_max_ms"], r["cpu_fastagi_pct"],
                  r["cpu_ivr_asterisk_pct"], r["cpu_carrier_asterisk_pct"],
                  r["cpu_driver_pct"]] for r in rows]))
    for e in errors[:10]:
        print("  failure:", e)
    for r in rows:
        if r["slow_steps_next_command"]:
            print(f"  {r['pace']} N={r['calls']}: steps over 50 ms, by next command:",
                  r["slow_steps_next_command"])
    path = save(f"peak-{DB}", {"levels": list(LEVELS), "think_s": THINK_S, "rows": rows,
                               "failures": errors[:50],
                               "note": "CPU % of one core; 'driver' is the process that "
                                       "drives the virtual phones (AMI Originate/PlayDTMF)"})
    print(f"-> {path}\n")
    return {"rows": rows}


if __name__ == "__main__":
    asyncio.run(main())
