"""``data-engine export``: the exported rows are the labels in force in the warehouse, in every
format, with discards left out (or marked when asked), unlabeled rows kept with an empty label, gold
never mixed in, and the file's columns typed as the user wrote them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from data_engine.cli import main
from data_engine.errors import EngineError
from data_engine.ingest.batch import ingest_file
from data_engine.store.ledger import append_events
from data_engine.review.rules import apply_rule
from data_engine.ship.export import export_training_data, format_for
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse

CONFIG = """\
[dataset]
name = "passengers"
modality = "tabular"
id_column = "PassengerId"
label_column = "Survived"
feature_columns = ["Age", "Fare", "Sex"]
"""


@pytest.fixture()
def home(make_home: Callable[..., Home]) -> Home:
    """Eight training rows (one unlabeled), two gold rows; a review relabels 3, a rule discards 6."""
    home = make_home(CONFIG)
    train = pd.DataFrame({"PassengerId": range(1, 9), "Age": [22, 38, 26, 35, 35, None, 54, 2],
                          "Fare": [7.25, 71.2833, 7.925, 53.1, 8.05, 8.4583, 51.8625, 21.075],
                          "Sex": ["male", "female", "female", "female", "male", "male", "male", "male"],
                          "Survived": [0, 1, 1, 1, 0, 0, 0, None]})
    gold = pd.DataFrame({"PassengerId": [100, 101], "Age": [30, 40], "Fare": [10.0, 20.0],
                         "Sex": ["male", "female"], "Survived": [0, 1]})
    with open_warehouse(home) as con:
        for name, frame, is_gold in (("train.csv", train, False), ("gold.csv", gold, True)):
            path = (home.gold_landing if is_gold else home.landing) / name
            frame.to_csv(path, index=False)
            assert ingest_file(con, home.config.dataset, path, gold=is_gold).status == "ingested"
        append_events(con, [{"example_id": "3", "example_version": 1, "label": "0", "source": "review",
                             "actor": "tester", "detail": "{}"}])
    apply_rule(home, "PassengerId = 6", discard=True, actor="tester")
    return home


def in_force(home: Home, *, with_discarded: bool) -> pd.DataFrame:
    """The warehouse's own answer: every current training example with its label in force."""
    with open_warehouse(home, read_only=True) as con:
        return con.execute(
            "SELECT ce.example_id, cl.label, cl.source, coalesce(cl.is_discarded, false) AS discarded "
            "FROM current_examples ce LEFT JOIN current_labels cl USING (example_id) "
            "WHERE NOT ce.is_gold AND (? OR NOT coalesce(cl.is_discarded, false)) ORDER BY ce.example_id",
            [with_discarded]).fetchdf()


def read_back(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(path)
    if fmt == "parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=True)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
@pytest.mark.parametrize("with_discarded", [False, True])
def test_export_rows_are_the_labels_in_force(home: Home, tmp_path: Path, fmt: str, with_discarded: bool,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"out.{fmt}"
    argv = ["--home", str(home.root), "export", "--format", fmt, "--out", str(out)]
    assert main(argv + (["--include-discarded"] if with_discarded else [])) == 0
    assert str(out) in capsys.readouterr().out
    got = read_back(out, fmt)
    want = in_force(home, with_discarded=with_discarded)
    # The same examples, each with the label in force and its source.
    assert sorted(got["PassengerId"].astype(str)) == sorted(want["example_id"])
    got_labels = {str(i): (None if pd.isna(l) else str(int(l)), None if pd.isna(s) else s)
                  for i, l, s in zip(got["PassengerId"], got["Survived"], got["label_source"])}
    want_labels = {i: (None if pd.isna(l) else l, None if pd.isna(s) else s)
                   for i, l, s in zip(want["example_id"], want["label"], want["source"])}
    assert got_labels == want_labels
    # The review's relabel is in force; the unlabeled row is there with an empty label.
    assert got_labels["3"] == ("0", "review") and got_labels["8"] == (None, None)
    # Gold never; the discarded example only when asked, then marked (its label empty).
    assert not set(got["PassengerId"]) & {100, 101}
    if with_discarded:
        row = got[got["PassengerId"] == 6].iloc[0]
        assert bool(row["discarded"]) and pd.isna(row["Survived"]) and row["label_source"] == "rule"
        assert got["discarded"].sum() == 1
    else:
        assert 6 not in set(got["PassengerId"]) and "discarded" not in got.columns
    # The file's columns under their names, in file order, then the engine's.
    assert list(got.columns[:5]) == ["PassengerId", "Age", "Fare", "Sex", "Survived"]
    assert list(got.columns[5:8]) == ["label_source", "label_event_id", "label_snapshot"]
    with open_warehouse(home, read_only=True) as con:
        snapshot = con.execute("SELECT max(event_id) FROM label_events").fetchone()[0]
    assert (got["label_snapshot"] == snapshot).all()


def test_export_values_are_typed_as_written(home: Home, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with open_warehouse(home, read_only=True) as con:
        result = export_training_data(con, home.config.dataset, out, "jsonl")
    rows = {r["PassengerId"]: r for r in map(json.loads, out.read_text().splitlines())}
    # Whole numbers stay integers (ids, ages, the 0/1 classes); fares stay decimals; text stays text.
    assert rows[1] == {"PassengerId": 1, "Age": 22, "Fare": 7.25, "Sex": "male", "Survived": 0,
                       "label_source": "ingest", "label_event_id": rows[1]["label_event_id"],
                       "label_snapshot": result.label_snapshot}
    assert rows[3]["Survived"] == 0 and rows[3]["label_source"] == "review"
    assert rows[8]["Survived"] is None and rows[8]["label_source"] is None
    assert (result.rows, result.labeled, result.unlabeled, result.discarded) == (7, 6, 1, 0)
    assert result.sources == {"ingest": 5, "review": 1}


def test_export_of_text_labels_and_content_ids(make_home: Callable[..., Home], tmp_path: Path) -> None:
    config = ('[dataset]\nname = "notes"\nmodality = "text"\nlabel_column = "Sentiment"\n'
              'text_column = "Sentence"\n')
    home = make_home(config, name="notes")
    path = home.landing / "notes.csv"
    pd.DataFrame({"Sentence": ["good film", "bad film", "fine", "awful"],
                  "Sentiment": ["pos", "neg", "pos", "neg"]}).to_csv(path, index=False)
    with open_warehouse(home) as con:
        ingest_file(con, home.config.dataset, path)
    apply_rule(home, "Sentence = 'fine'", discard=False, label="neg", actor="tester")
    out = tmp_path / "notes.parquet"
    assert main(["--home", str(home.root), "export", "--out", str(out)]) == 0  # format from the extension
    got = pd.read_parquet(out)
    assert list(got.columns[:3]) == ["example_id", "Sentence", "Sentiment"]
    assert got["example_id"].str.startswith("c").all()  # no id column: the engine's content ids
    assert dict(zip(got["Sentence"], got["Sentiment"])) == {"good film": "pos", "bad film": "neg",
                                                            "fine": "neg", "awful": "neg"}
    assert dict(zip(got["Sentence"], got["label_source"]))["fine"] == "rule"


def test_default_path_and_user_mistakes(home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(home.root), "export"]) == 0
    written = list((home.root / "exports").glob("passengers-labels-*.csv"))
    assert len(written) == 1 and len(pd.read_csv(written[0])) == 7
    capsys.readouterr()
    # A format that contradicts the file name, a missing folder: one line, exit 2, no file.
    assert main(["--home", str(home.root), "export", "--format", "csv", "--out", str(tmp_path / "x.parquet")]) == 2
    assert "x.parquet" in capsys.readouterr().err
    assert main(["--home", str(home.root), "export", "--out", str(tmp_path / "nope" / "x.csv")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert format_for(None, None) == "csv" and format_for(tmp_path / "a.jsonl", None) == "jsonl"
    with pytest.raises(EngineError, match="unknown export format"):
        format_for(None, "xlsx")


def test_dagster_asset_writes_the_same_rows(home: Home) -> None:
    import dagster as dg

    from assets.resources import EngineResource
    from assets.ship import training_data_export
    from definitions import defs

    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_assets_def("training_data_export")
    result = dg.materialize([training_data_export], resources={"engine": EngineResource(home=str(home.root))})
    assert result.success
    meta = result.asset_materializations_for_node("training_data_export")[0].metadata
    got = pd.read_parquet(home.root / "exports" / "passengers.parquet")
    want = in_force(home, with_discarded=False)
    assert sorted(got["PassengerId"].astype(str)) == sorted(want["example_id"])
    assert meta["dagster/row_count"].value == len(want) == 7 and meta["unlabeled"].value == 1
