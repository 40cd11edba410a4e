"""FastAGI vs classic AGI on the same absence flow: the same full report, the same
database, called through the carrier simulator over SIP at the same concurrency.

Classic AGI (dial 8001) starts a Python process per call inside Asterisk's root, which
imports the project, opens the database and then runs the flow over stdin/stdout; FastAGI
runs the flow as a task in the already-running server. Per-call overhead shows as the
time from the call's Originate to its first prompt and as CPU seconds per call (the
classic scripts' CPU is counted in Asterisk's reaped-children time)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from benchmarks.phones import (
    NOW,
    TICK,
    bench_voice,
    carrier_ami_pool,
    cpu_seconds,
    families,
    pooled_phone,
    start_lines,
)
from benchmarks.stats import failures, percentile, save, table
from ivr.fastagi import played_names

CALLS = int(os.environ.get("RENRAKU_BENCH_CLASSIC_CALLS", "40"))
CONCURRENCY = int(os.environ.get("RENRAKU_BENCH_CLASSIC_C", "10"))
POLL_S = 60.0  # how long a classic caller waits for each prompt
QUICK_ABSENCE = [("absence.welcome", "1"), ("absence.kind_menu", "1"),
                 ("absence.reason_menu", "1"), ("absence.symptom_menu", "1"),
                 ("absence.about_child", "1"),
                 ("absence.recorded", "2"), ("absence.goodbye", "")]


def cpu_with_children(pid: int | None) -> float:
    """utime + stime + cutime + cstime: a process and its children that have exited."""
    if not pid:
        return 0.0
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in f[11:15]) / TICK


class ClassicCaller:
    """What a classic call plays is seen in the IVR's AMI AGIExecStart events."""

    def __init__(self, lines, number: str, pool) -> None:  # type: ignore[no-untyped-def]
        self.lines, self.number = lines, number
        self.phone = pooled_phone(lines, number, pool, dialled="8001")
        self.seen_from = len(lines.ivr_ami_events)

    def _mine(self, kind: str) -> list[dict[str, str]]:
        return [e for e in self.lines.ivr_ami_events[self.seen_from:]
                if e.get("Event") == kind and e.get("CallerIDNum", "").endswith(self.number[-9:])]

    def played(self) -> list[str]:
        return [name for e in self._mine("AGIExecStart")
                for name in played_names(e.get("Command", ""))]

    async def run(self) -> float:
        t0 = time.perf_counter()
        await self.lines.carrier_ami.send_action({
            "Action": "Originate", "Channel": "PJSIP/8001@ivr", "Application": "Wait",
            "Data": "300", "Async": "true", "ChannelId": self.phone.id,
            "CallerID": f'"{self.number}" <{self.number}>'})
        await self.lines.wait_for(lambda: self.lines.carrier_channels.get(self.phone.id), 60)
        first = 0.0
        after = 0
        for fragment, keys in QUICK_ABSENCE:
            try:
                after = await _poll(lambda f=fragment, a=after: next(
                    (i + 1 for i, n in enumerate(self.played()) if i >= a and f in n), None))
            except TimeoutError:
                heard = (self.played() or ["nothing"])[-1]
                raise TimeoutError(f"{fragment} not heard in {POLL_S:.0f} s (last: {heard})"
                                   ) from None
            first = first or time.perf_counter() - t0
            if keys:
                await self.phone.press(keys, gap=0.25)
        await _poll(lambda: bool(self._mine("Hangup")))
        return first


async def _poll(predicate, within: float = POLL_S):  # type: ignore[no-untyped-def]
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        if result := predicate():
            return result
        await asyncio.sleep(0.02)
    raise TimeoutError("prompt not heard in time")


async def fastagi_call(lines, number: str, pool) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    phone = pooled_phone(lines, number, pool)
    await phone.call(within=60)
    first = 0.0
    after = 0
    for fragment, keys in QUICK_ABSENCE:
        after = await phone.wait_prompt(fragment, after=after, within=60)
        first = first or time.perf_counter() - t0
        if keys:
            await phone.press(keys, gap=0.25)
    await phone.wait_end(within=60)
    return first


async def main() -> dict[str, object]:
    from ivr import absence_flow
    from models.db import create_engine, session_factory
    from models.migrate import upgrade
    from renraku.app import App
    from renraku.clock import FakeClock

    lines = await start_lines()
    pool = await carrier_ami_pool(lines)
    rows: list[dict[str, object]] = []
    errors: list[str] = []
    try:
        data = lines.settings.data_dir.resolve()
        db = data / "classic-bench.db"  # inside the data folder: the chrooted script sees it
        url = f"sqlite+aiosqlite:///{db}"
        await upgrade(url)
        engine = create_engine(url)
        app = App(lines.settings, FakeClock(NOW), engine, session_factory(engine))
        toml = data / "asterisk" / "ivr" / "lib" / "classic-agi.toml"
        original = await asyncio.to_thread(toml.read_text)
        await asyncio.to_thread(toml.write_text, "".join(
            x for x in original.splitlines(keepends=True)
            if not x.startswith(("database_url", "testing", "fake_now")))
            + f'database_url = "{url}"\ntesting = true\nfake_now = "{NOW.isoformat()}"\n'
            '[extra]\ntest_voice = "tests.absence_fakes:ToneVoice"\n')
        numbers = {"FastAGI": [f"0905{i:07d}" for i in range(CALLS)],
                   "classic AGI (8001)": [f"0906{i:07d}" for i in range(CALLS)]}
        await families(app, [x for ns in numbers.values() for x in ns])
        voice = bench_voice(lines.settings)

        async def handler(agi):  # type: ignore[no-untyped-def]
            await absence_flow.handle(agi, app, voice)

        lines.route("absence", handler)
        for mode, nums in numbers.items():
            gate = asyncio.Semaphore(CONCURRENCY)

            async def one(number: str, mode: str = mode, gate: asyncio.Semaphore = gate) -> float:
                async with gate:
                    if mode == "FastAGI":
                        return await fastagi_call(lines, number, pool)
                    return await ClassicCaller(lines, number, pool).run()

            me, ivr = os.getpid(), lines.ivr.pid()
            c0 = (cpu_seconds(me), cpu_with_children(ivr))
            started = time.perf_counter()
            results = await asyncio.gather(*(one(x) for x in nums), return_exceptions=True)
            wall = time.perf_counter() - started
            c1 = (cpu_seconds(me), cpu_with_children(ivr))
            firsts = [r for r in results if isinstance(r, float)]
            failed = len(results) - len(firsts)
            errors += failures(mode, results)
            done = len(firsts)
            rows.append({
                "mode": mode, "calls": len(nums), "completed": done, "failed": failed,
                "wall_s": wall, "calls_per_s": done / wall,
                "first_prompt_p50_ms": 1000 * percentile(firsts, 50),
                "first_prompt_p99_ms": 1000 * percentile(firsts, 99),
                "cpu_fastagi_s_per_call": (c1[0] - c0[0]) / max(done, 1),
                "cpu_asterisk_s_per_call": (c1[1] - c0[1]) / max(done, 1),
            })
            print(f"  {mode}: {done}/{len(nums)} in {wall:.1f} s", file=sys.stderr)
            await asyncio.sleep(2)
        await asyncio.to_thread(toml.write_text, original)
        await engine.dispose()
    finally:
        for client in pool:
            client.close()
        await lines.stop()
    fast, classic = rows
    ratio = {
        "calls_per_s": fast["calls_per_s"] / classic["calls_per_s"],  # type: ignore[operator]
        "first_prompt_p50": classic["first_prompt_p50_ms"] / fast["first_prompt_p50_ms"],  # type: ignore[operator]
        "cpu_per_call": (classic["cpu_asterisk_s_per_call"] + classic["cpu_fastagi_s_per_call"])  # type: ignore[operator]
        / (fast["cpu_asterisk_s_per_call"] + fast["cpu_fastagi_s_per_call"]),  # type: ignore[operator]
    }
    print(table(f"FastAGI vs classic AGI: {CALLS} full absence reports each, {CONCURRENCY} at a "
                "time (first prompt = Originate -> the first command that plays a sound)",
                ["mode", "done", "failed", "calls/s", "first prompt p50 ms", "p99 ms",
                 "CPU this process s/call", "CPU Asterisk+children s/call"],
                [[r["mode"], r["completed"], r["failed"], r["calls_per_s"],
                  r["first_prompt_p50_ms"], r["first_prompt_p99_ms"],
                  r["cpu_fastagi_s_per_call"], r["cpu_asterisk_s_per_call"]] for r in rows]))
    print(f"ratio (classic / FastAGI): first prompt {ratio['first_prompt_p50']:.1f}x later, "
          f"CPU per call {ratio['cpu_per_call']:.1f}x; FastAGI calls/s "
          f"{ratio['calls_per_s']:.2f}x classic")
    for e in errors:
        print("  failure:", e)
    path = save("classic", {"calls": CALLS, "concurrency": CONCURRENCY, "rows": rows,
                            "ratio": ratio, "failures": errors})
    print(f"-> {path}\n")
    return {"rows": rows}


if __name__ == "__main__":
    asyncio.run(main())
