"""The engine's grow selection measures distances in the pretrained embedding mining attached."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.mine.embedders.base import EMBEDDING_COLUMN
from data_engine.mine.plan import _grow_rows
from data_engine.mine.predictions import PredictionState
from data_engine.store.config import parse_config


def _state(with_vectors: bool) -> PredictionState:
    # In the input column u0 lies farthest from the labeled examples; in the attached vectors, u2.
    train = pd.DataFrame({"example_id": ["l0", "l1"], "version": 1, "x": [0.0, 0.1]})
    unlabeled = pd.DataFrame({"example_id": [f"u{i}" for i in range(6)], "version": 1,
                              "x": [9.0, 0.2, 0.3, 0.2, 0.1, 0.3]})
    if with_vectors:
        train[EMBEDDING_COLUMN] = pd.Series([np.zeros(2, np.float32), np.full(2, 0.1, np.float32)], dtype=object)
        far = np.array([[1, 0], [0, 1], [9, 9], [2, 1], [1, 2], [0.5, 0.5]], np.float32)  # u2 is far off
        unlabeled[EMBEDDING_COLUMN] = pd.Series(list(far), dtype=object)
    return PredictionState(
        train=train, unlabeled=unlabeled, classes=["a", "b"], schema={"x": "numeric"}, label_snapshot=1,
        model_spec="m", labels=np.array([0, 1]), oof_probs=np.full((2, 2), 0.5), folds=np.zeros(2, np.int32),
        unlabeled_probs=np.full((6, 2), 0.5), reused=False, newly_scored=6, champion_scored=0,
        embedding="e5-small" if with_vectors else "tfidf")


def _pick(state: PredictionState, strategy: str) -> list[str]:
    cfg = parse_config({"dataset": {"name": "t", "modality": "tabular", "label_column": "label", "id_column": "id",
                                    "feature_columns": ["x"], "classes": ["a", "b"]},
                        "review": {"strategy": strategy, "explore_share": 0.0}})
    rows = _grow_rows(cfg, state, np.arange(6), 1, {"uncertain": 1.0})
    return rows["example_id"].tolist()


def test_grow_selection_uses_the_stored_embedding() -> None:
    # k-center greedy picks the candidate farthest from the labeled ones in the attached embedding;
    # the default strategy (all equally doubtful here) spreads over the same space.
    assert _pick(_state(True), "diversity") == ["u2"]
    assert _pick(_state(True), "diverse_margin") == ["u2"]
    assert _pick(_state(True), "diverse_minibatch") == ["u2"]


def test_grow_selection_without_stored_embedding_uses_the_feature_space() -> None:
    # No attached vectors: the model's own feature space of the input column.
    assert _pick(_state(False), "diversity") == ["u0"]
    assert _pick(_state(False), "diverse_minibatch") == ["u0"]
