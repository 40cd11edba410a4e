"""``python -m benchmarks``: the command line around the benchmarks (they run in make bench)."""

from __future__ import annotations

import pytest

from benchmarks.__main__ import main
from tests.db_fixtures import Databases


def test_help_lists_the_benchmarks_and_their_knobs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "portal|register|peak|call-cpu|classic|dialer" in out
    assert "RENRAKU_BENCH_DIALER_N" in out and "RENRAKU_BENCH_CPU_CALLS" in out


def test_an_unknown_benchmark_is_named_and_nothing_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["portal", "speed"]) == 2
    captured = capsys.readouterr()
    assert "['speed']" in captured.err and "==>" not in captured.out


def test_peak_levels_report_median_and_worst_of_their_runs_against_the_floor() -> None:
    from benchmarks.peak import summarise

    def run(step_p99: float, key_p99: float) -> dict[str, object]:
        return {"db": "sqlite", "pace": "paced", "calls": 100, "failed": 0,
                "step_p99_ms": step_p99, "key_p99_ms": key_p99, "first_prompt_p99_ms": 90.0,
                "cpu_fastagi_s": 0.8, "cpu_fastagi_kernel_s": 0.3, "cpu_db_s": 0.2,
                "cpu_ivr_s": 2.0, "confirm_p99_ms": 5.0}

    floor = {"failed": 0, "key_p99_ms": 40.0, "first_prompt_p99_ms": 60.0, "cpu_ivr_s": 2.5}
    row = summarise([run(100, 80), run(300, 120), run(200, 100)], floor)
    assert (row["runs"], row["step_p99_median_ms"], row["step_p99_worst_ms"]) == (3, 200, 300)
    assert row["key_p99_ratio"] == 3.0  # the worst run's key -> prompt p99 over the floor's
    assert row["renraku_cpu_ms_per_call"] == 10.0 and row["floor_ivr_cpu_ms_per_call"] == 25.0
    assert row["cpu_ratio"] == 0.4
    assert row["fastagi_kernel_cpu_ms_per_call"] == 3.0  # of the FastAGI's 8 ms a call


async def test_call_cpu_tiny_measures_the_flow_against_the_transport_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Six calls a run: every call a full report (main raises otherwise), the transport
    replays the same 15 commands, and the flow costs more than the transport alone."""
    from benchmarks import call_cpu

    saved: dict[str, object] = {}
    monkeypatch.setattr(call_cpu, "CALLS", 6)
    monkeypatch.setattr(call_cpu, "CONCURRENCY", 3)
    monkeypatch.setattr(call_cpu, "RUNS", 1)
    monkeypatch.setattr(call_cpu, "save", lambda name, data: saved.update(data) or name)
    await call_cpu.main()
    row = saved["result"]
    assert isinstance(row, dict)
    assert (row["calls"], row["runs"], row["commands_per_call"]) == (6, 1, 15)
    assert row["flow_ms"] > row["transport_ms"] > 0
    assert row["ratio"] == row["flow_ms"] / row["transport_ms"]


def test_help_names_the_peak_runs_knob(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "RENRAKU_BENCH_PEAK_RUNS" in capsys.readouterr().out


def test_peak_city_is_run_only_when_named(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.__main__ import ALL, ON_REQUEST

    assert "peak-city" in ON_REQUEST and "peak-city" not in ALL  # make bench stays < 25 min
    assert main(["--help"]) == 0
    assert "RENRAKU_BENCH_PEAK_CITY_N" in capsys.readouterr().out


@pytest.mark.asterisk
async def test_peak_city_tiny_one_node_then_two(databases: Databases) -> None:
    """The bench run tiny (4 calls a phase) through Kamailio, on PostgreSQL: every call of
    both phases makes its report; one node takes all the first phase's calls, round robin
    spreads the second's, and each IVR node's own app node does its calls' work."""
    from benchmarks.peak_city import run, show

    db = await databases.get("postgresql")
    result = await run(4, url=db.url)
    one, two = result["one_node"], result["two_nodes"]
    for phase in (one, two):
        assert (phase["completed"], phase["failed"], phase["reports_written"]) == (4, 0, 4), \
            phase["failures"]
        assert phase["setup_p99_ms"] > 0 and phase["step_p99_ms"] >= phase["step_p50_ms"]
        assert phase["cpu_s"]["asterisk ivr1"] > 0 and phase["cpu_s"]["app 1"] > 0
        # PostgreSQL's share is read too, but 4 calls' ~3 ms is under /proc's 10 ms tick
        assert phase["cpu_s"]["postgresql"] >= 0
    assert one["calls_per_node"] == {"ivr1": 4}
    assert set(two["calls_per_node"]) == {"ivr1", "ivr2"}  # Kamailio's round robin
    assert sum(two["calls_per_node"].values()) == 4
    # ivr2 starts at app node 2 (its own FastAGI peer order): both app nodes work
    assert two["cpu_s"]["app 2"] > 0 and two["cpu_s"]["asterisk ivr2"] > 0
    ratio = result["ratio_two_over_one"]
    assert ratio["completed"] == 1.0 and ratio["wall_s"] == two["wall_s"] / one["wall_s"]
    assert ratio["asterisk ms/call"] == (two["parts_ms_per_call"]["asterisk"]
                                         / one["parts_ms_per_call"]["asterisk"])
    assert "two ÷ one" in show(result)
