"""Morning peak on the absence line: N simultaneous inbound calls over SIP through the
carrier simulator, each a full report (absence, illness, confirm, goodbye), at each level
of RENRAKU_BENCH_PEAK, every level RENRAKU_BENCH_PEAK_RUNS times (3): the table gives the
median and the worst of the runs' p99s, since one run's p99 moves with whatever else the
machine does.

Callers think before each key (0.5–2.5 s, seeded), as people do; "lockstep" runs at the
top paced level below 300 (or RENRAKU_BENCH_PEAK_LOCKSTEP) press every key the moment its
prompt starts: all N confirm within the same few hundred milliseconds, the worst burst the
database can get.

The floor (benchmarks.floor): after the first run of each level the same callers call a
dialplan-only copy of the same IVR on the same Asterisk. Its Asterisk CPU per call and its
key-to-next-prompt latency are what the call costs without Renraku; the table gives
Renraku's figures as ratios to it.

The FastAGI server runs in a process of its own (benchmarks.agi_process), apart from
this one, which drives the phones; it also reports where each confirm's time went.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.agi_process import AgiProcess
from benchmarks.floor import Floor, floor_phone
from benchmarks.phones import (
    NOW,
    StepTimer,
    bench_voice,
    carrier_ami_pool,
    cpu_seconds,
    families,
    pooled_phone,
    start_lines,
)
from benchmarks.stats import failures, percentile, save, table

DB = os.environ.get("RENRAKU_BENCH_PEAK_DB", "sqlite")  # or postgresql
LEVELS = tuple(int(n) for n in os.environ.get("RENRAKU_BENCH_PEAK", "50,200,300").split(","))
RUNS = int(os.environ.get("RENRAKU_BENCH_PEAK_RUNS", "3"))
LOCKSTEP = int(os.environ.get("RENRAKU_BENCH_PEAK_LOCKSTEP", "0")) or max(
    [n for n in LEVELS if n < 300] or LEVELS)
THINK_S = (0.5, 2.5)
WAIT_S = 30  # a caller kept waiting this long for the next prompt counts as failed
# The first sound of each step, and the keys pressed on hearing it start
QUICK_ABSENCE = [("absence.welcome", "1"), ("absence.report_for_date", "1"),
                 ("absence.reason_menu", "1"), ("absence.symptom_menu", "1"),
                 ("absence.about_child", "1"),
                 ("absence.recorded", "2"), ("absence.goodbye", "")]
# The sounds the flow plays (bench voice tones), made before the floor needs them
FLOOR_SOUNDS = [("absence.welcome", {}), ("absence.main_menu", {}),
                ("absence.language_key", {}), ("absence.report_for_date", {"date": "x"}),
                ("absence.kind_menu", {}), ("absence.reason_menu", {}),
                ("absence.about_child", {"name": "x"}), ("absence.on_date", {"date": "x"}),
                ("absence.kind.absence", {}), ("absence.reason.illness", {}),
                ("absence.symptom_menu", {}), ("absence.symptom.fever", {}),
                ("absence.confirm_keys", {}), ("absence.recorded", {}),
                ("absence.after_menu", {}), ("absence.goodbye", {})]


@dataclass
class Timing:
    """Driver-side times, the same for Renraku and the floor: answer (Originate) to the
    first prompt, and a key played into the call to the next prompt starting."""

    first_prompt_ms: list[float] = field(default_factory=list)
    key_ms: list[float] = field(default_factory=list)
    setup_ms: list[float] = field(default_factory=list)  # Originate → FastAGI has the call


async def one_call(phone: Any, timing: Timing, paced: bool) -> None:
    think = random.Random(phone.number)
    t0 = time.perf_counter()
    stage = "call set-up"
    try:
        await phone.call(within=WAIT_S)
        timing.setup_ms.append((time.perf_counter() - t0) * 1000)
        after, key_at = 0, 0.0
        for fragment, keys in QUICK_ABSENCE:
            stage = f"waiting for {fragment}"
            after = await phone.wait_prompt(fragment, after=after, within=WAIT_S)
            heard = phone.heard_at(after - 1)
            if key_at:
                timing.key_ms.append((heard - key_at) * 1000)
            else:
                timing.first_prompt_ms.append((heard - t0) * 1000)
            if keys:
                if paced:
                    await asyncio.sleep(think.uniform(*THINK_S))
                key_at = await phone.press(keys, gap=0.25)
        stage = "hang-up"
        await phone.wait_end(within=WAIT_S)
    except TimeoutError as exc:
        heard = phone.played[-1] if phone.record else "nothing"
        raise TimeoutError(f"{WAIT_S} s timeout {stage} (last prompt sent: {heard})") from exc


class DatabaseCpu:
    """CPU of the PostgreSQL backends serving the benchmark's database (SQLite runs inside
    the FastAGI process, whose CPU already counts it)."""

    def __init__(self, app: Any, postgresql: bool = DB == "postgresql") -> None:
        self.app, self.postgresql = app, postgresql
        self.start: dict[int, float] = {}

    async def _backends(self) -> dict[int, float]:
        if not self.postgresql:
            return {}
        from sqlalchemy import text

        async with self.app.sessions() as s:
            pids = await s.scalars(text("SELECT pid FROM pg_stat_activity "
                                        "WHERE datname = current_database()"))
            return {pid: cpu_seconds(pid) for pid in pids}

    async def begin(self) -> None:
        self.start = await self._backends()

    async def seconds(self) -> float:
        return sum(cpu - self.start.get(pid, 0.0) for pid, cpu in (await self._backends()).items())


def waiting_s(pid: int | None) -> float:
    """Seconds the process's threads were ready to run but waited for a core
    (/proc/<pid>/task/*/schedstat, second field): on a loaded machine a process that uses
    little CPU may be starved rather than idle."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat") if pid else ():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(stat.read_text().split()[1])
    return total / 1e9


async def cpu_each_second(pid: int | None, seen: list[float]) -> None:
    """The process's CPU (% of one core) in each second of the run, into ``seen``: is one
    FastAGI process the limit? Its average over a run hides the bursts."""
    last, at = cpu_seconds(pid), time.perf_counter()
    while True:
        await asyncio.sleep(1.0)
        now_cpu, now = cpu_seconds(pid), time.perf_counter()
        seen.append(100 * (now_cpu - last) / (now - at))
        last, at = now_cpu, now


async def run_level(calls: list[Any], pids: tuple[int | None, ...], paced: bool,
                    db_cpu: DatabaseCpu | None = None) -> dict[str, Any]:
    """One level: the calls at once; CPU seconds per process, timings, failures."""
    cpu0 = [cpu_seconds(pid) for pid in pids]
    kernel0 = cpu_seconds(pids[0], kernel_only=True)
    wait0 = waiting_s(pids[0])
    if db_cpu is not None:
        await db_cpu.begin()
    timing = Timing()
    started = time.perf_counter()
    fastagi_pct = [0.0]
    busiest = asyncio.ensure_future(cpu_each_second(pids[0], fastagi_pct))
    results = await asyncio.gather(*(one_call(phone, timing, paced) for phone in calls),
                                   return_exceptions=True)
    wall = time.perf_counter() - started
    busiest.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await busiest
    await asyncio.sleep(0.5)  # the last step lines from the server
    cpu = [cpu_seconds(pid) - c0 for pid, c0 in zip(pids, cpu0, strict=True)]
    waited = waiting_s(pids[0]) - wait0
    return {"wall": wall, "cpu": cpu, "timing": timing, "busiest_pct": max(fastagi_pct),
            "fastagi_kernel_s": cpu_seconds(pids[0], kernel_only=True) - kernel0,
            "fastagi_waiting_s": waited,
            "db_cpu_s": await db_cpu.seconds() if db_cpu is not None else 0.0,
            "failed": [r for r in results if isinstance(r, BaseException)]}


def _p(values: list[float], pct: float) -> float:
    return percentile(values, pct)


def summarise(runs: list[dict[str, Any]], floor: dict[str, Any] | None) -> dict[str, Any]:
    """One row per level: median and worst of the runs' p99s, CPU per call, the floor."""
    p99 = [r["step_p99_ms"] for r in runs]
    key99 = [r["key_p99_ms"] for r in runs]
    row = {k: runs[0][k] for k in ("db", "pace", "calls")}
    n = row["calls"]
    row.update({
        "runs": len(runs), "failed": sum(r["failed"] for r in runs),
        "step_p99_median_ms": statistics.median(p99), "step_p99_worst_ms": max(p99),
        "key_p99_median_ms": statistics.median(key99), "key_p99_worst_ms": max(key99),
        "first_prompt_p99_worst_ms": max(r["first_prompt_p99_ms"] for r in runs),
        "renraku_cpu_ms_per_call": statistics.median(
            1000 * (r["cpu_fastagi_s"] + r["cpu_db_s"]) / n for r in runs),
        "fastagi_kernel_cpu_ms_per_call": statistics.median(
            1000 * r["cpu_fastagi_kernel_s"] / n for r in runs),
        "ivr_cpu_ms_per_call": statistics.median(1000 * r["cpu_ivr_s"] / n for r in runs),
        "confirm_p99_worst_ms": max(r["confirm_p99_ms"] for r in runs),
        "load1_max": max(r.get("load1", 0.0) for r in runs),
        "fastagi_cpu_pct_max": max(r.get("fastagi_cpu_pct", 0.0) for r in runs),
        "fastagi_cpu_busiest_s_pct": max(r.get("fastagi_cpu_busiest_s_pct", 0.0) for r in runs),
    })
    if floor is not None:
        row.update({
            "floor_failed": floor["failed"], "floor_key_p99_ms": floor["key_p99_ms"],
            "floor_first_prompt_p99_ms": floor["first_prompt_p99_ms"],
            "floor_ivr_cpu_ms_per_call": 1000 * floor["cpu_ivr_s"] / n,
        })
        row["cpu_ratio"] = row["renraku_cpu_ms_per_call"] / max(
            row["floor_ivr_cpu_ms_per_call"], 1e-9)
        row["key_p99_ratio"] = row["key_p99_worst_ms"] / max(floor["key_p99_ms"], 1e-9)
    return row


async def main() -> dict[str, object]:
    from sqlalchemy import func, select

    from models import AbsenceReport
    from models.db import create_engine, session_factory
    from models.migrate import upgrade
    from renraku.app import App
    from renraku.clock import FakeClock

    lines = await start_lines()
    pool = await carrier_ami_pool(lines)
    runs_out: list[dict[str, Any]] = []
    floors: dict[tuple[str, int], dict[str, Any]] = {}
    errors: list[str] = []
    server: AgiProcess | None = None
    floor: Floor | None = None
    try:
        if DB == "postgresql":
            from benchmarks.portal import PG_ADMIN, PG_DB, fresh_pg

            await fresh_pg(f"{PG_DB}_peak")
            url = f"{PG_ADMIN}/{PG_DB}_peak"
        else:
            db = Path(tempfile.mkdtemp(prefix="renraku-bench-peak-")) / "peak.db"
            url = f"sqlite+aiosqlite:///{db}"
        await upgrade(url)
        engine = create_engine(url, pool_size=lines.settings.database_pool_size)
        app = App(lines.settings, FakeClock(NOW), engine, session_factory(engine))
        plan = [("paced", n) for n in LEVELS] + [("lockstep", LOCKSTEP)]
        plan = [(pace, n, k) for pace, n in plan for k in range(RUNS)]
        # Every run its own callers: "090" + 10 + run (2 digits; 0900… is no number) + 6
        numbers = [[f"090{r + 10:02d}{i:06d}" for i in range(n)]
                   for r, (_, n, _) in enumerate(plan)]
        await families(app, [x for ns in numbers for x in ns])
        voice = bench_voice(lines.settings)
        for key, fields in FLOOR_SOUNDS:
            await voice.phrase(key, "ja", **fields)
        floor = await Floor(lines).install()
        server = await AgiProcess(lines).start(url)
        db_cpu = DatabaseCpu(app)
        broken: set[str] = set()
        for (pace, n, k), callers in zip(plan, numbers, strict=True):
            if pace in broken and pace == "paced":
                continue  # the escalation broke at a lower level already
            server.timer = timer = StepTimer()
            server.confirms, server.lags = [], []
            pids = (server.pid, lines.ivr.pid(), lines.carrier.pid(), os.getpid())
            async with app.sessions() as s:
                before = await s.scalar(select(func.count()).select_from(AbsenceReport))
            got = await run_level([pooled_phone(lines, x, pool) for x in callers], pids,
                                  pace == "paced", db_cpu)
            server.timer = None
            async with app.sessions() as s:
                written = await s.scalar(select(func.count()).select_from(AbsenceReport))
            errors += failures(f"{pace} N={n} run {k + 1}", got["failed"])
            if got["failed"]:
                broken.add(pace)
            wall, cpu, timing = got["wall"], got["cpu"], got["timing"]
            confirms = server.confirms
            row = {"db": DB, "pace": pace, "calls": n, "run": k + 1, "load1": os.getloadavg()[0],
                   "completed": n - len(got["failed"]), "failed": len(got["failed"]),
                   "reports_written": (written or 0) - (before or 0), "wall_s": wall,
                   **timer.summary(),
                   "setup_p50_ms": _p(timing.setup_ms, 50),
                   "first_prompt_p50_ms": _p(timing.first_prompt_ms, 50),
                   "first_prompt_p99_ms": _p(timing.first_prompt_ms, 99),
                   "key_p50_ms": _p(timing.key_ms, 50), "key_p99_ms": _p(timing.key_ms, 99),
                   "cpu_fastagi_s": cpu[0], "cpu_fastagi_kernel_s": got["fastagi_kernel_s"],
                   "cpu_db_s": got["db_cpu_s"], "cpu_ivr_s": cpu[1],
                   "cpu_carrier_s": cpu[2], "cpu_driver_s": cpu[3],
                   "fastagi_cpu_pct": 100 * cpu[0] / wall,
                   "fastagi_cpu_busiest_s_pct": got["busiest_pct"],
                   "fastagi_waiting_for_core_pct": 100 * got["fastagi_waiting_s"] / wall,
                   "confirm_p50_ms": _p([c["ms"] for c in confirms], 50),
                   "confirm_p99_ms": _p([c["ms"] for c in confirms], 99),
                   "confirm_db_p99_ms": _p([c["db_ms"] for c in confirms], 99),
                   "confirm_before_first_statement_p99_ms": _p(
                       [c["before_ms"] for c in confirms], 99),
                   "confirm_statements": statistics.mean([c["n"] for c in confirms] or [0]),
                   "loop_lag_max_ms": max(server.lags, default=0.0),
                   "loop_lags_over_50ms": sum(1 for x in server.lags if x > 50)}
            runs_out.append(row)
            print(f"  {pace} N={n} run {k + 1}: {row['completed']}/{n} completed in "
                  f"{wall:.1f} s, step p99 {row['step_p99_ms']:.0f} ms, FastAGI CPU "
                  f"{row['fastagi_cpu_pct']:.0f} % (busiest second "
                  f"{row['fastagi_cpu_busiest_s_pct']:.0f} %, waiting for a core "
                  f"{row['fastagi_waiting_for_core_pct']:.0f} %), load {row['load1']:.1f}",
                  file=sys.stderr)
            await asyncio.sleep(3)  # let every channel hang up before the next level
            if k == 0 and (pace, n) not in floors:
                floor.heard.clear()
                got = await run_level([floor_phone(lines, floor, x, pool) for x in callers],
                                      pids, pace == "paced")
                errors += failures(f"floor {pace} N={n}", got["failed"])
                floors[(pace, n)] = {
                    "pace": pace, "calls": n, "failed": len(got["failed"]),
                    "wall_s": got["wall"], "cpu_ivr_s": got["cpu"][1],
                    "cpu_carrier_s": got["cpu"][2],
                    "key_p50_ms": _p(got["timing"].key_ms, 50),
                    "key_p99_ms": _p(got["timing"].key_ms, 99),
                    "first_prompt_p99_ms": _p(got["timing"].first_prompt_ms, 99)}
                print(f"  floor {pace} N={n}: {n - len(got['failed'])}/{n} completed",
                      file=sys.stderr)
                await asyncio.sleep(3)
        await engine.dispose()
    finally:
        if server is not None:
            await server.stop()
        if floor is not None:
            floor.close()
        for client in pool:
            client.close()
        await lines.stop()
    levels = sorted({(r["pace"], r["calls"]) for r in runs_out}, key=lambda x: (x[0], x[1]))
    summary = [summarise([r for r in runs_out if (r["pace"], r["calls"]) == lv],
                         floors.get(lv)) for lv in levels]
    print(table("Morning peak, per run (step = key arrives at FastAGI -> next command "
                "written; key->prompt = key played into the call -> next prompt starts, "
                "seen by the driver; CPU ms per call)",
                ["db", "pace", "calls", "run", "done", "failed", "wall s", "1st prompt p99",
                 "step p50", "step p99", "key->prompt p99", "confirm p99", "confirm DB p99",
                 "confirm stmts", "loop lag max", "FastAGI+DB", "IVR Asterisk",
                 "FastAGI CPU %", "busiest 1 s %", "waiting for a core %", "load"],
                [[r["db"], r["pace"], r["calls"], r["run"], r["completed"], r["failed"],
                  r["wall_s"], r["first_prompt_p99_ms"], r["step_p50_ms"], r["step_p99_ms"],
                  r["key_p99_ms"], r["confirm_p99_ms"], r["confirm_db_p99_ms"],
                  r["confirm_statements"], r["loop_lag_max_ms"],
                  1000 * (r["cpu_fastagi_s"] + r["cpu_db_s"]) / r["calls"],
                  1000 * r["cpu_ivr_s"] / r["calls"], r["fastagi_cpu_pct"],
                  r["fastagi_cpu_busiest_s_pct"], r["fastagi_waiting_for_core_pct"],
                  r["load1"]] for r in runs_out]))
    print()
    print(table(f"Morning peak, {RUNS} runs a level, against the floor (dialplan-only IVR, "
                "same Asterisk, same callers)",
                ["db", "pace", "calls", "runs", "failed", "step p99 median", "step p99 worst",
                 "key->prompt p99 worst", "floor key->prompt p99", "ratio",
                 "1st prompt p99 worst", "floor 1st prompt p99",
                 "FastAGI+DB CPU ms/call", "of it FastAGI in the kernel",
                 "floor Asterisk CPU ms/call", "ratio",
                 "IVR Asterisk CPU ms/call (Renraku)", "FastAGI busiest 1 s %", "load max"],
                [[r["db"], r["pace"], r["calls"], r["runs"], r["failed"],
                  r["step_p99_median_ms"], r["step_p99_worst_ms"], r["key_p99_worst_ms"],
                  r.get("floor_key_p99_ms", "-"), r.get("key_p99_ratio", "-"),
                  r["first_prompt_p99_worst_ms"], r.get("floor_first_prompt_p99_ms", "-"),
                  r["renraku_cpu_ms_per_call"], r["fastagi_kernel_cpu_ms_per_call"],
                  r.get("floor_ivr_cpu_ms_per_call", "-"),
                  r.get("cpu_ratio", "-"), r["ivr_cpu_ms_per_call"],
                  r["fastagi_cpu_busiest_s_pct"], r["load1_max"]] for r in summary]))
    for e in errors[:10]:
        print("  failure:", e)
    for r in runs_out:
        if r["slow_steps_next_command"]:
            print(f"  {r['pace']} N={r['calls']} run {r['run']}: steps over 50 ms, by next "
                  "command:", r["slow_steps_next_command"])
    path = save(f"peak-{DB}", {"levels": list(LEVELS), "runs_per_level": RUNS,
                               "think_s": THINK_S, "summary": summary, "runs": runs_out,
                               "floor": list(floors.values()), "failures": errors[:50],
                               "note": "CPU in seconds per process over a run; 'driver' is "
                                       "the process that drives the virtual phones"})
    print(f"-> {path}\n")
    return {"rows": runs_out, "summary": summary}


if __name__ == "__main__":
    asyncio.run(main())
