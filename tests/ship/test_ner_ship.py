"""An NER model shipped: trained on the span sets in force, gated on gold by entity F1, evaluated on
a file (``evaluate --file --json``: f1, precision, recall, per_type_f1, n) and predicting spans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_engine.cli import main
from data_engine.demo.entities import TYPES, inject_errors, make_texts
from data_engine.steps import ingest_step
from tests.homes import make_home

CONFIG = {"dataset": {"name": "news", "modality": "text", "task": "ner", "id_column": "id", "label_column": "spans",
                      "text_column": "text", "feature_columns": [], "classes": ["LOC", "ORG", "PER"]},
          "gate": {"metric": "f1"}}


def _write(path: Path, rows: list[tuple[str, str]], prefix: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"{prefix}{i}", "text": t, "spans": json.loads(s)}) + "\n"
                            for i, (t, s) in enumerate(rows)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("ner-ship")
    home = make_home(root, CONFIG)
    train = inject_errors(make_texts(200, seed=31), rate=0.05, seed=32)
    ingest_step(home, [_write(home.landing / "train.jsonl", [(e.text, e.given_label) for e in train], "n")])
    gold = [(e.text, e.true_label) for e in inject_errors(make_texts(60, seed=33), rate=0.0)]
    ingest_step(home, [_write(home.landing / "gold" / "gold.jsonl", gold, "g")], gold=True)
    test = [(e.text, e.true_label) for e in inject_errors(make_texts(40, seed=34), rate=0.0)]
    return home, _write(root / "test.jsonl", test, "t")


def test_train_gate_evaluate_and_predict(shipped, capsys: pytest.CaptureFixture[str]) -> None:
    home, test = shipped
    h = ["--home", str(home.root)]
    assert main([*h, "train"]) == 0
    assert main([*h, "evaluate"]) == 0
    out = capsys.readouterr().out
    assert "f1" in out and "PASS" in out
    assert main([*h, "deploy", "promote"]) == 0
    capsys.readouterr()
    assert main([*h, "evaluate", "--file", str(test), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert set(figures) >= {"f1", "precision", "recall", "per_type_f1", "n"}
    assert figures["n"] == 40 and set(figures["per_type_f1"]) == set(TYPES)
    assert 0.8 <= figures["f1"] <= 1.0
    out_path = test.parent / "predicted.csv"
    assert main([*h, "predict", str(test), "--out", str(out_path)]) == 0
    import pandas as pd

    predicted = pd.read_csv(out_path)
    assert list(predicted.columns)[:3] == ["id", "predicted_spans", "predicted_score"]
    spans = json.loads(predicted.loc[0, "predicted_spans"])
    assert all(set(s) == {"start", "end", "label"} for s in spans)
