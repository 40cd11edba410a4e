"""Morning peak through Kamailio: one IVR node, then two, side by side in one run.

The city of tests/cluster_harness.ProcessCity on PostgreSQL: the carrier simulator calls
Kamailio, which hands each call to an IVR Asterisk node; each node's dialplan calls its own
app node first (tests/city_node.py, a process each). N callers
(RENRAKU_BENCH_PEAK_CITY_N, 100) make the absence report of benchmarks.peak at once,
thinking 0.5-2.5 s before each key; first with node ivr2 stopped (Kamailio's dispatcher
sends every call to ivr1, whose app node is app 1), then with both nodes up (new callers).

Measured from the driver: set-up (Originate → the first prompt, seen on the node's AMI) and
step (a key played into the call → the next prompt starting on the node's AMI; the app
nodes are other processes, so the FastAGI-side step of benchmarks.peak is not available).
CPU per call of each part from /proc: each Asterisk, Kamailio with its worker children,
each app node, the PostgreSQL backends of the database. The table puts the two runs side
by side with the ratios two nodes ÷ one node. On a 2-core machine both nodes share the
cores with everything else, so the ratio says what a second node costs and spreads, not
what a second machine would add.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.peak import DatabaseCpu, Timing, _p, one_call
from benchmarks.phones import (
    NOW,
    carrier_ami_pool,
    cpu_seconds,
    families,
    pooled_press,
    tree_cpu_seconds,
)
from benchmarks.stats import failures, save, table

N = int(os.environ.get("RENRAKU_BENCH_PEAK_CITY_N", "100"))
PG_DB = "renraku_bench_peak_city"
WARM_UP = "09040999999"


def city_phone(city: Any, number: str, pool: list[Any]) -> Any:
    """A caller whose prompts are read from the nodes' AMI, keys through the AMI pool."""
    from tests.cluster_harness import HeardPhone

    class CityPhone(HeardPhone):
        context = "listener"  # as benchmarks.phones.pooled_phone: the carrier plays nothing

        async def press(self, digits: str, gap: float = 0.3) -> float:  # type: ignore[override]
            return await pooled_press(self, pool, digits, gap)

        def heard_at(self, index: int) -> float:
            # The harness stamps prompts with time.monotonic; one_call times perf_counter.
            return self.heard()[index][0] - time.monotonic() + time.perf_counter()

    return CityPhone(city, number, "0120000000")


def cpu_of(city: Any) -> dict[str, float]:
    """CPU-seconds so far of each part (Kamailio and app nodes with their children)."""
    out = {f"asterisk {name}": cpu_seconds(node.pid()) for name, node in city.nodes.items()}
    out["kamailio"] = tree_cpu_seconds(city.kamailio.pid() if city.kamailio else None)
    out.update({f"app {i + 1}": tree_cpu_seconds(p.pid if p else None)
                for i, p in enumerate(city.app_procs)})
    out["carrier"] = cpu_seconds(city.carrier.pid())
    out["driver"] = cpu_seconds(os.getpid())
    return out


async def run_phase(city: Any, app: Any, pool: list[Any], numbers: list[str],
                    nodes: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from models import AbsenceReport

    db_cpu = DatabaseCpu(app, postgresql=True)
    async with app.sessions() as s:
        before = await s.scalar(select(func.count()).select_from(AbsenceReport)) or 0
    phones = [city_phone(city, x, pool) for x in numbers]
    timing = Timing()
    load = os.getloadavg()[0]
    cpu0 = cpu_of(city)
    await db_cpu.begin()
    started = time.perf_counter()
    results = await asyncio.gather(*(one_call(p, timing, paced=True) for p in phones),
                                   return_exceptions=True)
    wall = time.perf_counter() - started
    await asyncio.sleep(0.5)  # the last hang-ups' work
    cpu = {k: v - cpu0[k] for k, v in cpu_of(city).items()}
    cpu["postgresql"] = await db_cpu.seconds()
    async with app.sessions() as s:
        written = (await s.scalar(select(func.count()).select_from(AbsenceReport)) or 0) - before
    failed = [r for r in results if isinstance(r, BaseException)]
    per_node: dict[str, int] = {}
    for p in phones:
        if p.heard():
            per_node[p.heard()[0][1]] = per_node.get(p.heard()[0][1], 0) + 1
    n = len(numbers)
    parts = {"asterisk": sum(v for k, v in cpu.items() if k.startswith("asterisk")),
             "kamailio": cpu["kamailio"],
             "app": sum(v for k, v in cpu.items() if k.startswith("app")),
             "postgresql": cpu["postgresql"]}
    return {
        "nodes": nodes, "calls": n, "completed": n - len(failed), "failed": len(failed),
        "reports_written": written, "wall_s": wall, "calls_per_node": per_node,
        "setup_p50_ms": _p(timing.setup_ms, 50), "setup_p99_ms": _p(timing.setup_ms, 99),
        "step_p50_ms": _p(timing.key_ms, 50), "step_p99_ms": _p(timing.key_ms, 99),
        "first_prompt_p99_ms": _p(timing.first_prompt_ms, 99),
        "cpu_s": cpu, "cpu_ms_per_call": {k: 1000 * v / n for k, v in cpu.items()},
        "parts_ms_per_call": {k: 1000 * v / n for k, v in parts.items()},
        "product_ms_per_call": 1000 * sum(parts.values()) / n,
        "load_1min": [load, os.getloadavg()[0]],
        "failures": failures(f"{nodes} node(s)", failed)[:10] + [
            f"{p.number} heard {p.played[-3:]}" for p, r in zip(phones, results, strict=True)
            if isinstance(r, BaseException)][:5],
    }


RATIO_KEYS = ("completed", "failed", "wall_s", "setup_p99_ms", "step_p50_ms", "step_p99_ms",
              "product_ms_per_call")


def ratios(one: dict[str, Any], two: dict[str, Any]) -> dict[str, float]:
    """Two nodes ÷ one node, for the headline figures and each part's CPU per call."""
    def div(a: float, b: float) -> float:
        return a / b if b else float("nan")

    out = {k: div(two[k], one[k]) for k in RATIO_KEYS}
    out.update({f"{k} ms/call": div(v, one["parts_ms_per_call"][k])
                for k, v in two["parts_ms_per_call"].items()})
    return out


async def run(n: int = N, url: str | None = None) -> dict[str, Any]:
    """Both phases on a fresh city, on a fresh database (or the migrated, empty ``url``: the
    tests'); the result (not saved)."""
    import tests.asterisk_harness as harness
    from benchmarks.dialer import RTP
    from benchmarks.portal import PG_ADMIN, fresh_pg
    from models.db import create_engine, session_factory
    from models.migrate import upgrade
    from renraku.app import App
    from renraku.clock import FakeClock
    from tests.cluster_harness import ProcessCity

    harness.rtp_range = lambda: next(RTP)  # hundreds of calls a node, not the tests' 19
    harness._guard()
    if url is None:
        await fresh_pg(PG_DB)
        url = f"{PG_ADMIN}/{PG_DB}"
        await upgrade(url)
    city = ProcessCity(Path(tempfile.mkdtemp(prefix="renraku-bench-peak-city-")), url, NOW)
    city.app_voice = "bench"
    pool: list[Any] = []
    engine = create_engine(url)
    try:
        await city.start()
        app = App(city.settings.replace(database_url=url), FakeClock(NOW), engine,
                  session_factory(engine))
        numbers = [[f"0904{phase}{i:06d}" for i in range(n)] for phase in (1, 2)]
        await families(app, numbers[0] + numbers[1] + [WARM_UP])
        pool = await carrier_ami_pool(city, size=min(48, n))
        # The app nodes write each prompt's tone on first use (sox): one call first, so
        # the first phase does not pay for them (the nodes share the sounds folder).
        warm = await asyncio.gather(one_call(city_phone(city, WARM_UP, pool), Timing(), False),
                                    return_exceptions=True)
        if isinstance(warm[0], BaseException):
            raise RuntimeError(f"the warm-up call failed: {warm[0]}")
        # One node: ivr2 disabled in Kamailio's dispatcher (not probed), all calls to ivr1.
        await asyncio.to_thread(city.kamailio.rpc, "dispatcher.set_state", "d", "1",
                                city.node_uris["ivr2"])
        await city.wait_nodes({"ivr2": False}, within=15)
        print(f"  peak-city: {n} calls to one node", file=sys.stderr)
        one = await run_phase(city, app, pool, numbers[0], nodes=1)
        await asyncio.sleep(3)  # every channel hung up
        await asyncio.to_thread(city.kamailio.rpc, "dispatcher.set_state", "a", "1",
                                city.node_uris["ivr2"])
        await city.wait_nodes({"ivr2": True}, within=15)
        print(f"  peak-city: {n} calls to two nodes", file=sys.stderr)
        two = await run_phase(city, app, pool, numbers[1], nodes=2)
    finally:
        for client in pool:
            client.close()
        await city.stop()
        await engine.dispose()
    return {"calls": n, "db": "postgresql", "one_node": one, "two_nodes": two,
            "ratio_two_over_one": ratios(one, two),
            "note": "CPU in seconds per part over a phase; step and set-up seen by the "
                    "driver on the IVR nodes' AMI; 'driver' drives the virtual phones"}


def show(result: dict[str, Any]) -> str:
    one, two, ratio = result["one_node"], result["two_nodes"], result["ratio_two_over_one"]
    rows: list[list[object]] = []
    for key, label in [("completed", "calls completed"), ("failed", "calls failed"),
                       ("wall_s", "wall s"), ("step_p50_ms", "step p50 ms"),
                       ("step_p99_ms", "step p99 ms"), ("setup_p99_ms", "set-up p99 ms"),
                       ("product_ms_per_call", "CPU ms/call, all parts")]:
        rows.append([label, one[key], two[key], ratio[key]])
    for part in one["parts_ms_per_call"]:
        rows.append([f"CPU ms/call, {part}", one["parts_ms_per_call"][part],
                     two["parts_ms_per_call"][part], ratio[f"{part} ms/call"]])
    for part in two["cpu_ms_per_call"]:
        rows.append([f"  {part}", one["cpu_ms_per_call"].get(part, 0.0),
                     two["cpu_ms_per_call"][part], ""])
    rows.append(["calls per node", one["calls_per_node"], two["calls_per_node"], ""])
    rows.append(["load (1 min) before-after",
                 "{:.1f}-{:.1f}".format(*one["load_1min"]),
                 "{:.1f}-{:.1f}".format(*two["load_1min"]), ""])
    return table(f"Morning peak through Kamailio, {result['calls']} paced calls a run, "
                 "PostgreSQL", ["", "one node", "two nodes", "two ÷ one"], rows)


async def main() -> dict[str, Any]:
    result = await run(N)
    print(show(result))
    for line in result["one_node"]["failures"] + result["two_nodes"]["failures"]:
        print("  failure:", line)
    print(f"-> {save('peak-city', result)}\n")
    return result


if __name__ == "__main__":
    asyncio.run(main())
