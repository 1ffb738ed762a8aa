"""The user's trainer for numbers (``[dataset] task = "regression"``): ``PRED.parquet`` holds
``example_id`` and ``prediction``, one finite number per input row.

``TRAIN.parquet``'s ``label`` is the number in force (float64); the manifest's ``task`` is
``"regression"`` and it has no ``classes``. The interval the engine answers with is the engine's:
the served model is wrapped, as the built-in regressors are, in
:class:`data_engine.tasks.regression_model.IntervalRegressor` (its out-of-fold residuals, from K
more ``fit``/``predict`` calls at training).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import RegressorMixin

from data_engine.errors import EngineError
from data_engine.trainers.command import SMOKE_ROWS, CommandModel, read_prediction_file

# The column of a regression trainer's PRED.parquet.
PREDICTION_COLUMN = "prediction"


class CommandRegressor(RegressorMixin, CommandModel):
    """A regressor whose ``fit`` and ``predict`` run the user's trainer (:class:`CommandModel`)."""

    task = "regression"

    def fit(self, X: pd.DataFrame, y: Sequence[Any]) -> "CommandRegressor":
        """Run ``COMMAND fit`` on ``X`` (n rows) with numbers ``y`` (n); then its ``predict`` on some of
        the rows (a faulty predict fails here, before anything is registered). Raises EngineError."""
        extra = {k: v for k, v in (self.manifest or {}).items() if k != "class_names"}
        self._run_fit(X, np.asarray(y, dtype=np.float64), extra, None)
        self.predict(X.iloc[:SMOKE_ROWS])
        return self

    def fit_out_of_fold(self, X: pd.DataFrame, y: Sequence[Any], folds: np.ndarray) -> np.ndarray:
        """One ``COMMAND fit`` returning out-of-fold values, shape (n,), for the engine's ``folds`` (n,)
        (as :meth:`CommandClassifier.fit_out_of_fold`)."""
        extra = {k: v for k, v in (self.manifest or {}).items() if k != "class_names"}
        values = self._run_fit(X, np.asarray(y, dtype=np.float64), extra, np.asarray(folds))
        assert values is not None
        return values

    def read_predictions(self, path: Path, ids: Sequence[str], *, what: str = "trainer `predict`") -> np.ndarray:
        """The ``prediction`` of each of ``ids``, shape (len(ids),), in their order; EngineError naming
        the file, the id and the column when one is missing, not a number, NaN or infinite."""
        frame = read_prediction_file(path, ids, what=what)
        if PREDICTION_COLUMN not in frame.columns:
            raise EngineError(f"{what}: {path.name} has no {PREDICTION_COLUMN!r} column (a regression trainer "
                              f"writes example_id and prediction; got {list(frame.columns)})")
        try:
            values = frame[PREDICTION_COLUMN].to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise EngineError(f"{what}: {path.name}: column {PREDICTION_COLUMN!r} holds a non-number") from None
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise EngineError(f"{what}: {path.name}: row example_id={ids[bad[0]]!r}, column {PREDICTION_COLUMN!r} "
                              f"is {values[bad[0]]} (predictions must be finite numbers)")
        return values

    def decide(self, answer: np.ndarray) -> np.ndarray:
        """The values themselves, shape (n,)."""
        return answer

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Run ``COMMAND predict`` on ``X`` (n rows); the values, shape (n,). Raises EngineError."""
        return self._run_predict(X)
