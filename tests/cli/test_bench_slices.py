"""``bench slices``: one planted region on the wine table is detected and named; the shuffled errors
raise no slice; the baseline reports nothing."""

from __future__ import annotations

from data_engine.bench.slices import run, summarise


def test_bench_slices_detects_a_planted_region_and_counts_false_alarms():
    rows = run(1, 0.4, 0, datasets=("wine",))
    assert len(rows) == 1 and rows[0]["column"] in rows[0]["definition"]
    summary = summarise(rows)
    assert summary["ours"]["detected"] == 1.0 and summary["ours"]["false_alarms"] == 0.0
    assert summary["no slices"] == {"detected": 0.0, "found": 0.0, "false_alarms": 0.0, "on_unmodified": 0.0,
                                    "extra_per_run": 0.0}
