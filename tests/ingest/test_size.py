"""Issue 26, size: column type inference of a wide file in bounded memory (a 400-column file took
2.6 GB, a 2,000-column one was killed), measured as the peak RSS of a child process."""

from __future__ import annotations

from pathlib import Path

from data_engine.bench.size import measure, write_wide_csv
from data_engine.store.schema import INFER_COLUMNS_PER_QUERY


def test_type_inference_of_a_wide_file_stays_small(tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    write_wide_csv(wide, columns=400, rows=2000)
    now = measure(["wide", str(wide), str(INFER_COLUMNS_PER_QUERY)])
    assert now.stopped is None, now.stopped
    # Half the columns hold numbers, half words: every type right.
    assert now.out == {"columns": 400, "numeric": 200}
    # Measured here: about 170-250 MB (the interpreter and DuckDB included); one query over all
    # 400 columns took 2,535 MB.
    assert now.peak_mb < 800, now
