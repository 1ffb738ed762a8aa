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
from tests.recording import RecordingConnection


def test_type_inference_of_a_wide_file_reads_a_bounded_slice_of_columns_per_query(tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    write_wide_csv(wide, columns=400, rows=2000)
    con = duckdb.connect()
    raw = read_raw(con, wide, "csv")
    recording = RecordingConnection(con)
    types = schema._infer(recording, [c for c in raw.columns if c.startswith("f")], ())
    # Half the columns hold numbers, half words: every type right.
    assert len(types) == 400 and sum(t == "numeric" for t in types.values()) == 200
    assert types["f1"] == "numeric" and types["f0"] == "categorical"
    per_query = [len(set(re.findall(r'"?(f\d+)"?', sql))) for sql in recording.sql]
    assert len(per_query) == -(-400 // schema.INFER_COLUMNS_PER_QUERY)
    assert max(per_query) <= schema.INFER_COLUMNS_PER_QUERY and sum(per_query) == 400


def _ingest_wide(tmp_path: Path, monkeypatch, alter_at_most: int) -> tuple[list, list, list]:
    """Two batches of a 60-column file (the second changes one value); the table's columns, the
    stored rows and the labels in force."""
    from data_engine.ingest.batch import ingest_file
    from data_engine.store.warehouse import open_warehouse
    from tests.homes import make_home

    monkeypatch.setattr(schema, "ALTER_COLUMNS_AT_MOST", alter_at_most)
    features = ", ".join(f'"f{i}"' for i in range(60))
    home = make_home(tmp_path, f'[dataset]\nname = "w"\nmodality = "tabular"\nid_column = "id"\n'
                               f'label_column = "label"\nfeature_columns = [{features}]\n')
    first, second = home.landing / "one.csv", home.landing / "two.csv"
    write_wide_csv(first, columns=60, rows=50)
    second.write_text(first.read_text().replace("\n7,b,", "\n7,a,", 1))
    with open_warehouse(home) as con:
        assert [ingest_file(con, home.config.dataset, p).status for p in (first, second)] == ["ingested"] * 2
        table = con.execute("SELECT column_name, data_type, column_default, is_nullable FROM duckdb_columns() "
                            "WHERE table_name = 'examples' ORDER BY column_index").fetchall()
        rows = con.execute("SELECT * EXCLUDE (ingested_at, batch_id) FROM examples ORDER BY example_id, version").fetchall()
        assert con.execute("SELECT count(*) FROM examples WHERE ingested_at IS NULL").fetchone()[0] == 0
        labels = con.execute("SELECT example_id, label, source FROM current_labels ORDER BY example_id").fetchall()
    return table, rows, labels


def test_a_wide_first_batch_makes_the_same_table_as_column_by_column(tmp_path: Path, monkeypatch) -> None:
    """A wide first batch recreates ``examples`` from its DDL with the columns appended (one ALTER per
    column held a catalog version each: 3,000 columns peaked at 2.9 GB); the table, its defaults and
    NOT NULLs, the rows and the labels are those the ALTER path gives."""
    wide = _ingest_wide(tmp_path / "wide", monkeypatch, alter_at_most=16)
    altered = _ingest_wide(tmp_path / "alter", monkeypatch, alter_at_most=10_000)
    assert wide == altered
    table, rows, labels = wide
    assert [c[0] for c in table[-3:]] == ["f58", "f59", "label"] and len(rows) == 51 and len(labels) == 50
    (ingested_at,) = [c for c in table if c[0] == "ingested_at"]
    assert "now()" in ingested_at[2] and ingested_at[3] is False   # its default and NOT NULL kept
