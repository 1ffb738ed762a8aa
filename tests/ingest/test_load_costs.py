"""Issue 25, ingest speed: the choices that cut a load's cost keep what is stored and read.

The seconds themselves are figures of ``data-engine bench ingest`` (docs in the README), not
assertions; here: example ids are stored with ZSTD from the first batch (where the warehouse's
storage format has it) and read back exactly, and a CSV file without a double quote is read
without the second pass over its bytes that checks the sniffer's quoting.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from data_engine.ingest.batch import ingest_file
from data_engine.ingest.readers import read_raw
from data_engine.ingest.textscan import CHUNK_BYTES, scan_text
from data_engine.store import schema
from data_engine.store.warehouse import apply_migrations, open_warehouse
from tests.homes import make_home
from tests.recording import RecordingConnection

CONFIG = ('[dataset]\nname = "t"\nmodality = "tabular"\nid_column = "id"\nlabel_column = "label"\n'
          'feature_columns = ["x", "color"]\nclasses = ["a", "b"]\n')


def _id_ddl(con: duckdb.DuckDBPyConnection) -> str:
    ddl = con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'examples' "
                      "AND database_name = current_database()").fetchone()[0]
    return ddl.split("(", 1)[1].split(",", 1)[0]


def test_example_ids_are_stored_with_zstd_from_the_first_batch_and_read_back_exactly(tmp_path: Path) -> None:
    home = make_home(tmp_path, CONFIG)
    ids = [f"id-{i:05d}" for i in range(3000)] + ["ünïcode id", "  spaced"]
    rows = [f"{i},{'ab'[k % 2]},{k},red" for k, i in enumerate(ids)]
    path = home.landing / "one.csv"
    path.write_text("id,label,x,color\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with open_warehouse(home) as con:
        assert _id_ddl(con) == "example_id VARCHAR NOT NULL"
        result = ingest_file(con, home.config.dataset, path)
        assert (result.status, result.rows_new) == ("ingested", 3002)
        assert _id_ddl(con) == "example_id VARCHAR USING COMPRESSION ZSTD NOT NULL"
        con.execute("CHECKPOINT")
        kinds = con.execute("SELECT DISTINCT compression FROM pragma_storage_info('examples') "
                            "WHERE column_name = 'example_id' AND segment_type = 'VARCHAR'").fetchall()
        assert kinds == [("ZSTD",)]
        stored = con.execute("SELECT example_id FROM examples ORDER BY row_number").fetchall()
        # Ids are stored in their normal form (surrounding spaces trimmed), as before.
        assert [s[0] for s in stored] == ids[:-1] + ["spaced"]
        # The same file again is the same batch: nothing new.
        assert ingest_file(con, home.config.dataset, path).already_known
        assert con.execute("SELECT count(*) FROM examples").fetchone()[0] == 3002


def test_a_warehouse_in_a_storage_format_without_zstd_keeps_duckdbs_choice(tmp_path: Path) -> None:
    con = duckdb.connect()
    for name, version, expected in (("old", "v1.0.0", "example_id VARCHAR NOT NULL"),
                                    ("new", "v1.2.0", "example_id VARCHAR USING COMPRESSION ZSTD NOT NULL")):
        con.execute(f"ATTACH '{tmp_path / name}.duckdb' AS {name} (STORAGE_VERSION '{version}')")
        con.execute(f"USE {name}")
        apply_migrations(con)
        schema._compress_ids(con)
        assert _id_ddl(con) == expected


def test_the_text_scan_says_whether_the_file_holds_a_double_quote(tmp_path: Path) -> None:
    plain, late = tmp_path / "plain.csv", tmp_path / "late.csv"
    body = "id,label\n" + "".join(f"{i},a\n" for i in range(CHUNK_BYTES // 6))
    plain.write_text(body)
    late.write_text(body + '999999,"a"\n')
    assert len(body) > CHUNK_BYTES   # the quote lies in a later chunk
    assert scan_text(plain).quotes is False
    assert scan_text(late).quotes is True


def test_a_csv_without_a_double_quote_skips_the_quoting_check_and_one_with_it_does_not(tmp_path: Path) -> None:
    plain, quoted = tmp_path / "plain.csv", tmp_path / "quoted.csv"
    plain.write_text("id,label,x\n1,a,1\n2,b,2\n")
    quoted.write_text('id,label,x\n1,a,1\n2,"b, c",2\n')
    for path, sniffed, labels in ((plain, False, ["a", "b"]), (quoted, True, ["a", "b, c"])):
        recording = RecordingConnection(duckdb.connect())
        raw = read_raw(recording, path, "csv")
        assert (raw.rows, raw.rejects) == (2, 0)
        assert any("sniff_csv" in sql for sql in recording.sql) is sniffed
        assert [r[0] for r in recording.con.execute("SELECT label FROM raw_rows ORDER BY __row").fetchall()] == labels


def test_the_hash_columns_are_stored_uncompressed_from_the_first_batch_with_the_hashes_read_back(tmp_path: Path) -> None:
    home = make_home(tmp_path, CONFIG)
    path = home.landing / "one.csv"
    path.write_text("id,label,x,color\n" + "".join(f"{i},{'ab'[i % 2]},{i},red\n" for i in range(3000)), encoding="utf-8")
    with open_warehouse(home) as con:
        ingest_file(con, home.config.dataset, path)
        ddl = con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'examples'").fetchone()[0]
        assert "content_hash UBIGINT USING COMPRESSION Uncompressed NOT NULL" in ddl
        assert "feature_hash UBIGINT USING COMPRESSION Uncompressed NOT NULL" in ddl
        con.execute("CHECKPOINT")
        kinds = con.execute("SELECT DISTINCT column_name, compression FROM pragma_storage_info('examples') "
                            "WHERE column_name IN ('content_hash', 'feature_hash') AND segment_type = 'UBIGINT' "
                            "ORDER BY 1").fetchall()
        assert kinds == [("content_hash", "Uncompressed"), ("feature_hash", "Uncompressed")]
        # The stored hashes are the values' hashes, as before: the features', then with the label.
        wrong = con.execute("SELECT count(*) FROM examples WHERE feature_hash <> hash(x, color) "
                            "OR content_hash <> hash(feature_hash, label)").fetchone()[0]
        assert wrong == 0


def test_a_batchs_constant_columns_are_stored_rle_as_constant_segments_and_read_back(tmp_path: Path) -> None:
    home = make_home(tmp_path, CONFIG)
    first = home.landing / "first.csv"
    first.write_text("id,label,x,color\n1,a,1,red\n2,b,2,red\n3,a,3,blue\n", encoding="utf-8")
    second = home.landing / "second.csv"
    second.write_text("id,label,x,color\n1,a,1,red\n2,b,5,red\n4,b,4,red\n", encoding="utf-8")
    with open_warehouse(home) as con:
        ingest_file(con, home.config.dataset, first)
        ddl = con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'examples'").fetchone()[0]
        assert '"version" INTEGER USING COMPRESSION RLE NOT NULL' in ddl
        assert "ingested_at TIMESTAMP WITH TIME ZONE DEFAULT(now()) USING COMPRESSION RLE NOT NULL" in ddl
        assert "is_gold BOOLEAN DEFAULT(false) USING COMPRESSION RLE NOT NULL" in ddl
        con.execute("CHECKPOINT")
        kinds = con.execute("SELECT DISTINCT column_name, compression FROM pragma_storage_info('examples') "
                            "WHERE column_name IN ('version', 'ingested_at', 'is_gold') AND segment_type <> 'VALIDITY' "
                            "ORDER BY 1").fetchall()
        # One value per batch: DuckDB keeps storing it as a constant, as it chose before.
        assert kinds == [("ingested_at", "Constant"), ("is_gold", "Constant"), ("version", "Constant")]
        # A second batch: a changed example (id 2) gets version 2, the unchanged one (id 1) stays.
        result = ingest_file(con, home.config.dataset, second)
        assert (result.rows_new, result.rows_changed, result.rows_unchanged) == (1, 1, 1)
        con.execute("CHECKPOINT")
        rows = con.execute("SELECT example_id, version, is_gold, batch_id = ? FROM examples "
                           "ORDER BY example_id, version", [result.batch_id]).fetchall()
        assert rows == [("1", 1, False, False), ("2", 1, False, False), ("2", 2, False, True),
                        ("3", 1, False, False), ("4", 1, False, True)]
        times = con.execute("SELECT count(DISTINCT ingested_at) FROM examples GROUP BY batch_id").fetchall()
        assert times == [(1,), (1,)]


def _rejected_sql(recording: RecordingConnection) -> str:
    return next(s for s in recording.sql if s.startswith("CREATE TEMP TABLE rejected"))


def test_missing_label_markers_are_tested_row_by_row_only_when_the_file_holds_one(tmp_path: Path) -> None:
    home = make_home(tmp_path, CONFIG)
    without = home.landing / "without.csv"
    without.write_text("id,label,x,color\n1,a,1,red\n2,,2,red\n3,b,3,blue\n", encoding="utf-8")
    marked = home.landing / "marked.csv"
    marked.write_text("id,label,x,color\n4,a,1,red\n5,NA,2,red\n6,n/a,3,blue\n7,b,4,red\n", encoding="utf-8")
    with open_warehouse(home) as con:
        recording = RecordingConnection(con)
        first = ingest_file(recording, home.config.dataset, without)
        assert 'r."label" IN (' not in _rejected_sql(recording)
        assert (first.rows_ok, first.rows_labeled) == (3, 2)
        assert not [n for n in first.notes if "missing-value marker" in n]
        recording = RecordingConnection(con)
        second = ingest_file(recording, home.config.dataset, marked)
        rejected = _rejected_sql(recording)
        # Only the markers the file holds, in the engine's spelling (n/a is one of the na_values).
        assert """r."label" IN ('NA', 'n/a') THEN NULL""" in rejected
        assert (second.rows_ok, second.rows_labeled, second.rows_quarantined) == (4, 2, 0)
        assert "2 rows have a missing-value marker ('NA', 'n/a') as their label in column 'label': stored unlabeled" in second.notes
        labels = con.execute("SELECT example_id, label FROM examples WHERE batch_id = ? ORDER BY row_number",
                             [second.batch_id]).fetchall()
        assert labels == [("4", "a"), ("5", None), ("6", None), ("7", "b")]


def test_an_over_long_categorical_cell_is_judged_after_its_spaces_are_trimmed(tmp_path: Path) -> None:
    from data_engine.ingest.validate import MAX_FIELD_CHARS

    home = make_home(tmp_path, CONFIG)
    fits = " " * 10 + "r" * MAX_FIELD_CHARS + " " * 10    # too long as read, not once trimmed
    too_long = " " + "r" * (MAX_FIELD_CHARS + 1)
    path = home.landing / "long.csv"
    path.write_text(f"id,label,x,color\n1,a,1,{fits}\n2,b,2,{too_long}\n3,a,3,red\n", encoding="utf-8")
    with open_warehouse(home) as con:
        result = ingest_file(con, home.config.dataset, path)
        assert (result.rows_ok, result.rows_quarantined) == (2, 1)
        reason = con.execute("SELECT row_number, reason FROM quarantine").fetchall()
        assert reason == [(2, f"column color: over-long field ({MAX_FIELD_CHARS + 1} characters, at most {MAX_FIELD_CHARS} bytes)")]
        stored = con.execute("SELECT example_id, length(color) FROM examples ORDER BY row_number").fetchall()
        assert stored == [("1", MAX_FIELD_CHARS), ("3", 3)]


def test_class_labels_are_judged_once_per_distinct_cell_with_the_same_stored_labels(tmp_path: Path) -> None:
    home = make_home(tmp_path, CONFIG)
    plain = home.landing / "plain.csv"
    plain.write_text("id,label,x,color\n1,a,1,red\n2,NA,2,red\n3,b,3,blue\n4,NA,4,red\n5,c,5,red\n",
                     encoding="utf-8")
    # Cells not in normal form: a no-break space around 'a', a decomposed 'é' marker-free class-less label.
    odd = home.landing / "odd.csv"
    odd.write_text("id,label,x,color\n6,\u00a0a\u00a0,1,red\n7,n/a,2,red\n8, b,3,blue\n9,e\u0301,4,red\n10,,5,red\n",
                   encoding="utf-8")
    with open_warehouse(home) as con:
        recording = RecordingConnection(con)
        first = ingest_file(recording, home.config.dataset, plain)
        # The label column is grouped once; the per-row plain test reads only the id column.
        grouped = [s for s in recording.sql if s.startswith("CREATE OR REPLACE TEMP TABLE label_values")]
        assert grouped == ['CREATE OR REPLACE TEMP TABLE label_values AS SELECT "label" AS cell, count(*) AS n '
                           "FROM raw_rows GROUP BY ALL"]
        per_row = [s for s in recording.sql if "bool_and" in s and "FROM raw_rows" in s]
        assert len(per_row) == 1 and '"id"' in per_row[0] and '"label"' not in per_row[0]
        # The classes are tested on the distinct labels: per row, only membership in those found outside.
        assert "list_contains($labels" in _rejected_sql(recording)
        assert "NOT IN (SELECT class_label FROM dataset_classes)" not in _rejected_sql(recording)
        assert (first.rows_ok, first.rows_labeled, first.rows_quarantined) == (4, 2, 1)
        assert "2 rows have a missing-value marker ('NA') as their label in column 'label': stored unlabeled" in first.notes
        second = ingest_file(con, home.config.dataset, odd)
        assert (second.rows_ok, second.rows_labeled, second.rows_quarantined) == (4, 2, 1)
        assert "1 row has a missing-value marker ('n/a') as its label in column 'label': stored unlabeled" in second.notes
        assert second.unknown_labels == {"\u00e9": 1}
        stored = con.execute("SELECT example_id, label FROM examples ORDER BY row_number, batch_id = ?",
                             [second.batch_id]).fetchall()
        assert sorted(stored, key=lambda r: int(r[0])) == [
            ("1", "a"), ("2", None), ("3", "b"), ("4", None), ("6", "a"), ("7", None), ("8", "b"), ("10", None)]
        reasons = con.execute("SELECT batch_id = ?, row_number, reason FROM quarantine ORDER BY 1, 2",
                              [second.batch_id]).fetchall()
        assert reasons == [(False, 5, "column label: label c is not one of the classes (a, b)"),
                           (True, 4, "column label: label \u00e9 is not one of the classes (a, b)")]
        # A file whose labels are all classes has no class test row by row at all.
        clean = home.landing / "clean.csv"
        clean.write_text("id,label,x,color\n11,a,1,red\n12,b,2,red\n", encoding="utf-8")
        recording = RecordingConnection(con)
        third = ingest_file(recording, home.config.dataset, clean)
        assert (third.rows_ok, third.rows_quarantined) == (2, 0)
        assert "class" not in _rejected_sql(recording) and "$labels" not in _rejected_sql(recording)
