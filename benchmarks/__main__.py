"""``make bench`` / ``python -m benchmarks [portal|register|peak|call-cpu|classic|dialer …]``
(``--help``: this text); ``python -m benchmarks peak-city``.

Runs the chosen benchmarks (the first six by default; peak-city, the morning peak through
Kamailio on one IVR node and on two, only when named: make bench is near its 25 minutes)
one after another; each prints its table and writes benchmarks/results/<name>.json.
Knobs (environment):
RENRAKU_BENCH_PORTAL_S (seconds per load, 6), RENRAKU_BENCH_PORTAL_RATE (requests/s, 40),
RENRAKU_BENCH_PORTAL_WORKERS (portal processes, one per core), RENRAKU_BENCH_REGISTER_RUNS
(month register runs, 3), RENRAKU_BENCH_REGISTER_DB (sqlite,postgresql), RENRAKU_BENCH_PEAK
(levels, "50,200,300"), RENRAKU_BENCH_PEAK_RUNS (runs a level, 3), RENRAKU_BENCH_PEAK_LOCKSTEP
(lockstep level, the top one under 300), RENRAKU_BENCH_PEAK_DB (sqlite|postgresql),
RENRAKU_BENCH_PEAK_SESSION (0: the peak's FastAGI server in the driver's session, as before the
sixth round), RENRAKU_BENCH_PG_DB (PostgreSQL databases' name prefix, renraku_bench),
RENRAKU_BENCH_CACHE (city databases' folder), RENRAKU_BENCH_CLASSIC_CALLS (40),
RENRAKU_BENCH_DIALER_C (channel levels, "30,60,120"), RENRAKU_BENCH_DIALER_PER_CHANNEL
(households per channel at each level, 8), RENRAKU_BENCH_DIALER_N (households per level
instead), RENRAKU_BENCH_DIALER_TWO_NODES (channels of the two-node run, 60; 0: none),
RENRAKU_BENCH_PEAK_CITY_N (peak-city's calls a run, 100), RENRAKU_BENCH_CPU_CALLS (call-cpu's
calls a run, 400), RENRAKU_BENCH_CPU_CONCURRENCY (20), RENRAKU_BENCH_CPU_RUNS (3),
RENRAKU_BENCH_CPU_DB (sqlite, or postgresql).
"""

from __future__ import annotations

import importlib
import sys
import time

from renraku import eventloop

ALL = ("portal", "register", "peak", "call-cpu", "classic", "dialer")
ON_REQUEST = ("peak-city",)  # not in make bench's default run


def main(argv: list[str]) -> int:
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        return 0
    chosen = argv or list(ALL)
    unknown = [name for name in chosen if name not in ALL + ON_REQUEST]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {', '.join(ALL + ON_REQUEST)}",
              file=sys.stderr)
        return 2
    started = time.perf_counter()
    failed = []
    for name in chosen:
        t0 = time.perf_counter()
        print(f"==> {name}", flush=True)
        try:
            # On the servers' loop: call-cpu and classic serve FastAGI in this process
            eventloop.run(importlib.import_module(f"benchmarks.{name.replace('-', '_')}").main())
        except Exception as exc:  # one broken bench must not hide the others' figures
            failed.append(name)
            print(f"!! {name} failed: {type(exc).__name__}: {exc}", flush=True)
        print(f"    ({name}: {time.perf_counter() - t0:.0f} s)\n", flush=True)
    print(f"all done in {time.perf_counter() - started:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
