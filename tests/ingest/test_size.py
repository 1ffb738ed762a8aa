"""Issue 26, size: column type inference of a wide file in bounded memory (a 400-column file took
2.6 GB, a 2,000-column one was killed). What bounds the memory is that no query reads more than
``INFER_COLUMNS_PER_QUERY`` columns at once; that is checked here. The peak memory itself is a
figure of ``data-engine bench size wide`` (against one query over every column, in the same run),
not an assertion: a fixed megabyte bound fails on a machine whose allocator or threads differ."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from data_engine.bench.size import write_wide_csv
from data_engine.ingest.readers import read_raw
from data_engine.store import schema


class _Recording:
    """A DuckDB connection that remembers the SQL it was given (DuckDB's connection cannot be patched)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con, self.sql = con, []

    def execute(self, sql: str, *args):
        self.sql.append(sql)
        return self.con.execute(sql, *args)


def test_type_inference_of_a_wide_file_reads_a_bounded_slice_of_columns_per_query(tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    write_wide_csv(wide, columns=400, rows=2000)
    con = duckdb.connect()
    raw = read_raw(con, wide, "csv")
    recording = _Recording(con)
    types = schema._infer(recording, [c for c in raw.columns if c.startswith("f")], ())
    # Half the columns hold numbers, half words: every type right.
    assert len(types) == 400 and sum(t == "numeric" for t in types.values()) == 200
    assert types["f1"] == "numeric" and types["f0"] == "categorical"
    per_query = [len(set(re.findall(r'"?(f\d+)"?', sql))) for sql in recording.sql]
    assert len(per_query) == -(-400 // schema.INFER_COLUMNS_PER_QUERY)
    assert max(per_query) <= schema.INFER_COLUMNS_PER_QUERY and sum(per_query) == 400
