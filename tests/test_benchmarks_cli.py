"""``python -m benchmarks``: the command line around the benchmarks (they run in make bench)."""

from __future__ import annotations

import pytest

from benchmarks.__main__ import main


def test_help_lists_the_benchmarks_and_their_knobs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "portal|peak|classic|dialer" in out and "RENRAKU_BENCH_DIALER_N" in out


def test_an_unknown_benchmark_is_named_and_nothing_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["portal", "speed"]) == 2
    captured = capsys.readouterr()
    assert "['speed']" in captured.err and "==>" not in captured.out
