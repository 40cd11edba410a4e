"""``python -m benchmarks``: the command line around the benchmarks (they run in make bench)."""

from __future__ import annotations

import pytest

from benchmarks.__main__ import main


def test_help_lists_the_benchmarks_and_their_knobs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "portal|register|peak|classic|dialer" in out and "RENRAKU_BENCH_DIALER_N" in out


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
                "cpu_fastagi_s": 0.8, "cpu_db_s": 0.2, "cpu_ivr_s": 2.0, "confirm_p99_ms": 5.0}

    floor = {"failed": 0, "key_p99_ms": 40.0, "first_prompt_p99_ms": 60.0, "cpu_ivr_s": 2.5}
    row = summarise([run(100, 80), run(300, 120), run(200, 100)], floor)
    assert (row["runs"], row["step_p99_median_ms"], row["step_p99_worst_ms"]) == (3, 200, 300)
    assert row["key_p99_ratio"] == 3.0  # the worst run's key -> prompt p99 over the floor's
    assert row["renraku_cpu_ms_per_call"] == 10.0 and row["floor_ivr_cpu_ms_per_call"] == 25.0
    assert row["cpu_ratio"] == 0.4


def test_help_names_the_peak_runs_knob(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "RENRAKU_BENCH_PEAK_RUNS" in capsys.readouterr().out
