"""Ingestion semantics: versions, the label ledger, current_labels precedence, gold, unlabeled
rows, classes and types fixed by the first batch, and all-or-nothing batches."""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pytest

from data_engine.ingest import batch as ingest_mod
from data_engine.ingest.batch import IngestResult, ingest_file
from data_engine.store.dataset import load_examples
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse, table_counts
from tests.conftest import NEXT_EVENT_ID

Ingest = Callable[..., IngestResult]
HEADER = "id,label,x,color\n"


def _csv(*rows: str, header: str = HEADER) -> str:
    return header + "".join(r + "\n" for r in rows)


def _versions(con: duckdb.DuckDBPyConnection, example_id: str) -> list[tuple]:
    return con.execute(
        "SELECT version, label, x, color FROM examples WHERE example_id = ? ORDER BY version", [example_id]
    ).fetchall()


def _events(con: duckdb.DuckDBPyConnection, example_id: str) -> list[tuple]:
    return con.execute(
        "SELECT example_version, label, source FROM label_events WHERE example_id = ? ORDER BY event_id", [example_id]
    ).fetchall()


# ---- versions ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "second, same",
    [
        ("1,a,1.5,red", True),                     # identical
        ("1, a ,1.50,red ", True),                 # same values once trimmed and typed
        ("1,a,15e-1,red", True),                   # same number, other spelling
        ("1,b,1.5,red", False),                    # relabeled
        ("1,a,1.6,red", False),                    # feature changed
        ("1,a,,red", False),                       # value removed
        ("1,,1.5,red", False),                     # label removed
    ],
)
def test_same_content_is_a_noop_and_new_content_a_new_version(
    second: str, same: bool, ingest_toy: Ingest, toy_con: duckdb.DuckDBPyConnection
) -> None:
    first = ingest_toy("one.csv", _csv("1,a,1.5,red", "2,b,2,blue"))
    assert (first.rows_new, first.rows_labeled) == (2, 2)
    r = ingest_toy("two.csv", _csv("2,b,2,blue", second))  # other bytes: rows in another order
    assert (r.rows_unchanged, r.rows_changed, r.rows_new) == ((2, 0, 0) if same else (1, 1, 0))
    versions = _versions(toy_con, "1")
    assert len(versions) == (1 if same else 2)
    assert versions[0] == (1, "a", 1.5, "red"), "version 1 must be kept as it was"
    events = _events(toy_con, "1")
    if same:
        assert events == [(1, "a", "ingest")]
    else:
        new_label = versions[1][1]
        # The ledger gets the new version's label, if it has one; history stays.
        assert events == [(1, "a", "ingest")] + ([(2, new_label, "ingest")] if new_label else [])
        assert r.rows_labeled == (1 if new_label else 0)


def test_extra_and_reordered_columns_are_the_same_content(ingest_toy: Ingest,
                                                          toy_con: duckdb.DuckDBPyConnection) -> None:
    ingest_toy("one.csv", _csv("1,a,1.5,red"))
    r = ingest_toy("two.csv", _csv("red,1.5,a,1,ignored", header="color,x,label,id,comment\n"))
    assert r.rows_unchanged == 1 and r.ignored_columns == ["comment"]
    assert len(_versions(toy_con, "1")) == 1


def test_hashes_follow_content(ingest_toy: Ingest, toy_con: duckdb.DuckDBPyConnection) -> None:
    ingest_toy("one.csv", _csv("1,a,1.5,red", "2,b,1.5,red", "3,a,2,red"))
    ingest_toy("two.csv", _csv("1,b,1.5,red"))
    rows = {(i, v): (fh, ch) for i, v, fh, ch in toy_con.execute(
        "SELECT example_id, version, feature_hash, content_hash FROM examples").fetchall()}
    fh = {k: v[0] for k, v in rows.items()}
    ch = {k: v[1] for k, v in rows.items()}
    assert fh[("1", 1)] == fh[("2", 1)] == fh[("1", 2)] != fh[("3", 1)]   # same features, any label
    assert ch[("1", 1)] != ch[("2", 1)] and ch[("1", 2)] == ch[("2", 1)]    # label is part of content
    assert all(isinstance(h, int) and 0 <= h < 2**64 for h in [*fh.values(), *ch.values()])  # UBIGINT


def test_versions_keep_counting(ingest_toy: Ingest, toy_con: duckdb.DuckDBPyConnection) -> None:
    for i, x in enumerate(["1", "2", "3", "2"]):
        ingest_toy(f"v{i}.csv", _csv(f"1,a,{x},red", f"{10 + i},a,1,red"))
    assert [v[0] for v in _versions(toy_con, "1")] == [1, 2, 3, 4]
    assert toy_con.execute("SELECT version, x FROM current_examples WHERE example_id = '1'").fetchone() == (4, 2.0)


# ---- current_labels precedence ------------------------------------------------------------------

def _add_event(con: duckdb.DuckDBPyConnection, label: str | None, source: str, version: int | None = 1,
               actor: str = "alice") -> None:
    con.execute(
        "INSERT INTO label_ledger (event_id, example_id, example_version, label, source, actor) "
        f"VALUES ({NEXT_EVENT_ID}, '1', ?, ?, ?, ?)",
        [version, label, source, actor],
    )


@pytest.mark.parametrize(
    "events, expected",
    [
        ([], ("a", False, "ingest")),
        ([("b", "review")], ("b", False, "review")),                          # review beats ingest
        ([("b", "review"), ("a", "review")], ("a", False, "review")),         # later review wins
        ([("b", "review"), (None, "review")], (None, True, "review")),        # a discard marks it
        ([(None, "review"), ("b", "review")], ("b", False, "review")),        # ... until reviewed again
        ([("b", "consensus"), ("a", "review")], ("b", False, "consensus")),   # consensus beats review
        ([("b", "vote")], ("a", False, "ingest")),                            # a vote alone is not in force
        ([("b", "review", None)], ("b", False, "review")),                    # version-less event counts
    ],
)
def test_current_labels_precedence(events: list[tuple], expected: tuple, ingest_toy: Ingest,
                                   toy_con: duckdb.DuckDBPyConnection) -> None:
    ingest_toy("one.csv", _csv("1,a,1.5,red"))
    for label, source, *version in events:
        _add_event(toy_con, label, source, *(version or [1]))
    row = toy_con.execute(
        "SELECT label, is_discarded, source FROM current_labels WHERE example_id = '1'").fetchone()
    assert row == expected


def test_event_ids_are_unique_and_follow_batches_and_file_order(ingest_toy: Ingest,
                                                                 toy_con: duckdb.DuckDBPyConnection) -> None:
    ingest_toy("one.csv", _csv("1,a,1.5,red", "2,,1.5,red", "3,b,2,red"))
    _add_event(toy_con, "b", "review")
    ingest_toy("two.csv", _csv("4,a,1,red", "1,b,1.5,red", "5,a,1,blue"))
    rows = toy_con.execute("SELECT event_id, example_id FROM label_events ORDER BY event_id").fetchall()
    # batch, then review, then batch, then the review carried to example 1's new version
    assert [r[1] for r in rows] == ["1", "3", "1", "4", "1", "5", "1"]
    assert len({r[0] for r in rows}) == len(rows)


@pytest.mark.parametrize("new_label, conflicts", [("b", 1), ("", 0)])
def test_new_content_version_keeps_the_verdict_in_force(new_label: str, conflicts: int, ingest_toy: Ingest,
                                                        toy_con: duckdb.DuckDBPyConnection) -> None:
    """A changed version never undoes a person's verdict: the discard in force on version 1 is
    carried to version 2 (a new ledger event, the old ones untouched); a file label that differs
    from it is a counted conflict, an unlabeled row is none."""
    ingest_toy("one.csv", _csv("1,a,1.5,red"))
    _add_event(toy_con, "b", "review")
    _add_event(toy_con, None, "review")
    r = ingest_toy("two.csv", _csv(f"1,{new_label},9,red"))
    assert (r.rows_changed, r.verdicts_kept, r.verdict_conflicts) == (1, 1, conflicts)
    assert r.changed_columns == {"x": 1, "label": 1}  # label a -> b, or a -> none
    row = toy_con.execute("SELECT label, is_discarded, source, actor FROM current_labels WHERE example_id = '1'"
                          ).fetchone()
    assert row == (None, True, "review", "alice")
    assert _events(toy_con, "1")[:3] == [(1, "a", "ingest"), (1, "b", "review"), (1, None, "review")]
    # ... and a review of the new version is in force again.
    _add_event(toy_con, "a", "review", version=2)
    assert toy_con.execute("SELECT label, source FROM current_labels WHERE example_id = '1'").fetchone() == (
        "a", "review")


# ---- ingest events, derived from examples -----------------------------------------------------

def test_an_ingest_derives_one_event_per_labeled_row(ingest_toy: Ingest, toy_con: duckdb.DuckDBPyConnection) -> None:
    r = ingest_toy("one.csv", _csv("1,a,1.5,red", "2,,1.5,red", "3,b,2,red", "4,zz,1,red"))
    g = ingest_toy("gold/g.csv", _csv("9,a,1,red"))
    assert (r.rows_labeled, g.rows_labeled) == (2, 1)
    events = toy_con.execute(
        "SELECT le.event_id, le.example_id, le.example_version, le.label, le.source, le.actor, "
        "le.detail->>'batch_id', (le.detail->>'gold')::BOOLEAN, le.created_at = e.ingested_at "
        "FROM label_events le JOIN examples e ON e.example_id = le.example_id AND e.version = le.example_version "
        "ORDER BY le.event_id").fetchall()
    # Ids: the highest so far plus the file's row number (row 4 was quarantined).
    assert events == [
        (1, "1", 1, "a", "ingest", f"batch:{r.batch_id}", r.batch_id, False, True),
        (3, "3", 1, "b", "ingest", f"batch:{r.batch_id}", r.batch_id, False, True),
        (4, "gold:9", 1, "a", "ingest", f"batch:{g.batch_id}", g.batch_id, True, True),
    ]
    assert toy_con.execute("SELECT count(*) FROM label_ledger").fetchone()[0] == 0   # nothing written as rows


def test_derived_events_read_the_dataset_label_column(make_home: Callable[..., Home]) -> None:
    home = make_home(INFER_CONFIG, name="infer")   # the label column is "y"
    (home.landing / "l.csv").write_text("id,y,n,c\n2,yes,1,p\n3,,2,q\n4,no,2,q\n", encoding="utf-8")
    with open_warehouse(home) as con:
        ingest_file(con, home.config.dataset, home.landing / "l.csv")
        events = con.execute("SELECT event_id, example_id, label FROM label_events ORDER BY event_id").fetchall()
        labels = con.execute("SELECT example_id, label FROM current_labels ORDER BY example_id").fetchall()
    assert events == [(1, "2", "yes"), (3, "4", "no")]
    assert labels == [("2", "yes"), ("4", "no")]


def test_event_ids_increase_across_ingest_review_and_a_changed_version(
    ingest_toy: Ingest, toy_con: duckdb.DuckDBPyConnection
) -> None:
    from data_engine.mine.runs import excluded_examples
    from data_engine.store.ledger import append_events as _write_events

    ingest_toy("one.csv", _csv("1,a,1.5,red", "2,b,2,blue"))
    toy_con.execute("BEGIN TRANSACTION")
    assert _write_events(toy_con, [{"example_id": "1", "example_version": 1, "label": "b", "source": "review",
                                    "actor": "alice", "detail": "{}"}]) == [3]
    toy_con.execute("COMMIT")
    assert excluded_examples(toy_con) == ["1"]
    ingest_toy("two.csv", _csv("2,b,2,blue", "1,a,9,red"))   # 1 changed, row 2 of the file
    rows = toy_con.execute(
        "SELECT event_id, example_id, example_version, source FROM label_events ORDER BY event_id").fetchall()
    assert rows == [(1, "1", 1, "ingest"), (2, "2", 1, "ingest"), (3, "1", 1, "review"), (5, "1", 2, "ingest"),
                    (6, "1", 2, "review")]
    # The reviewer's verdict is carried to the new version (after its ingest event) and stays in
    # force over the file's label 'a': the example stays reviewed.
    assert toy_con.execute("SELECT label, source, actor FROM current_labels WHERE example_id = '1'").fetchone() == (
        "b", "review", "alice")
    assert excluded_examples(toy_con) == ["1"]


# ---- gold and unlabeled rows ------------------------------------------------------------------

def test_gold_folder_files_are_gold(ingest_toy: Ingest, toy_con: duckdb.DuckDBPyConnection) -> None:
    g = ingest_toy("gold/g.csv", _csv("1,a,1,red", "2,,2,blue"))
    n = ingest_toy("plain.csv", _csv("3,a,1,red"))
    assert g.is_gold and not n.is_gold
    assert toy_con.execute("SELECT batch_id, is_gold FROM batches ORDER BY is_gold").fetchall() == [
        (n.batch_id, False), (g.batch_id, True)]
    assert dict(toy_con.execute("SELECT example_id, is_gold FROM examples").fetchall()) == {"gold:1": True, "3": False}
    (reason,) = toy_con.execute("SELECT reason FROM quarantine WHERE batch_id = ?", [g.batch_id]).fetchone()
    assert "gold row without a label" in reason


def test_gold_file_without_label_column_is_rejected(ingest_toy: Ingest, toy_con: duckdb.DuckDBPyConnection) -> None:
    r = ingest_toy("gold/g.csv", "id,x,color\n1,1,red\n")
    assert r.status == "rejected" and "gold" in r.reason and "'label'" in r.reason
    assert table_counts(toy_con)["examples"] == 0
    # The same bytes outside gold/ are fine (a rejection is not a "seen these bytes"): unlabeled
    # rows are welcome.
    ok = ingest_toy("plain.csv", "id,x,color\n1,1,red\n")
    assert (ok.status, ok.rows_ok, ok.rows_labeled) == ("ingested", 1, 0)


def test_unlabeled_rows_are_welcome(toy_home: Home, ingest_toy: Ingest, toy_con: duckdb.DuckDBPyConnection) -> None:
    r = ingest_toy("u.csv", _csv("1,,1,red", "2,b,2,blue", "3,,3,green"))
    assert (r.rows_ok, r.rows_quarantined, r.rows_labeled) == (3, 0, 1)
    ingest_toy("gold/g.csv", _csv("9,a,1,red"))
    ds = toy_home.config.dataset
    assert list(load_examples(toy_con, ds, subset="unlabeled")["example_id"]) == ["1", "3"]
    assert list(load_examples(toy_con, ds, subset="train")["example_id"]) == ["2"]
    assert list(load_examples(toy_con, ds, subset="gold")["example_id"]) == ["gold:9"]


# ---- classes and types fixed by the first batch -----------------------------------------------

INFER_CONFIG = """\
[dataset]
name = "infer"
modality = "tabular"
id_column = "id"
label_column = "y"
feature_columns = ["n", "c"]
"""


def test_classes_and_types_come_from_the_first_labeled_batch(make_home: Callable[..., Home]) -> None:
    home = make_home(INFER_CONFIG, name="infer")
    ds = home.config.dataset
    rows = [f"{i},{['10', '2', 'x'][i % 3]},{i * 0.5},{['p', 'q'][i % 2]}" for i in range(1, 41)]
    rows[4] = "5,2,five,p"  # one typo among 40 numbers: still numeric, the typo quarantined
    (home.landing / "a.csv").write_text("id,y,n,c\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (home.landing / "b.csv").write_text("id,y,n,c\n100,2,1,p\n101,20,1,p\n", encoding="utf-8")
    with open_warehouse(home) as con:
        a = ingest_file(con, ds, home.landing / "a.csv")
        b = ingest_file(con, ds, home.landing / "b.csv")
        classes = [r[0] for r in con.execute("SELECT class_label FROM dataset_classes ORDER BY position").fetchall()]
        types = dict(con.execute("SELECT column_name, column_type FROM dataset_columns").fetchall())
        reasons = [r[0] for r in con.execute("SELECT reason FROM quarantine ORDER BY batch_id").fetchall()]
    assert classes == ["2", "10", "x"]  # numbers in numeric order
    assert types == {"n": "numeric", "c": "categorical", "y": "label"}
    assert a.rows_quarantined == 1 and b.rows_quarantined == 1
    assert any("five" in r and "column n" in r for r in reasons)
    assert any("20" in r and "not one of the classes" in r for r in reasons)


def test_classes_wait_for_a_labeled_batch(make_home: Callable[..., Home]) -> None:
    home = make_home(INFER_CONFIG, name="infer")
    ds = home.config.dataset
    (home.landing / "u.csv").write_text("id,n,c\n1,1,p\n", encoding="utf-8")
    (home.landing / "l.csv").write_text("id,y,n,c\n2,yes,1,p\n3,no,2,q\n", encoding="utf-8")
    with open_warehouse(home) as con:
        ingest_file(con, ds, home.landing / "u.csv")
        assert con.execute("SELECT count(*) FROM dataset_classes").fetchone()[0] == 0
        ingest_file(con, ds, home.landing / "l.csv")
        assert [r[0] for r in con.execute(
            "SELECT class_label FROM dataset_classes ORDER BY position").fetchall()] == ["no", "yes"]


def test_a_file_without_the_label_column_is_stored_unlabeled_and_says_so(make_home: Callable[..., Home]) -> None:
    # A new user's trial: label_column = "kind" while the file's labels are in "species"; every row
    # was stored unlabeled with exit 0, and only "ignored columns: 'species'" hinted at it.
    home = make_home(INFER_CONFIG, name="infer")
    (home.landing / "u.csv").write_text("id,n,c,species\n1,1,p,setosa\n", encoding="utf-8")
    (home.landing / "v.csv").write_text("id,n,c\n2,1,p\n", encoding="utf-8")
    with open_warehouse(home) as con:
        renamed = ingest_file(con, home.config.dataset, home.landing / "u.csv")
        plain = ingest_file(con, home.config.dataset, home.landing / "v.csv")
    assert renamed.status == "ingested" and renamed.rows_labeled == 0
    assert ("no label column 'y' in this file: its rows are stored unlabeled (examples already stored with the "
            "same inputs keep their labels); if the labels are in 'species', set [dataset] label_column") in renamed.notes
    assert ("no label column 'y' in this file: its rows are stored unlabeled (examples already stored with the "
            "same inputs keep their labels)") in plain.notes


# ---- all or nothing -----------------------------------------------------------------------------

def test_a_failure_mid_batch_leaves_no_trace(monkeypatch: pytest.MonkeyPatch, ingest_toy: Ingest,
                                             toy_con: duckdb.DuckDBPyConnection) -> None:
    ingest_toy("one.csv", _csv("1,a,1,red"))
    before = table_counts(toy_con)
    real_store = ingest_mod.store_versions

    def store_then_die(con: duckdb.DuckDBPyConnection, *args: object, **kwargs: object) -> None:
        real_store(con, *args, **kwargs)
        raise RuntimeError("killed mid-batch")

    monkeypatch.setattr(ingest_mod, "store_versions", store_then_die)
    with pytest.raises(RuntimeError, match="killed mid-batch"):
        ingest_toy("two.csv", _csv("1,b,1,red", "2,b,2,blue"))
    assert table_counts(toy_con) == before
    monkeypatch.undo()
    r = ingest_toy("two.csv")  # the retry starts clean
    assert (r.status, r.rows_new, r.rows_changed) == ("ingested", 1, 1)


def test_result_counts_match_the_tables(ingest_toy: Ingest, toy_con: duckdb.DuckDBPyConnection) -> None:
    ingest_toy("one.csv", _csv("1,a,1,red", "2,b,2,blue"))
    r = ingest_toy("two.csv", _csv("1,a,1,red", "2,a,2,blue", "3,,3,red", "4,zz,1,red"))
    assert (r.rows_in, r.rows_ok, r.rows_quarantined) == (4, 3, 1)
    assert (r.rows_new, r.rows_changed, r.rows_unchanged, r.rows_labeled) == (1, 1, 1, 1)
    stored = toy_con.execute(
        "SELECT count(*), count(*) FILTER (version > 1) FROM examples WHERE batch_id = ?", [r.batch_id]).fetchone()
    assert stored == (r.rows_new + r.rows_changed, r.rows_changed)
    assert toy_con.execute(
        "SELECT count(*) FROM label_events WHERE actor = ?", [f"batch:{r.batch_id}"]).fetchone()[0] == r.rows_labeled


def test_classes_edited_after_the_first_batch_are_named_not_silently_ignored(
    ingest_toy: Ingest, toy_home: Home, toy_con: duckdb.DuckDBPyConnection
) -> None:
    """A user who adds a class to [dataset] classes later is told the stored classes stay in force,
    and the quarantined label's reason lists them (it said only 'not one of the classes')."""
    import dataclasses

    ingest_toy("one.csv", _csv("1,a,1,red", "2,b,2,blue"))
    edited = dataclasses.replace(toy_home.config.dataset, classes=("a", "b", "c"))
    path = toy_home.landing / "two.csv"
    path.write_text(_csv("3,c,1,red", "4,b,2,blue"), encoding="utf-8")
    result = ingest_file(toy_con, edited, path)
    assert result.rows_quarantined == 1
    assert any("'a', 'b', 'c'" in n and "differ from the stored classes ('a', 'b')" in n
               and n.endswith("run `data-engine classes add c`") for n in result.notes), result.notes
    reason = toy_con.execute("SELECT reason FROM quarantine WHERE batch_id = ?", [result.batch_id]).fetchone()[0]
    assert reason == "column label: label c is not one of the classes (a, b)"
