"""A first model must beat its task's trivial baseline on gold, through the gate on a warehouse, for
numbers (the training mean, scored by MAE) and tags (each tag's training majority, scored by
micro-F1): labels unrelated to the inputs are refused with both figures, learnable labels promoted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.bench.detect_regression import load_diabetes_frame
from data_engine.ship import gate
from data_engine.ship.evaluation import predict_gold
from data_engine.ship.registry import get_model
from data_engine.ship.training import train_candidate
from data_engine.steps import ingest_step
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import Multilabel
from tests import multilabel_support
from tests.homes import make_home


def _config(name: str, task: str, label: str, columns: list[str], extra: str = "") -> str:
    return f"""[dataset]
name = "{name}"
modality = "tabular"
id_column = "id"
label_column = "{label}"
feature_columns = {json.dumps(columns)}
task = "{task}"
{extra}
[mining]
n_jobs = 1
"""


def _land(home, X: pd.DataFrame, ids: np.ndarray, labels: list, label: str, train: np.ndarray, gold: np.ndarray):
    """Ingest rows ``train`` as training data and rows ``gold`` as gold data (CSV files)."""
    for rows, path in ((train, home.landing / "train.csv"), (gold, home.landing / "gold" / "gold.csv")):
        frame = X.iloc[rows].copy()
        frame.insert(0, "id", ids[rows])
        frame[label] = [labels[i] for i in rows]
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        ingest_step(home, [path])


def _gate(home, X_gold: pd.DataFrame):
    with open_warehouse(home) as con:
        record = train_candidate(con, home).record
        verdict = gate.run_gate(con, home)
        stored = get_model(con, record.version)
    pred = predict_gold(home, record, X_gold.reset_index(drop=True))
    return verdict, stored, pred


@pytest.mark.parametrize("shuffled", [True, False])
def test_numbers_a_first_model_must_beat_the_training_mean(tmp_path: Path, shuffled: bool) -> None:
    X, y = load_diabetes_frame()
    if shuffled:  # targets unrelated to the inputs: nothing to learn
        y = np.random.default_rng(0).permutation(y)
    ids = np.array([f"p{i:04d}" for i in range(len(y))], dtype=object)
    gold = np.arange(0, len(y), 4)
    train = np.setdiff1d(np.arange(len(y)), gold)
    home = make_home(tmp_path, _config("numbers", "regression", "target", list(X.columns)), name="numbers")
    _land(home, X, ids, [repr(float(v)) for v in y], "target", train, gold)
    verdict, stored, pred = _gate(home, X.iloc[gold])
    mean = float(np.mean(y[train]))
    base_mae = float(np.mean(np.abs(y[gold] - mean)))
    mae = float(np.mean(np.abs(np.asarray(pred, dtype=float) - y[gold])))
    assert stored.params["trivial_baseline"] == {"kind": "mean", "name": "training-mean baseline", "label": repr(mean)}
    assert stored.metrics["gate"]["baseline_figure"] == pytest.approx(base_mae)
    if shuffled:
        assert (round(mae, 4), round(base_mae, 4)) == (65.7266, 62.9826)
        assert not verdict.promote and stored.status == "refused"
        assert verdict.reason == (f"first model: mae {mae:.4f} on 111 gold examples is not below the training-mean "
                                  f"baseline's {base_mae:.4f} (the training labels alone, scored on the same gold)")
    else:
        assert (round(mae, 4), round(base_mae, 4)) == (50.6039, 70.9107)
        assert verdict.promote
        assert verdict.reason == (f"first model: no champion yet; mae {mae:.4f} on 111 gold examples, below the "
                                  f"training-mean baseline's {base_mae:.4f}")


@pytest.mark.parametrize("unrelated", [True, False])
def test_tags_a_first_model_must_beat_each_tags_training_majority(tmp_path: Path, unrelated: bool) -> None:
    data = multilabel_support.table(400, n_tags=3, noise=0.0, seed=0)
    tags = list(data.frame["tags"])
    if unrelated:  # tag0 on about 80 % of the rows, tag1 on about 30 %, whatever the inputs
        rng = np.random.default_rng(1)
        tags = [[t for t, p in (("tag0", 0.8), ("tag1", 0.3)) if rng.random() < p] for _ in tags]
    X = data.frame.drop(columns=["id", "tags"])
    ids = data.frame["id"].to_numpy(dtype=object)
    gold, train = np.arange(0, 400, 4), np.setdiff1d(np.arange(400), np.arange(0, 400, 4))
    home = make_home(tmp_path, _config("rows", "multilabel", "tags", list(X.columns),
                                       f"classes = {json.dumps(data.tags)}\n"), name="rows")
    _land(home, X, ids, [json.dumps(sorted(t)) for t in tags], "tags", train, gold)
    verdict, stored, pred = _gate(home, X.iloc[gold])
    # Each tag's majority over the training rows, counted here by hand.
    majority = json.dumps([t for t in data.tags if 2 * sum(t in tags[i] for i in train) > len(train)],
                          separators=(",", ":"))
    y_gold = np.array([json.dumps(sorted(tags[i]), separators=(",", ":")) for i in gold], dtype=object)
    task = Multilabel()
    f1 = task.metrics(y_gold, np.asarray(pred, dtype=object), data.tags)["micro_f1"]
    base_f1 = task.metrics(y_gold, np.full(len(gold), majority, dtype=object), data.tags)["micro_f1"]
    assert stored.params["trivial_baseline"] == {"kind": "tag_majority", "name": "per-tag majority baseline",
                                                 "label": majority}
    assert stored.metrics["gate"]["baseline_figure"] == pytest.approx(base_f1)
    if unrelated:
        assert majority == '["tag0"]' and (round(f1, 4), round(base_f1, 4)) == (0.7826, 0.7826)
        assert not verdict.promote and stored.status == "refused"
        assert verdict.reason.startswith(
            f"first model: micro_f1 {f1:.4f} on 100 gold examples is not above the per-tag majority baseline's "
            f"{base_f1:.4f} (the training labels alone, scored on the same gold)")
    else:
        assert majority == '["tag1","tag2"]' and (round(f1, 4), round(base_f1, 4)) == (0.84, 0.6385)
        assert verdict.promote
        assert verdict.reason.startswith(f"first model: no champion yet; micro_f1 {f1:.4f} on 100 gold examples, "
                                         f"above the per-tag majority baseline's {base_f1:.4f}")
