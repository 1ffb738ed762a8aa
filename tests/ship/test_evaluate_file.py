"""`data-engine evaluate --file` and `data-engine predict`: any model on any file in the dataset's
schema, read and validated by the ingest code (bad rows named, never a crash), the warehouse untouched."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score

from data_engine.cli import main
from data_engine.ship import registry
from data_engine.store.warehouse import open_warehouse
from tests.loop_support import PIXELS, train_again


@pytest.fixture(scope="module")
def built(tmp_path_factory, fitted_digits):
    """A home with champion v1 and candidate v2, and 200 held-out digits the home never saw."""
    home = fitted_digits.copy(tmp_path_factory.mktemp("evalfile") / "home")
    info, v1 = fitted_digits.info, fitted_digits.champion
    with open_warehouse(home) as con:
        v2 = train_again(con, home).record  # a new label snapshot: the engine never trains one twice
    held = np.arange(len(info["y"]))[-200:]
    frame = pd.DataFrame(info["X"][held], columns=PIXELS)
    frame.insert(0, "id", [f"h{i}" for i in held])
    frame.insert(1, "label", info["y"][held])
    return home, v1, v2, frame


def _cli(capsys, *argv):
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _write(frame: pd.DataFrame, path):
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.astype({"label": str}).to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_evaluate_file_prints_the_champions_figures(built, tmp_path, capsys, suffix):
    home, v1, _, frame = built
    path = tmp_path / f"held{suffix}"
    _write(frame, path)
    code, out, _ = _cli(capsys, "--home", str(home.root), "evaluate", "--file", str(path), "--json")
    assert code == 0
    got = json.loads(out)
    model = registry.load_model(home, v1)
    pred = model.predict(frame[PIXELS]).astype(str)
    y = frame["label"].astype(str)
    assert got["n"] == 200 and got["model_version"] == v1.version
    assert got["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert got["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    classes = sorted(set(y))
    assert got["per_class_recall"] == pytest.approx(dict(zip(classes, recall_score(y, pred, labels=classes,
                                                                                      average=None))))


def test_bad_rows_are_named_and_left_out(built, tmp_path, capsys):
    home, _, v2, frame = built
    bad = frame.astype({"px3": object, "label": object}).copy()
    bad.loc[4, "px3"] = "abc"
    bad.loc[7, "label"] = "eleven"
    bad.loc[9, "label"] = None
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    code, out, err = _cli(capsys, "--home", str(home.root), "evaluate", "--file", str(path), "--version",
                          str(v2.version))
    assert code == 0
    assert f"{path} row 5: column px3: abc is not a finite number" in err
    # A label that is not a class: said once, in one note naming the label, its rows and the fix.
    assert f"{path} row 8:" not in err and err.count("eleven") == 2
    assert (f"note: {path}: 1 row left out (row 8): their label is not one of the classes: 'eleven' (1 row); "
            "relabel them in the file") in err and "`data-engine classes add eleven`" in err
    assert f"{path} row 10: gold row without a label" in err and "2 row(s) left out and the rows below" in err
    assert f"model v{v2.version} on {path}: 197 labeled rows; accuracy" in out and "recall 9:" in out
    with open_warehouse(home, read_only=True) as con:  # nothing of the file reached the warehouse
        assert con.execute("SELECT count(*) FROM examples WHERE example_id LIKE 'h%'").fetchone()[0] == 0


def test_predict_writes_labels_and_probabilities(built, tmp_path, capsys):
    home, v1, _, frame = built
    path = tmp_path / "unlabeled.csv"
    frame.drop(columns=["label"]).head(25).to_csv(path, index=False)
    out_file = tmp_path / "out" / "pred.parquet"
    code, out, _ = _cli(capsys, "--home", str(home.root), "predict", str(path), "--out", str(out_file))
    assert code == 0 and "25 predictions written" in out
    pred = pd.read_parquet(out_file)
    assert list(pred.columns[:3]) == ["id", "predicted_label", "predicted_score"]
    assert [c for c in pred.columns if c.startswith("p_")] == [f"p_{c}" for c in v1.classes]
    probs = pred[[f"p_{c}" for c in v1.classes]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (pred["predicted_label"] == np.asarray(v1.classes)[probs.argmax(axis=1)]).all()
    code, out, _ = _cli(capsys, "--home", str(home.root), "predict", str(path))
    assert code == 0 and out.splitlines()[0].startswith("id,predicted_label,predicted_score,p_0")
    assert len(out.splitlines()) == 26


def test_user_mistakes_are_one_line_errors(built, tmp_path, capsys):
    home, *_ , frame = built
    path = tmp_path / "nolabel.csv"
    frame.drop(columns=["label", "px10"]).to_csv(path, index=False)
    code, _, err = _cli(capsys, "--home", str(home.root), "evaluate", "--file", str(path))
    assert code == 2 and "missing required column(s) 'px10', 'label'" in err and "Traceback" not in err
    code, _, err = _cli(capsys, "--home", str(home.root), "evaluate", "--file", str(tmp_path / "none.csv"))
    assert code == 2 and "no such file" in err
    code, _, err = _cli(capsys, "--home", str(home.root), "predict", str(path), "--version", "99")
    assert code == 2 and "no model version 99" in err


def test_columns_match_as_in_ingest(built, tmp_path, capsys):
    """`Label` and ` px3 ` are read as `label` and `px3`, as ingest reads them; a long header is
    listed with how many columns the message leaves out."""
    home, v1, _, frame = built
    path = tmp_path / "renamed.csv"
    frame.rename(columns={"label": "Label", "px3": " PX3 "}).to_csv(path, index=False)
    code, out, err = _cli(capsys, "--home", str(home.root), "evaluate", "--file", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["n"] == 200
    path = tmp_path / "short.csv"
    frame.drop(columns=["px63"]).to_csv(path, index=False)
    code, _, err = _cli(capsys, "--home", str(home.root), "predict", str(path))
    assert code == 2 and "missing required column(s) 'px63'" in err and "more)" in err
