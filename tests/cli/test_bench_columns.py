"""``bench columns`` on the wine table (178 rows, 13 columns, seed 0): the engine names the planted leak,
noise, row number and uuid and nothing else; the naive rules name all four too, but also call the
leak and the noise identifiers (every value distinct) and every real column with signal a shortcut;
cleanlab's spurious-correlation score finds the leak and three real columns."""

from __future__ import annotations

from data_engine.bench.columns import run


def test_bench_columns_on_wine_against_the_baselines():
    rows = {r["method"]: r for r in run(("wine",), 0)}
    engine, naive, cleanlab = rows["engine"], rows["naive"], rows["cleanlab"]
    assert (engine["detected"], engine["of"], engine["false_alarms"], engine["measured_false_alarms"]) == (4, 4, 0, 0)
    assert (naive["detected"], naive["of"]) == (4, 4)
    assert {"identifier leak", "identifier noise", "shortcut proline"} <= set(naive["false_names"])
    assert naive["false_alarms"] == 16
    assert (cleanlab["detected"], cleanlab["of"]) == (1, 1)
    assert cleanlab["false_names"] == ["shortcut color_intensity", "shortcut flavanoids", "shortcut proline"]
