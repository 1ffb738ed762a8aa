"""Model members that cope with tiny classes (a cold start: 100 labels over 10 classes, or a class
with one or two labeled examples).

scikit-learn's estimators carry internal splits sized for ordinary data: boosting's early stopping
holds out a stratified tenth (at least one row per class), calibration cross-validates in
``cv`` folds (at least ``cv`` rows per class), kNN votes among ``n_neighbors`` rows. Each class here
is the library's estimator with only that split adapted when the data are too small for it, and is
identical to it otherwise (same parameters, same results). scikit-learn has no option for any of
the three, hence the subclasses. Module-level classes, so fitted models pickle.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier

# HistGradientBoosting turns early stopping on for "auto" above this many rows (its own rule).
HGB_AUTO_EARLY_STOPPING_ROWS = 10_000


def class_counts(y: Any) -> np.ndarray:
    """Rows per class of ``y`` (shape (N,)), as an array of shape (K,)."""
    return np.unique(np.asarray(y), return_counts=True)[1]


def stratified_split_fits(y: Any, test_fraction: float) -> bool:
    """Whether ``train_test_split(stratify=y, test_size=test_fraction)`` can run: both parts hold
    at least one row per class and every class has two rows (scikit-learn's own conditions)."""
    counts = class_counts(y)
    n, k = int(counts.sum()), len(counts)
    n_test = math.ceil(test_fraction * n) if test_fraction < 1 else int(test_fraction)
    return bool(counts.min() >= 2 and n_test >= k and n - n_test >= k)


class SmallDataHistGradientBoosting(HistGradientBoostingClassifier):
    """HistGradientBoostingClassifier that fits without early stopping when its stratified
    validation split cannot hold every class (it would raise ``ValueError: The test_size = 8 should
    be greater or equal to the number of classes = 10``)."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "SmallDataHistGradientBoosting":
        """Fit as the parent does; see the class docstring for the one difference."""
        stopping = self.early_stopping
        uses_split = (stopping is True or (stopping == "auto" and len(y) > HGB_AUTO_EARLY_STOPPING_ROWS))
        if uses_split and self.validation_fraction is not None \
                and not stratified_split_fits(y, self.validation_fraction):
            try:
                self.early_stopping = False
                return super().fit(X, y, sample_weight=sample_weight)
            finally:
                self.early_stopping = stopping
        return super().fit(X, y, sample_weight=sample_weight)


class SmallDataCalibratedClassifierCV(CalibratedClassifierCV):
    """CalibratedClassifierCV whose integer ``cv`` shrinks to the smallest class's size (at least 2).

    A class with a single row leaves no out-of-fold decision value for it: the estimator is then
    fitted once and calibrated on its own training rows (scikit-learn's ``FrozenEstimator`` route),
    which is overconfident but the only calibration one example allows.
    """

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **fit_params: Any) -> "SmallDataCalibratedClassifierCV":
        """Fit as the parent does; see the class docstring for the difference on tiny classes."""
        smallest = int(class_counts(y).min())
        if not isinstance(self.cv, int) or smallest >= self.cv:
            return super().fit(X, y, sample_weight=sample_weight, **fit_params)
        cv, estimator, ensemble = self.cv, self.estimator, self.ensemble
        try:
            if smallest >= 2:
                self.cv = smallest
            else:
                from sklearn.base import clone

                # One "split" whose training and calibration rows are all rows: with a frozen
                # (already fitted) estimator, the parent then calibrates on its training rows.
                everything = np.arange(len(y))
                self.cv, self.ensemble = [(everything, everything)], False
                self.estimator = FrozenEstimator(clone(estimator).fit(X, y, **fit_params))
            return super().fit(X, y, sample_weight=sample_weight, **fit_params)
        finally:
            self.cv, self.estimator, self.ensemble = cv, estimator, ensemble


class SmallDataKNeighbors(KNeighborsClassifier):
    """KNeighborsClassifier that votes among all training rows when it has fewer than
    ``n_neighbors`` of them (the parent raises ``Expected n_neighbors <= n_samples_fit``)."""

    def kneighbors(self, X: Any = None, n_neighbors: int | None = None, return_distance: bool = True) -> Any:
        """The parent's neighbours, with ``n_neighbors`` capped at the rows available."""
        if n_neighbors is None:
            available = self.n_samples_fit_ - (1 if X is None else 0)
            n_neighbors = max(1, min(self.n_neighbors, available))
        return super().kneighbors(X, n_neighbors=n_neighbors, return_distance=return_distance)

