"""A served regressor that knows its own interval: the model, plus the spread of its out-of-fold residuals.

``/predict`` and ``predict FILE`` answer a value with an interval. The interval of a served
regressor comes from how far its out-of-fold predictions missed on its training labels: at fit
time, K-fold ``cross_val_predict`` (scikit-learn) gives each training example a prediction from a
model that did not see it; the interval offsets are ``± z · s``, ``s`` the robust scale of those
residuals (:func:`data_engine.tasks.regression_oof.robust_scale`: label errors left in the training
data do not widen it), ``z`` the normal quantile of the coverage. The final model is then fitted on
every row. scikit-learn has no interval for a fitted regressor, hence this small wrapper; a module
level class, so fitted models pickle (skops).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone

from data_engine.tasks.regression_oof import INTERVAL_COVERAGE, robust_scale

# Folds of the residuals behind a served model's interval.
INTERVAL_FOLDS = 5


class IntervalRegressor(RegressorMixin, BaseEstimator):
    """``estimator`` fitted on all rows, with ``interval_ = (lower offset, upper offset)`` from its
    out-of-fold residuals at ``coverage`` (see the module docstring)."""

    def __init__(self, estimator: Any, coverage: float = INTERVAL_COVERAGE, folds: int = INTERVAL_FOLDS,
                 seed: int = 0) -> None:
        self.estimator = estimator
        self.coverage = coverage
        self.folds = folds
        self.seed = seed

    def fit(self, X: Any, y: Any) -> "IntervalRegressor":
        """Out-of-fold residuals for the interval, then the model on all rows. ``y``: (n,) numbers."""
        from scipy.stats import norm
        from sklearn.model_selection import KFold, cross_val_predict

        y = np.asarray(y, dtype=np.float64)
        folds = int(min(self.folds, len(y)))
        if folds >= 2:
            oof = cross_val_predict(clone(self.estimator), X, y,
                                    cv=KFold(folds, shuffle=True, random_state=self.seed))
            half = float(norm.ppf(0.5 + self.coverage / 2)) * robust_scale(y - oof)
        else:
            half = 0.0
        self.interval_ = (-half, half)
        self.estimator_ = clone(self.estimator).fit(X, y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The fitted model's values, shape (n,)."""
        return np.asarray(self.estimator_.predict(X), dtype=np.float64)
