"""The budget split's figure is the task's own share of examples right (issue: on a numbers home
`review status` printed "expected accuracy points per review" from an argmax over (prediction,
lower, upper), near 0, and tasks whose models store no ``accuracy`` never read a learning curve)."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from data_engine.mine.budget import learning_curve, split_budget
from data_engine.mine.plan import _oof_accuracy
from data_engine.mine.predictions import PredictionState
from data_engine.tasks import Classification, Multilabel, Regression


def _state(task, labels: np.ndarray, oof: np.ndarray, classes: list[str]) -> PredictionState:
    n = len(labels)
    return PredictionState(
        train=pd.DataFrame({"example_id": [f"l{i}" for i in range(n)], "version": 1}),
        unlabeled=pd.DataFrame({"example_id": pd.Series([], dtype=str), "version": pd.Series([], dtype=int)}),
        classes=classes, schema={}, label_snapshot=1, model_spec="m", labels=labels, oof_probs=oof,
        folds=np.zeros(n, np.int32), unlabeled_probs=np.empty((0, oof.shape[1])), reused=False, newly_scored=0,
        champion_scored=0, task=task)


def test_numbers_give_the_share_of_labels_inside_their_out_of_fold_interval() -> None:
    y = np.arange(10, dtype=float) * 10.0  # 0, 10, ..., 90: far above the column indices an argmax gives
    pred = np.column_stack([y + 1.0, y - 2.0, y + 2.0])
    pred[[3, 7], 1:] = [[50.0, 60.0], [0.0, 1.0]]  # two labels outside their interval
    state = _state(Regression(), y, pred, [])
    assert _oof_accuracy(state) == pytest.approx(0.8)
    pred[5] = np.nan  # rows without a finite prediction are left out
    assert _oof_accuracy(_state(Regression(), y, pred, [])) == pytest.approx(7 / 9)


def test_tags_give_their_exact_match() -> None:
    labels = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    oof = np.array([[0.9, 0.1, 0.8], [0.2, 0.7, 0.6], [0.6, 0.9, 0.1], [0.1, 0.4, 0.3]])
    # Rows 0 and 2 exactly right; row 1 has an extra tag, row 3 misses its tag.
    assert _oof_accuracy(_state(Multilabel(), labels, oof, ["a", "b", "c"])) == pytest.approx(0.5)
    assert Multilabel().share_points == "exact-match points" and Multilabel().share_metric == "exact_match"


def test_classes_keep_accuracy() -> None:
    labels = np.array([0, 1, 2, 1, 0])
    oof = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [np.nan] * 3, [0.3, 0.3, 0.4]])
    assert _oof_accuracy(_state(Classification(), labels, oof, ["a", "b", "c"])) == pytest.approx(0.5)
    assert _oof_accuracy(_state(Classification(), labels[:3], oof[:3], ["a", "b", "c"])) == pytest.approx(2 / 3)
    assert _oof_accuracy(_state(Classification(), labels[3:4], oof[3:4], ["a", "b", "c"])) == 0.5  # none finite
    split = split_budget(10, {"label": 2}, {"label": 0.5}, accuracy=0.9, n_labeled=100)
    assert split.figure == "accuracy points" and split.as_metadata()["gain_figure"] == "accuracy points"


def test_the_learning_curve_reads_the_tasks_stored_figure() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE models (version INTEGER, train_size INTEGER, metrics VARCHAR)")
    rows = [(1, 100, {"exact_match": 0.6, "micro_f1": 0.8}), (2, 200, {"exact_match": 0.7, "micro_f1": 0.85}),
            (3, 300, {"accuracy": 0.9}), (4, 400, None)]
    con.executemany("INSERT INTO models VALUES (?, ?, ?)",
                    [(v, n, None if m is None else json.dumps(m)) for v, n, m in rows])
    assert learning_curve(con, "exact_match") == [(100, 0.6), (200, 0.7)]
    assert learning_curve(con) == [(300, 0.9)]  # classes: accuracy, as before
    assert learning_curve(con, None) == []  # a task storing no such share: the prior
    assert learning_curve(con, "exact_match", points=1) == [(200, 0.7)]
