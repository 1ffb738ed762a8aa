"""``data-engine bench size`` as a user runs it, at small sizes: it prints peak memory and seconds of
the bounded steps and of the unbounded ones they replaced."""

from __future__ import annotations

import json

from tests.cli.test_cli_core import cli


def test_bench_size_prints_memory_and_seconds_now_and_before() -> None:
    proc = cli("bench", "size", "--columns", "60", "--rows", "300", "--texts", "3000", "--long-kb", "0", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) == {"wide", "texts"}
    for step in ("wide", "texts"):
        for run in ("now", "before"):
            m = result[step][run]
            assert m["stopped"] is None and 30 < m["peak_mb"] < 4000 and m["seconds"] > 0, m
    assert result["wide"]["now"]["out"] == result["wide"]["before"]["out"] == {"columns": 60, "numeric": 30}
    now, before = result["texts"]["now"]["out"], result["texts"]["before"]["out"]
    assert now["texts"] == before["texts"] == 3000 and 0 < now["features"] <= min(before["features"], 2 * 50_000)
