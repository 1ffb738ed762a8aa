"""``bench ingest``'s summary of paired runs: exact medians of the per-pair ratios (no timing here;
the whole command runs in tests/cli/test_cli_core.py::test_bench_ingest_small)."""

from __future__ import annotations

import pytest

from data_engine.bench.ingest import IngestBench, PairedRun, RunSummary, summarise


def test_median_of_paired_ratios_not_ratio_of_medians() -> None:
    # Ratios: wall 3.0, 2.0, 4.0 -> median 3.0; cpu 2.0, 2.5, 2.0 -> 2.0. The ratio of the medians
    # would be 6.0 / 2.0 = 3.0 for wall but 5.0 / 2.0 = 2.5 for cpu: the pairs decide, not the medians.
    runs = [PairedRun(3.0, 1.0, 4.0, 2.0), PairedRun(6.0, 3.0, 5.0, 2.0), PairedRun(8.0, 2.0, 8.0, 4.0)]
    assert summarise(runs) == RunSummary(
        runs=3, wall_ratio=3.0, cpu_ratio=2.0, engine_s=6.0, duckdb_s=2.0, engine_cpu_s=5.0, duckdb_cpu_s=2.0,
        best_wall_ratio=3.0, best_cpu_ratio=2.0)


def test_even_count_takes_the_mean_of_the_middle_two_and_best_of_is_fastest_over_fastest() -> None:
    # Wall ratios 2.0, 4.0, 3.0, 5.0 -> (3.0 + 4.0) / 2; cpu ratios 1.5, 2.0, 3.0, 2.5 -> 2.25.
    runs = [PairedRun(2.0, 1.0, 3.0, 2.0), PairedRun(8.0, 2.0, 4.0, 2.0),
            PairedRun(6.0, 2.0, 6.0, 2.0), PairedRun(5.0, 1.0, 5.0, 2.0)]
    s = summarise(runs)
    assert (s.runs, s.wall_ratio, s.cpu_ratio) == (4, 3.5, 2.25)
    assert (s.engine_s, s.duckdb_s, s.engine_cpu_s, s.duckdb_cpu_s) == (5.5, 1.5, 4.5, 2.0)
    # Fastest engine 2.0 s over fastest DuckDB 1.0 s; CPU 3.0 over 2.0.
    assert (s.best_wall_ratio, s.best_cpu_ratio) == (2.0, 1.5)


def test_no_runs_is_an_error() -> None:
    with pytest.raises(ValueError, match="no paired runs"):
        summarise([])


def test_the_target_is_judged_on_the_median_wall_ratio_and_every_run_is_reported() -> None:
    runs = [PairedRun(2.5, 1.0, 3.0, 1.0), PairedRun(3.0, 1.0, 3.0, 1.0), PairedRun(2.0, 1.0, 3.0, 1.0)]
    b = IngestBench(rows=10, file_mb=0.1, runs=runs, summary=summarise(runs), engine_rows_in=10, engine_rows_ok=9,
                    engine_rows_quarantined=1, duckdb_rows=10, load_before=(0.1, 0.2, 0.3),
                    load_after=(0.4, 0.5, 0.6), cores=2)
    d = b.to_dict()
    assert (d["wall_ratio"], d["cpu_ratio"], d["within_target"], d["repeat"]) == (2.5, 3.0, True, 3)
    assert [r["wall_ratio"] for r in d["runs"]] == [2.5, 3.0, 2.0]
    assert (d["load_before"], d["load_after"]) == ([0.1, 0.2, 0.3], [0.4, 0.5, 0.6])
    slower = IngestBench(**{**b.__dict__, "runs": runs[:2], "summary": summarise(runs[:2])})
    assert (slower.summary.wall_ratio, slower.within_target) == (2.75, False)
