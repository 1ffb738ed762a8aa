"""Classes as a managed set: a class that arrives later is said at ingest with the command that adds
it, `classes add` re-admits its quarantined rows, `classes rename` relabels the labels in force by
new ledger events, and a `[dataset] classes` that differs from the stored set is said, not applied."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import duckdb
import pytest

from data_engine.errors import EngineError
from data_engine.ingest.batch import IngestResult, ingest_file
from data_engine.ingest.classes import add_classes, rename_class
from data_engine.store.classes import config_drift
from data_engine.store.home import Home
from data_engine.store.ledger import append_events
from data_engine.store.warehouse import open_warehouse, table_counts

INFERRED = """\
[dataset]
name = "pets"
modality = "tabular"
id_column = "id"
label_column = "label"
feature_columns = ["x", "color"]
column_types = { x = "numeric", color = "categorical" }
"""
HEADER = "id,label,x,color\n"


@pytest.fixture()
def pets(make_home: Callable[..., Home]) -> Home:
    return make_home(INFERRED)


@pytest.fixture()
def con(pets: Home) -> duckdb.DuckDBPyConnection:
    with open_warehouse(pets) as c:
        yield c


def _land(home: Home, con: duckdb.DuckDBPyConnection, name: str, *rows: str) -> IngestResult:
    path = home.landing / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return ingest_file(con, home.config.dataset, path)


def _classes(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute("SELECT class_label, position FROM dataset_classes ORDER BY position").fetchall()


def _labels(con: duckdb.DuckDBPyConnection) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in con.execute("SELECT example_id, label, source FROM current_labels").fetchall()}


def test_a_class_added_later_readmits_its_quarantined_rows(pets: Home, con: duckdb.DuckDBPyConnection) -> None:
    _land(pets, con, "one.csv", "1,cat,1,red", "2,dog,2,blue", "3,cat,3,red")
    two = _land(pets, con, "two.csv", "4,bird,4,red", "5,dog,5,red", "6,bird,6,blue", "7,fish,7,red", "8,,8,red")
    assert (two.status, two.rows_ok, two.rows_quarantined) == ("ingested", 2, 3)
    assert two.unknown_labels == {"bird": 2, "fish": 1}
    assert any("`data-engine classes add bird fish`" in w and "'bird' (2 rows)" in w for w in two.warnings), two.warnings
    # Every row of this batch is a new class: rejected (no good row), its rows kept in quarantine.
    three = _land(pets, con, "three.csv", "9,bird,9,red", "10,bird,10,red")
    assert three.status == "rejected" and three.unknown_labels == {"bird": 2}
    before = table_counts(con)["examples"]

    change = add_classes(con, pets.config.dataset, ["bird"], actor="alice")
    assert (change.rows_readmitted, change.readmitted_by_class, change.rows_superseded) == (4, {"bird": 4}, 0)
    assert [b.batch_id for b in change.batches] == [f"{two.batch_id}-readmit-1", f"{three.batch_id}-readmit-1"]
    assert table_counts(con)["examples"] == before + 4
    assert _classes(con) == [("cat", 0), ("dog", 1), ("bird", 2)]   # order kept, the new class appended
    labels = _labels(con)
    assert {k: labels[k] for k in ("4", "6", "9", "10")} == {k: ("bird", "ingest") for k in ("4", "6", "9", "10")}
    # Re-admitted rows keep their file row numbers; the quarantine row says where it went; fish waits.
    assert con.execute("SELECT batch_id, row_number FROM examples WHERE example_id = '6'").fetchone() == (
        f"{two.batch_id}-readmit-1", 3)
    assert con.execute("SELECT row_number, readmitted_in FROM quarantine WHERE batch_id = ? ORDER BY row_number",
                       [two.batch_id]).fetchall() == [(1, f"{two.batch_id}-readmit-1"), (3, f"{two.batch_id}-readmit-1"),
                                                      (4, None)]
    assert con.execute("SELECT status, rows_in, rows_ok, rows_quarantined, format FROM batches WHERE batch_id = ?",
                       [f"{two.batch_id}-readmit-1"]).fetchone() == ("ingested", 2, 2, 0, "quarantine")
    assert con.execute("SELECT kind, class_label, actor, rows_readmitted FROM class_changes").fetchall() == [
        ("add", "bird", "alice", 4)]
    # A row labeled with the new class now lands like any other.
    assert _land(pets, con, "four.csv", "11,bird,11,red").rows_ok == 1
    with pytest.raises(EngineError, match="already a class"):
        add_classes(con, pets.config.dataset, ["bird"])
    # fish: added later still, its one row comes in then.
    assert add_classes(con, pets.config.dataset, ["fish"]).rows_readmitted == 1
    assert _classes(con)[-1] == ("fish", 3)


def test_a_row_a_later_batch_superseded_stays_quarantined(pets: Home, con: duckdb.DuckDBPyConnection) -> None:
    _land(pets, con, "one.csv", "1,cat,1,red", "2,dog,2,blue")
    _land(pets, con, "two.csv", "5,bird,5,red", "6,bird,6,red")
    _land(pets, con, "three.csv", "5,dog,50,blue")            # id 5 stored later with another label
    change = add_classes(con, pets.config.dataset, ["bird"])
    assert (change.rows_readmitted, change.rows_superseded) == (1, 1)
    assert _labels(con)["5"] == ("dog", "ingest") and _labels(con)["6"] == ("bird", "ingest")


def test_a_rename_relabels_the_labels_in_force_by_new_events(pets: Home, con: duckdb.DuckDBPyConnection) -> None:
    _land(pets, con, "one.csv", "1,cat,1,red", "2,dog,2,blue", "3,cat,3,red")
    con.execute("BEGIN TRANSACTION")
    append_events(con, [{"example_id": "2", "example_version": 1, "label": "cat", "source": "review",
                         "actor": "alice", "detail": "{}"}])
    con.execute("COMMIT")
    two = _land(pets, con, "two.csv", "4,feline,4,red", "5,feline,5,blue")
    assert two.rows_quarantined == 2 and two.unknown_labels == {"feline": 2}
    events_before = con.execute("SELECT event_id, example_id, example_version, label, source FROM label_events "
                                "ORDER BY event_id").fetchall()

    change = rename_class(con, pets.config.dataset, "cat", "feline", actor="bob")
    assert (change.labels_renamed, change.rows_readmitted) == (3, 2)
    assert _classes(con) == [("feline", 0), ("dog", 1)]   # the same position
    labels = _labels(con)
    # Each label in force keeps its source (so its precedence): the review stays a review.
    assert labels == {"1": ("feline", "ingest"), "2": ("feline", "review"), "3": ("feline", "ingest"),
                      "4": ("feline", "ingest"), "5": ("feline", "ingest")}
    events_after = con.execute("SELECT event_id, example_id, example_version, label, source FROM label_events "
                               "ORDER BY event_id").fetchall()
    assert events_after[:len(events_before)] == events_before          # nothing rewritten
    appended = [e for e in events_after[len(events_before):] if e[1] in ("1", "2", "3")]
    assert [(e[1], e[3], e[4]) for e in appended] == [("1", "feline", "ingest"), ("2", "feline", "review"),
                                                       ("3", "feline", "ingest")]
    assert con.execute("SELECT kind, class_label, old_label, labels_renamed, rows_readmitted FROM class_changes"
                       ).fetchall() == [("rename", "feline", "cat", 3, 2)]
    # A file written before the rename is named as such (its labels are not mapped silently).
    late = _land(pets, con, "late.csv", "6,cat,6,red", "7,dog,7,red")
    assert late.rows_quarantined == 1 and late.unknown_labels == {"cat": 1}
    assert any("'cat' was renamed 'feline'" in w and "classes add" not in w for w in late.warnings), late.warnings
    with pytest.raises(EngineError, match="not a class"):
        rename_class(con, pets.config.dataset, "cat", "kitty")
    with pytest.raises(EngineError, match="never merges"):
        rename_class(con, pets.config.dataset, "feline", "dog")


def test_a_configured_class_list_that_differs_is_said_with_the_command(
        toy_home: Home, toy_con: duckdb.DuckDBPyConnection) -> None:
    path = toy_home.landing / "one.csv"
    path.write_text(HEADER + "1,a,1,red\n2,b,2,blue\n", encoding="utf-8")
    ingest_file(toy_con, toy_home.config.dataset, path)
    ds = toy_home.config.dataset
    assert config_drift(toy_con, ds) is None
    added = config_drift(toy_con, dataclasses.replace(ds, classes=("a", "b", "c")))
    assert added.endswith("to apply, run `data-engine classes add c`")
    renamed = config_drift(toy_con, dataclasses.replace(ds, classes=("a", "beta")))
    assert "`data-engine classes rename b beta`" in renamed and "`data-engine classes add beta`" in renamed
    # Nothing was applied.
    assert _classes(toy_con) == [("a", 0), ("b", 1)]


def test_a_task_without_classes_has_none_to_add(make_home: Callable[..., Home]) -> None:
    home = make_home(INFERRED.replace('name = "pets"', 'name = "prices"\ntask = "regression"'))
    with open_warehouse(home) as c:
        with pytest.raises(EngineError, match="task = 'regression' has no classes"):
            add_classes(c, home.config.dataset, ["bird"])
        with pytest.raises(EngineError, match="has no classes"):
            rename_class(c, home.config.dataset, "a", "b")


def test_a_label_differing_from_a_class_only_in_case_is_said_as_such_never_rewritten(
        pets: Home, con: duckdb.DuckDBPyConnection) -> None:
    _land(pets, con, "one.csv", "1,barolo,1,red", "2,chianti,2,blue", "3,barolo,3,red")
    two = _land(pets, con, "two.csv", "4,Barolo,4,red", "5,chianti,5,red", "6, CHIANTI ,6,red", "7,rioja,7,red")
    assert two.unknown_labels == {"Barolo": 1, "CHIANTI": 1, "rioja": 1}
    said = next(w for w in two.warnings if "not one of the classes" in w)
    assert ("'Barolo' differs from the class 'barolo' only in case or spaces: write 'barolo' in the file and land "
            "it again, or to spell the class so, `data-engine classes rename barolo Barolo`") in said
    assert "'CHIANTI' differs from the class 'chianti' only in case or spaces" in said
    # Only the new one is advised as a class to add.
    assert "`data-engine classes add rioja`" in said and "classes add Barolo" not in said, said
    # Nothing rewritten: the rows wait in the quarantine with the label as written.
    assert _classes(con) == [("barolo", 0), ("chianti", 1)] and two.rows_quarantined == 3
    with pytest.raises(EngineError, match=r"'Barolo' differs from the class 'barolo' only in case or spaces"):
        add_classes(con, pets.config.dataset, ["Barolo"])
    renamed = rename_class(con, pets.config.dataset, "barolo", "Barolo")
    assert renamed.rows_readmitted == 1 and _classes(con) == [("Barolo", 0), ("chianti", 1)]


def test_new_labels_that_differ_only_in_case_are_one_class_advised_and_added_once(
        pets: Home, con: duckdb.DuckDBPyConnection) -> None:
    """A class arriving in a later batch under two spellings (``neutral`` 3 rows, ``Neutral`` and
    `` neutral`` trimmed): the advice adds one class, never two that look the same."""
    _land(pets, con, "one.csv", "1,pos,1,red", "2,neg,2,blue")
    _land(pets, con, "two.csv", "3,pos,3,red")
    three = _land(pets, con, "three.csv", "4,neutral,4,red", "5,Neutral,5,blue", "6,neutral,6,red", "7,NEUTRAL,7,red",
                  "8,neutral,8,red", "9,pos,9,red")
    assert three.unknown_labels == {"neutral": 3, "NEUTRAL": 1, "Neutral": 1}
    said = next(w for w in three.warnings if "not one of the classes" in w)
    assert "`data-engine classes add neutral`" in said and "classes add neutral Neutral" not in said, said
    assert "'Neutral' differs from 'neutral' (also not a class yet) only in case or spaces" in said
    assert "'NEUTRAL' differs from 'neutral' (also not a class yet)" in said
    with pytest.raises(EngineError, match="'neutral' and 'Neutral' differ only in case or spaces"):
        add_classes(con, pets.config.dataset, ["neutral", "Neutral"])
    assert _classes(con) == [("neg", 0), ("pos", 1)]
    change = add_classes(con, pets.config.dataset, ["neutral"])
    # The other spellings wait in the quarantine, and the change says so.
    assert change.rows_readmitted == 3 and change.spellings_waiting == {
        "NEUTRAL": {"class": "neutral", "rows": 1}, "Neutral": {"class": "neutral", "rows": 1}}
    # A rename never makes a class that differs from another only in case.
    with pytest.raises(EngineError, match="'NEG' differs from the class 'neg' only in case or spaces"):
        rename_class(con, pets.config.dataset, "pos", "NEG")
    assert rename_class(con, pets.config.dataset, "pos", "Pos").labels_renamed == 3
