"""The bad-file corpus: every file ingests without a crash, every row is accounted for, every
rejection says why in words a person understands, and ingesting everything again changes nothing.

Dataset: the toy config of ``conftest.py`` (id, label in {a, b}, numeric x, categorical color).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import pytest

from data_engine.ingest.batch import IngestResult, ingest_file
from data_engine.store.home import Home
from data_engine.store.warehouse import table_counts

HEADER = "id,label,x,color\n"


@dataclass(frozen=True)
class Case:
    """One corpus file and what must happen to it."""

    name: str
    content: bytes
    status: str
    # Whole-file rejection: words its reason must contain.
    reason_words: tuple[str, ...] = ()
    # Row-level quarantine: {data row number: words its reason must contain}; exactly these rows.
    quarantined: dict[int, tuple[str, ...]] = field(default_factory=dict)
    stored: int | None = None


def _csv(*rows: str, header: str = HEADER) -> bytes:
    return (header + "".join(r + "\n" for r in rows)).encode("utf-8")


CASES = [
    Case("binary_junk.csv", bytes(range(256)) * 8, "rejected", ("binary", "NUL")),
    Case("high_bytes_junk.csv", bytes(0x80 + (i * 37) % 127 for i in range(600)), "rejected", ("missing",)),
    Case("empty.csv", b"", "rejected", ("empty",)),
    Case("header_only.csv", HEADER.encode(), "rejected", ("no data rows", "header")),
    Case("no_header.csv", b"1,a,1,red\n2,b,2,blue\n", "rejected", ("missing", "'id'", "header row missing")),
    Case("missing_id_column.csv", _csv("1,a,1,red", header="ident,label,x,color\n"), "rejected",
         ("missing", "'id'", "ident")),
    Case("missing_feature_column.csv", _csv("1,a,1", header="id,label,x\n"), "rejected", ("missing", "'color'")),
    Case("semicolons.csv", b"id;label;x;color\n1;a;1.5;red\n2;b;2;blue\n", "ingested", stored=2),
    Case("pipes.csv", b"id|label|x|color\n1|a|1.5|red\n2|b|2|blue\n", "ingested", stored=2),
    Case("decimal_comma.csv", b"id;label;x;color\n1;a;1,5;red\n2;b;2;blue\n", "ingested",
         quarantined={1: ("column x", "1,5", "not a finite number")}),
    Case("unknown_labels.csv", _csv("1,a,1,red", "2,zebra,2,blue", "3,,3,green"), "ingested",
         quarantined={2: ("label", "zebra", "not one of the classes (a, b)")}),
    Case("mixed.csv", _csv("1,a,1,red", ",b,2,blue", "3,a,abc,green", "4,b,2.5,", "5,a,1e400,red"), "ingested",
         quarantined={2: ("missing id", "column id"), 3: ("column x", "abc"), 5: ("column x", "1e400")}),
    # A training id in the gold id space would become a version of that gold example (or be replaced by it).
    Case("gold_prefix_id.csv", _csv("1,a,1,red", "gold:1,b,2,blue"), "ingested",
         quarantined={2: ("gold:1", "reserved for gold")}),
    # Finite doubles beyond float32's range turn to inf in the models' float32 casts (mine crashed).
    Case("huge_numbers.csv", _csv("1,a,1,red", "2,b,1e308,blue", "3,a,-3.5e38,red", "4,b,3.4e38,green"), "ingested",
         quarantined={2: ("column x", "1e308", "largest magnitude"), 3: ("column x", "-3.5e38", "rescale")}),
    # NaN, nan (and N/A, null, ...: [dataset] na_values) are missing numbers; infinities are not numbers.
    Case("nan_inf.csv", _csv("1,a,nan,red", "2,a,inf,red", "3,b,-Infinity,red", "4,b,NaN,red", "5,a,0.5,red",
                             "6,a,N/A,red", "7,b,abc,red"),
         "ingested", quarantined={2: ("column x", "inf"), 3: ("-Infinity",), 7: ("column x", "abc")}),
    Case("duplicate_ids.csv", _csv("1,a,1,red", "2,b,2,blue", "1,b,3,green", "3,a,4,red"), "ingested",
         quarantined={1: ("id 1", "2 times", "rows 1, 3"), 3: ("id 1", "2 times", "rows 1, 3")}),
    Case("latin1.csv", _csv("1,a,1,red").replace(b"red", "café".encode("latin-1")), "rejected",
         ("not UTF-8", "row 1", "color")),
    Case("utf16.csv", _csv("1,a,1,red").decode().encode("utf-16"), "rejected", ("UTF-16", "UTF-8")),
    Case("utf8_bom.csv", b"\xef\xbb\xbf" + _csv("1,a,1,red"), "ingested", stored=1),
    Case("crlf.csv", _csv("1,a,1,red", "2,b,2,blue").replace(b"\n", b"\r\n"), "ingested", stored=2),
    Case("ragged.csv", _csv("1,a,1,red", "2,b,2", "3,a,3,green,extra", "4,b,4,blue"), "ingested",
         quarantined={2: ("unreadable row", "columns", "Found: 3"), 3: ("unreadable row", "TOO MANY COLUMNS")}),
    Case("multiline_field.csv", _csv('1,a,1,"red\nish"', "2,b,2,blue,extra", "3,a,3,green"), "ingested",
         quarantined={2: ("TOO MANY COLUMNS",)}),
    Case("unlabeled.csv", _csv("1,,1,red", "2,,2,blue"), "ingested", stored=2),
    Case("whitespace.csv", _csv(" 1 , a , 1.5 , red ", "2,b, 2 ,blue"), "ingested", stored=2),
    Case("rows.jsonl",
         b'{"id": "1", "label": "a", "x": 1, "color": "red"}\n{"id": 2, "label": "b", "x": "2"\n[1, 2]\n'
         b'"just a string"\n\n{"id": 5, "label": "b", "x": 4.5, "color": null}\n{"id": "6", "label": "q", "x": 1}\n',
         "ingested",
         quarantined={2: ("not valid JSON",), 3: ("not a JSON object",), 4: ("not a JSON object",),
                      7: ("label", "q", "not one of the classes")}),
    # Columns named like the engine's internal ones are ignored, not confused with them.
    Case("engine_column_names.csv", _csv("1,a,1,red,zzz,q", "2,b,2,blue,zzz,q,extra", "3,a,1,red,zzz,q",
                                         header="id,label,x,color,__row,__k\n"),
         "ingested", quarantined={2: ("TOO MANY COLUMNS",)}),
    Case("engine_column_names.jsonl", b'{"id": "1", "label": "a", "x": 1, "color": "red", "__ROW": 9}\n',
         "ingested", stored=1),
    Case("junk.jsonl", b"\x00\x01\x02 not json", "rejected", ("binary",)),
    # Issue 11: a BOM before JSON Lines is not data; JSON arrays and gzip are read; an over-long
    # field costs its row; a header naming a column twice is refused.
    Case("bom.jsonl", b'\xef\xbb\xbf{"id": "1", "label": "a", "x": 1, "color": "red"}\n', "ingested", stored=1),
    Case("rows.json", b'[{"id": "1", "label": "a", "x": 1e2, "color": "red"}, 5, {"id": 2.0, "label": "b", "x": null}]',
         "ingested", quarantined={2: ("not a JSON object",)}),
    Case("object.json", b'{"id": "1", "label": "a"}', "rejected", ("array of objects",)),
    # A key twice in one object has no one value: that row is quarantined naming the key.
    Case("twice.jsonl", b'{"id": "1", "label": "a", "x": 1, "color": "red", "label": "b"}\n{"id": "2", "label": "b", "x": 2, "color": "blue"}\n',
         "ingested", quarantined={1: ('key "label" appears twice',)}),
    Case("twice.json", b'[{"id": "1", "label": "a", "x": 1, "color": "red"}, {"id": "2", "x": 1, "color": "red", "id": "3", "label": "b"}]',
         "ingested", quarantined={2: ('key "id" appears twice',)}),
    Case("broken.json", b'[{"id": "1", "label": "a"', "rejected", ("not valid JSON",)),
    Case("rows.csv.gz", gzip.compress(_csv("1,a,1,red", "2,b,2,blue")), "ingested", stored=2),
    Case("rows.jsonl.gz", gzip.compress(b'{"id": "1", "label": "a", "x": 1, "color": "red"}\n'), "ingested", stored=1),
    Case("not_gzip.csv.gz", _csv("1,a,1,red"), "rejected", ("gzip",)),
    Case("long_field.csv", _csv("1,a,1,red", "2,b,2," + "x" * 3_000_000, "3,a,3,blue"), "ingested",
         quarantined={2: ("column color", "over-long field")}),
    # The sniffer samples the start: a quoted field far down is still read as one field.
    Case("late_quote.csv", _csv(*[f"{i},a,{i},red" for i in range(1, 30001)], '30001,b,1,"red, ish"'), "ingested",
         stored=30001),
    Case("twice.csv", _csv("1,a,1,red,2", header="id,label,x,color,X\n"), "rejected", ("twice", "'x'", "'X'")),
    Case("table.xlsx", b"PK\x03\x04 not really a spreadsheet", "rejected", ("unsupported file type", ".xlsx")),
]


def _quarantine(con: duckdb.DuckDBPyConnection, batch_id: str) -> dict[int, str]:
    return dict(con.execute(
        "SELECT row_number, reason FROM quarantine WHERE batch_id = ? ORDER BY row_number", [batch_id]
    ).fetchall())


def assert_accounted(con: duckdb.DuckDBPyConnection, r: IngestResult) -> None:
    """Every row of the batch is counted once: stored/unchanged or quarantined, and the tables agree."""
    row = con.execute(
        "SELECT rows_in, rows_ok, rows_quarantined, rows_new + rows_changed + rows_unchanged, status "
        "FROM batches WHERE batch_id = ?", [r.batch_id]
    ).fetchone()
    assert row is not None, f"no batches row for {r.batch_id}"
    rows_in, rows_ok, rows_q, rows_kept, status = row
    assert (rows_in, rows_ok, rows_q, status) == (r.rows_in, r.rows_ok, r.rows_quarantined, r.status)
    assert rows_in == rows_ok + rows_q
    assert rows_ok == rows_kept
    quarantined = _quarantine(con, r.batch_id)
    assert len(quarantined) == rows_q, "quarantine rows differ from rows_quarantined (or a row twice)"
    # Row numbers are the file's: data rows for CSV/Parquet, lines for JSONL (blank lines skipped).
    assert all(n >= 1 for n in quarantined)
    stored = {n for (n,) in con.execute("SELECT row_number FROM examples WHERE batch_id = ?", [r.batch_id]).fetchall()}
    assert not stored & set(quarantined), "a row is both stored and quarantined"
    if r.status != "ingested":
        assert rows_in == 0 and not stored and not quarantined


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_file_is_accounted_for_and_explained(
    case: Case, ingest_toy: Callable[..., IngestResult], toy_con: duckdb.DuckDBPyConnection
) -> None:
    r = ingest_toy(case.name, case.content)
    assert r.status == case.status, r.reason
    assert_accounted(toy_con, r)
    reason = (toy_con.execute("SELECT reason FROM batches WHERE batch_id = ?", [r.batch_id]).fetchone()[0] or "")
    for word in case.reason_words:
        assert word.lower() in reason.lower(), f"{word!r} not in {reason!r}"
    if case.status != "ingested":
        return
    quarantined = _quarantine(toy_con, r.batch_id)
    assert set(quarantined) == set(case.quarantined), quarantined
    for n, words in case.quarantined.items():
        for word in words:
            assert word.lower() in quarantined[n].lower(), f"row {n}: {word!r} not in {quarantined[n]!r}"
    # A fresh warehouse: every row not quarantined is stored, under its own row number.
    stored = {n for (n,) in toy_con.execute(
        "SELECT row_number FROM examples WHERE batch_id = ?", [r.batch_id]).fetchall()}
    # (rows.jsonl has a blank line: its row numbers are lines, checked in the next test.)
    assert stored | set(quarantined) == set(range(1, r.rows_in + 1)) or case.name == "rows.jsonl"
    if case.stored is not None:
        assert len(stored) == case.stored


def test_jsonl_row_numbers_are_file_lines(ingest_toy: Callable[..., IngestResult],
                                          toy_con: duckdb.DuckDBPyConnection) -> None:
    case = next(c for c in CASES if c.name == "rows.jsonl")
    r = ingest_toy(case.name, case.content)
    stored = dict(toy_con.execute(
        "SELECT example_id, row_number FROM examples WHERE batch_id = ?", [r.batch_id]).fetchall())
    # Line 5 is blank (skipped, not a row); 1 and 6 are good.
    assert stored == {"1": 1, "5": 6}
    assert r.rows_in == 6


def test_quarantine_keeps_the_raw_row_as_read(ingest_toy: Callable[..., IngestResult],
                                              toy_con: duckdb.DuckDBPyConnection) -> None:
    r = ingest_toy("raw.csv", _csv("1,a,1,red", "2,b,twelve,blue", "3,b,3,blue,extra"))
    raw = dict(toy_con.execute("SELECT row_number, raw FROM quarantine WHERE batch_id = ?", [r.batch_id]).fetchall())
    assert '"x":"twelve"' in raw[2] and '"id":"2"' in raw[2]
    assert raw[3] == "3,b,3,blue,extra"
    assert [q["row_number"] for q in r.quarantine_preview] == [2, 3]


def test_values_are_typed_and_trimmed(ingest_toy: Callable[..., IngestResult],
                                      toy_con: duckdb.DuckDBPyConnection) -> None:
    ingest_toy("w.csv", _csv(" 1 , a , 1.5 , red ", "2,b,,"))
    rows = toy_con.execute("SELECT example_id, label, x, color FROM examples ORDER BY example_id").fetchall()
    assert rows == [("1", "a", 1.5, "red"), ("2", "b", None, None)]


@pytest.mark.parametrize("right", [True, False], ids=["right_columns", "wrong_columns"])
def test_parquet(right: bool, toy_home: Home, toy_con: duckdb.DuckDBPyConnection) -> None:
    path = toy_home.landing / ("right.parquet" if right else "wrong.parquet")
    names = ("id", "label", "x", "color") if right else ("id", "label", "width", "colour")
    toy_con.execute(
        f"COPY (SELECT * FROM (VALUES (1, 'a', 1.5, 'red'), (2, 'b', NULL, 'blue'), (3, 'zz', 'NaN'::DOUBLE, NULL)) "
        f"t({', '.join(names)})) TO '{path}' (FORMAT parquet)"
    )
    r = ingest_file(toy_con, toy_home.config.dataset, path)
    assert_accounted(toy_con, r)
    if not right:
        assert r.status == "rejected"
        assert "'x'" in r.reason and "'color'" in r.reason and "width" in r.reason
        return
    assert (r.status, r.rows_in, r.rows_ok) == ("ingested", 3, 2)
    (reason,) = _quarantine(toy_con, r.batch_id).values()
    # A NaN double (pandas' missing value) is a missing number, not a reason to quarantine.
    assert "zz" in reason and "column x" not in reason


def test_text_dataset_rejects_empty_text(make_home: Callable[..., Home]) -> None:
    from data_engine.store.warehouse import open_warehouse
    from tests.conftest import TEXT_CONFIG

    home = make_home(TEXT_CONFIG, name="text")
    path = home.landing / "notes.csv"
    # Only no-break, zero-width or tab characters is empty text too (they were stored as examples).
    path.write_text('id,label,note\n1,pos,great\n2,neg,\n3,neg,"   "\n4,,fine\n5,pos,"\u00a0\u200b"\n6,neg,"\t"\n',
                    encoding="utf-8")
    with open_warehouse(home) as con:
        r = ingest_file(con, home.config.dataset, path)
        assert_accounted(con, r)
        quarantined = _quarantine(con, r.batch_id)
    assert set(quarantined) == {2, 3, 5, 6}
    assert all("empty text" in q and "note" in q for q in quarantined.values())
    assert (r.rows_ok, r.rows_labeled) == (2, 1)


def test_whole_corpus_twice_changes_nothing(toy_home: Home, toy_con: duckdb.DuckDBPyConnection) -> None:
    ds = toy_home.config.dataset
    paths = []
    for case in CASES:
        path = toy_home.landing / case.name
        path.write_bytes(case.content)
        paths.append(path)
    first = [ingest_file(toy_con, ds, p) for p in paths]
    for r in first:
        assert_accounted(toy_con, r)
    counts = table_counts(toy_con)
    assert counts["batches"] == len(CASES)
    # Same paths again: known batches, nothing written.
    again = [ingest_file(toy_con, ds, p) for p in paths]
    assert all(r.already_known for r in again)
    assert [(r.batch_id, r.status, r.rows_in) for r in again] == [(r.batch_id, r.status, r.rows_in) for r in first]
    assert table_counts(toy_con) == counts
    # Same bytes under other names: a 'duplicate' batch for ingested bytes; rejected bytes are
    # tried again (a rejection can depend on the folder or the config) and rejected again. No rows.
    copies = []
    for p in paths:
        copy = p.with_name("copy_of_" + p.name)
        copy.write_bytes(p.read_bytes())
        copies.append(ingest_file(toy_con, ds, copy))
    after = table_counts(toy_con)
    assert after["batches"] == counts["batches"] + len(CASES)
    assert {k: v for k, v in after.items() if k != "batches"} == {k: v for k, v in counts.items() if k != "batches"}
    for original, copy in zip(first, copies):
        if original.status == "ingested":
            assert copy.status == "duplicate" and original.batch_id in copy.reason
        else:
            assert (copy.status, copy.reason) == ("rejected", original.reason)
        assert_accounted(toy_con, copy)


def test_reader_error_leaves_the_connection_usable(ingest_toy: Callable[..., IngestResult],
                                                  toy_con: duckdb.DuckDBPyConnection) -> None:
    # A Parquet file that is not Parquet makes DuckDB's reader fail mid-statement.
    bad = ingest_toy("broken.parquet", b"PAR1 this is not parquet PAR1")
    assert bad.status == "rejected" and bad.reason
    good = ingest_toy("good.csv", _csv("1,a,1,red"))
    assert (good.status, good.rows_ok) == ("ingested", 1)
    assert toy_con.execute("SELECT count(*) FROM batches").fetchone()[0] == 2


def test_a_rejected_first_file_does_not_fix_the_schema(ingest_toy: Callable[..., IngestResult],
                                                       toy_con: duckdb.DuckDBPyConnection) -> None:
    r = ingest_toy("gold/nolabel.csv", b"id,x,color\n1,one,red\n")
    assert r.status == "rejected" and "gold" in r.reason and "'label'" in r.reason
    assert toy_con.execute("SELECT count(*) FROM dataset_columns").fetchone()[0] == 0
    # The first accepted file decides: x is numeric from it, not categorical from the rejected one.
    ingest_toy("first.csv", _csv("1,a,1.5,red"))
    assert dict(toy_con.execute("SELECT column_name, column_type FROM dataset_columns").fetchall()) == {
        "x": "numeric", "color": "categorical", "label": "label"}


def test_file_row_numbers_survive_rejected_records(ingest_toy: Callable[..., IngestResult],
                                                   toy_con: duckdb.DuckDBPyConnection) -> None:
    rows = [f"{i},a,{i},red" for i in range(1, 41)]
    for bad in (3, 4, 17, 40):  # consecutive, isolated and last rejected records
        rows[bad - 1] += ",extra"
    r = ingest_toy("many.csv", _csv(*rows))
    stored = dict(toy_con.execute(
        "SELECT example_id, row_number FROM examples WHERE batch_id = ?", [r.batch_id]).fetchall())
    assert all(int(i) == n for i, n in stored.items()), "a stored row lost its file row number"
    assert set(_quarantine(toy_con, r.batch_id)) == {3, 4, 17, 40}


def test_summary_says_how_many_quarantined_rows_it_does_not_show(ingest_toy: Callable[..., IngestResult]) -> None:
    from data_engine.ingest.summary import summarize

    r = ingest_toy("many.csv", _csv("1,a,one,red", "2,b,two,blue", "3,b,three,blue", "4,a,four,red", "5,a,5,red"))
    text = summarize([r])
    assert text.count("  row ") == 3
    assert f"... and 1 more quarantined row(s): table quarantine, batch_id = '{r.batch_id}'" in text
