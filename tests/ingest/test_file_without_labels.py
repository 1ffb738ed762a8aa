"""A file without the label column says nothing about labels: labeled examples whose inputs are the
same keep their version and their label (a new-user trial lost 50 labels this way: every row became
an unlabeled new version)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_engine.cli import main
from data_engine.store.warehouse import open_warehouse
from tests import homes

CONFIG = """
[dataset]
name = "flowers"
modality = "tabular"
id_column = "id"
label_column = "species"
feature_columns = ["petal", "sepal"]
"""


def test_a_file_without_the_label_column_keeps_the_labels_in_force(tmp_path: Path) -> None:
    home = homes.make_home(tmp_path, CONFIG)
    labeled = pd.DataFrame({"id": [f"f{i}" for i in range(8)], "petal": [1.0, 1.2, 4.5, 4.7, 1.1, 4.6, 1.3, 4.4],
                            "sepal": [3.5, 3.0, 3.2, 3.1, 3.4, 2.9, 3.6, 3.0],
                            "species": ["setosa", "setosa", "versicolor", "versicolor"] * 2})
    labeled.to_csv(home.landing / "labeled.csv", index=False)
    assert main(["--home", str(home.root), "ingest", str(home.landing / "labeled.csv")]) == 0
    bare = labeled.drop(columns="species")
    bare.loc[7, "petal"] = 9.9  # one example's input really changed
    bare.to_csv(home.landing / "bare.csv", index=False)
    assert main(["--home", str(home.root), "ingest", str(home.landing / "bare.csv")]) == 0
    with open_warehouse(home, read_only=True) as con:
        in_force = dict(con.execute("SELECT example_id, label FROM current_labels").fetchall())
        versions = dict(con.execute("SELECT example_id, version FROM current_examples").fetchall())
    assert {e: v for e, v in versions.items() if v > 1} == {"f7": 2}  # the changed input only
    assert in_force == {f"f{i}": labeled.loc[i, "species"] for i in range(7)}  # f7: new content, no label given


def test_a_column_unique_on_every_row_is_not_offered_as_the_labels(tmp_path: Path) -> None:
    # The trial's hint named a timestamp column ("if the labels are in 'ts'"): labels repeat classes.
    home = homes.make_home(tmp_path, CONFIG)
    frame = pd.DataFrame({"id": [f"u{i}" for i in range(30)], "petal": range(30), "sepal": range(30),
                          "ts": pd.date_range("2024-01-01", periods=30, freq="h").astype(str),
                          "kind": ["a", "b", "c"] * 10})
    frame.to_csv(home.landing / "u.csv", index=False)
    with open_warehouse(home) as con:
        from data_engine.ingest.batch import ingest_file

        result = ingest_file(con, home.config.dataset, home.landing / "u.csv")
    (note,) = [n for n in result.notes if n.startswith("no label column")]
    assert note.endswith("if the labels are in 'kind', set [dataset] label_column")
