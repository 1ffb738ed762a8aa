"""The user's trainer for tag sets (``[dataset] task = "multilabel"``): one probability per tag.

``TRAIN.parquet``'s ``label`` is the example's tag set as a Parquet list of text (``[]``: labeled
with no tags); the manifest's ``task`` is ``"multilabel"`` and its ``classes`` are every tag of the
dataset, in the dataset's order. ``PRED.parquet`` holds ``example_id`` and one column per tag,
named as the tag, holding that tag's probability: finite, in [0, 1], independent of the other tags
(a row need not sum to 1). A tag is predicted at probability >= 0.5, as for the engine's own tag
models (:data:`data_engine.tasks.tagsets.THRESHOLD`).

The engine's own tag model is one calibrated binary copy of a classifier per tag
(:class:`data_engine.tasks.multilabel_oof.TagwiseClassifier`); the user's trainer is given the
whole tag set instead, so a network with one sigmoid output per tag is trained as the team trains it.
It lives with the multi-label task, not in :mod:`data_engine.trainers` (a layer below the tasks,
which cannot import them), because its answers are the task's stored tag sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin

from data_engine.errors import EngineError
from data_engine.tasks.tagsets import THRESHOLD, decode
from data_engine.trainers.command import SMOKE_ROWS, CommandModel, validate_predictions


class CommandTagger(ClassifierMixin, CommandModel):
    """A multi-label classifier whose ``fit`` and ``predict_proba`` run the user's trainer
    (:class:`CommandModel`). ``tags``: the tag names, the columns of the 0/1 matrix ``fit`` takes
    (the served model is given the dataset's tags); without it the manifest's ``class_names`` (the
    mining stage's). After ``fit``: ``classes_`` (the tag names, the order of ``predict_proba``'s
    columns) besides the model directory.
    """

    task = "multilabel"

    def __init__(self, command: Sequence[str] = (), timeout_s: float = 3600.0,
                 manifest: dict[str, Any] | None = None, out_of_fold: str = "engine",
                 tags: tuple[str, ...] | None = None) -> None:
        super().__init__(command, timeout_s, manifest, out_of_fold)
        self.tags = tags

    def fit(self, X: pd.DataFrame, Y: np.ndarray) -> "CommandTagger":
        """Run ``COMMAND fit`` on ``X`` (n rows) with tags ``Y`` (n, K) 0/1, then its ``predict`` on
        some of the rows (a faulty predict fails here, before anything is registered). Raises EngineError."""
        self._fit(X, Y, None)
        self.predict_proba(X.iloc[:SMOKE_ROWS])
        return self

    def fit_out_of_fold(self, X: pd.DataFrame, Y: np.ndarray, folds: np.ndarray) -> np.ndarray:
        """One ``COMMAND fit`` returning out-of-fold per-tag probabilities, shape (n, K), for the
        engine's ``folds`` (n,) (as :meth:`CommandClassifier.fit_out_of_fold`)."""
        probs = self._fit(X, Y, np.asarray(folds))
        assert probs is not None
        return probs

    def _fit(self, X: pd.DataFrame, Y: np.ndarray, folds: np.ndarray | None) -> np.ndarray | None:
        extra = dict(self.manifest or {})
        dataset_tags = extra.pop("class_names", None)
        Y = np.asarray(Y)
        if Y.ndim != 2:
            raise EngineError(f"tags: the labels must be a (n, K) 0/1 matrix, got shape {Y.shape}")
        names = [str(t) for t in (self.tags if self.tags is not None else dataset_tags or [])]
        if len(names) != Y.shape[1]:
            raise EngineError(f"tags: {len(names)} tag names for {Y.shape[1]} tag columns "
                              "(the trainer is given the dataset's tags by name)")
        self.classes_ = np.asarray(names, dtype=object)
        lookup = np.asarray(names, dtype=object)
        labels = [list(lookup[row > 0]) for row in Y]  # TRAIN.parquet: a list of tag names per row
        return self._run_fit(X, labels, {**extra, "classes": names}, folds)

    def read_predictions(self, path: Path, ids: Sequence[str], *, what: str = "trainer `predict`") -> np.ndarray:
        """Per-tag probabilities (len(ids), K) from ``path``, in ``classes_`` order
        (:func:`~data_engine.trainers.command.validate_predictions` with ``per_tag``)."""
        return validate_predictions(path, ids, [str(c) for c in self.classes_], what=what, per_tag=True)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Run ``COMMAND predict`` on ``X`` (n rows); per-tag probabilities, shape (n, K). Raises EngineError."""
        return self._run_predict(X)

    def decide(self, answer: np.ndarray) -> np.ndarray:
        """The tags at probability >= 0.5 of each row of ``answer`` (n, K): the stored tag sets
        (JSON arrays), shape (n,), as the engine's tag model answers once it knows its tags."""
        on = (np.asarray(answer) >= THRESHOLD).astype(np.int8)
        return np.asarray(decode(on, [str(c) for c in self.classes_]), dtype=object)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The predicted tag set of each row of ``X`` (stored spelling), shape (n,)."""
        return self.decide(self.predict_proba(X))
